-- ood_drop: how much worse each finished run does out of distribution. One row per run
-- and out-of-distribution role: greedy pass@1 on the run's own split's `test_id` role
-- against each other `test_*` role of that split (support splits: test_ood, or
-- test_ood_syntactic / test_ood_semantic / test_ood_joint). Splits without a test_id role
-- (the density splits) have no rows here: see density_matrix.
--
-- The paper's claim: more than 30% relative drop on support_syntactic, almost none on
-- support_semantic. Average over seeds with e.g.
--   SELECT split, ood_role, avg(rel_drop) FROM ood_drop GROUP BY ALL;
CREATE OR REPLACE VIEW ood_drop AS
WITH own AS (
    SELECT k.*, r.split, r.split_kind, r.method, r.size, r.seed, r.max_steps
    FROM pass_at_k AS k
    JOIN finished_runs AS r ON r.run_id = k.run_id AND r.view = k.view
)
SELECT
    i.run_id,                                                -- finished_runs.run_id
    i.view,                                                  -- the run's split view
    i.split,                                                 -- the split's name
    i.method,                                                -- 'transformer' or the search method
    i.size,                                                  -- model size preset
    i.seed,                                                  -- run seed
    i.max_steps,                                             -- configured optimizer steps
    i.role AS id_role,                                       -- always 'test_id': unseen functions inside the training region
    o.role AS ood_role,                                      -- the out-of-distribution role compared with it
    i.n AS n_id,                                             -- programs evaluated in test_id
    o.n AS n_ood,                                            -- programs evaluated in ood_role
    i.pass_at_1 AS id_pass_at_1,                             -- greedy pass@1 on test_id
    o.pass_at_1 AS ood_pass_at_1,                            -- greedy pass@1 on ood_role
    i.pass_at_1 - o.pass_at_1 AS abs_drop,                   -- id_pass_at_1 - ood_pass_at_1 (positive: worse out of distribution)
    (i.pass_at_1 - o.pass_at_1) / nullif(i.pass_at_1, 0) AS rel_drop  -- abs_drop / id_pass_at_1 (NULL when id_pass_at_1 = 0)
FROM own AS i
JOIN own AS o ON o.run_id = i.run_id AND o.view = i.view AND o.role LIKE 'test\_%' ESCAPE '\' AND o.role <> 'test_id'
WHERE i.role = 'test_id';
