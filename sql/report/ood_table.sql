-- ood_table: the out-of-distribution drop averaged over runs (report section 2).
SELECT
    split,                                  -- the split's name
    ood_role,                               -- the out-of-distribution role
    method,                                 -- 'transformer' or the search method
    size,                                   -- model size
    count(*) AS runs,                       -- runs
    avg(id_pass_at_1) AS id_pass_at_1,      -- mean pass@1 on test_id
    avg(ood_pass_at_1) AS ood_pass_at_1,    -- mean pass@1 on the OOD role
    avg(abs_drop) AS abs_drop,              -- mean absolute drop
    avg(rel_drop) AS rel_drop               -- mean relative drop
FROM ood_drop
GROUP BY ALL
ORDER BY ALL;
