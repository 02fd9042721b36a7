-- prediction_diversity: per finished transformer run and test role of its own split, pass@1 next to
-- function pass@1 (each target function weighted once) and the share of answers that are
-- the single most frequent predicted function (figure prediction_diversity.png; above
-- getvariable('top_share') one answer dominates pass@1).
--   SET VARIABLE top_share = 0.2;
SELECT
    r.run_id,                                        -- the run
    r.split,                                         -- its split
    r.method, r.size, r.max_steps, r.seed,           -- what ran
    k.role,                                          -- test role
    k.n,                                             -- programs answered
    k.n_functions,                                   -- distinct target functions among them
    k.pass_at_1,                                     -- per-program pass@1
    k.function_pass_at_1,                            -- per-function pass@1
    k.top_prediction_share,                          -- share of answers that are the most frequent predicted function
    k.top_prediction,                                -- a program of that function (prefix tokens)
    k.top_prediction_share > getvariable('top_share') AS dominated  -- one answer dominates pass@1
FROM finished_runs AS r
JOIN pass_at_k AS k ON k.run_id = r.run_id AND k.view = r.view
WHERE k.role LIKE 'test\_%' ESCAPE '\' AND k.pass_at_1 IS NOT NULL AND r.method = 'transformer'
ORDER BY r.split, r.training_flops, r.size, r.max_steps, r.seed, r.run_id, k.role;
