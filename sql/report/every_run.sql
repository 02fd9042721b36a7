-- every_run: every finished run (current universe) on each test role of its own split,
-- with pass@1 and what could fake it (report section 7).
SELECT
    r.run_id, r.split, r.method, r.size, r.seed, r.steps,   -- the run
    r.training_flops,                                         -- analytic training FLOPs
    k.role,                                                   -- test role
    k.n,                                                      -- programs evaluated
    k.pass_at_1, k.pass_at_1_lo, k.pass_at_1_hi,              -- pass@1 and its 95% Wilson interval
    k.function_pass_at_1,                                     -- pass@1 with each target function weighted once
    k.top_prediction_share,                                   -- share of answers that are the most frequent predicted function
    k.n_excluded_trained                                      -- test programs left out: the run trained on their function
FROM finished_runs AS r
JOIN pass_at_k AS k ON k.run_id = r.run_id AND k.view = r.view
WHERE k.role LIKE 'test\_%' ESCAPE '\'
ORDER BY r.split, r.method, r.size, r.seed, r.run_id, k.role;
