-- manifold_roles: programs per role of the split drawn in figure 1 (every program of the
-- manifold; '(not in split)' for those the split leaves out).
--   SET VARIABLE split_view = 'split_<name>';
SELECT
    coalesce(s.role, '(not in split)') AS role,  -- role in the split, or '(not in split)'
    count(*) AS n                                -- programs
FROM manifold AS m
LEFT JOIN query_table(getvariable('split_view')) AS s USING (program_id)
GROUP BY 1
ORDER BY 1;
