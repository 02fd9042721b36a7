-- manifold_points: the points of figure 1, the first two coordinates of each manifold by
-- role: every role in full up to max_points/16 programs, the train role up to
-- max_points/2 and programs outside the split up to max_points/4, each drawn by a fixed
-- hash of program_id (the same points on every run).
--   SET VARIABLE split_view = 'split_<name>'; SET VARIABLE max_points = 50000;
WITH labelled AS (
    SELECT m.program_id, m.syn[1] AS s1, m.syn[2] AS s2, m.sem[1] AS c1, m.sem[2] AS c2,
           coalesce(s.role, '(not in split)') AS role
    FROM manifold AS m LEFT JOIN query_table(getvariable('split_view')) AS s USING (program_id)
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY role ORDER BY hash(program_id, 'report')) AS rn FROM labelled
)
SELECT
    role,   -- role in the split, or '(not in split)'
    s1,     -- syn[1]
    s2,     -- syn[2]
    c1,     -- sem[1] (NULL for non-finite functions)
    c2      -- sem[2]
FROM ranked
WHERE rn <= CASE WHEN role = '(not in split)' THEN getvariable('max_points') // 4
                 WHEN role = 'train' THEN getvariable('max_points') // 2
                 ELSE getvariable('max_points') // 16 END;
