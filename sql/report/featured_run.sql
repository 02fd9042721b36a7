-- featured_run: the run whose test programs figures solved_on_manifolds.png and the
-- proximity curves show: the finished transformer run on the split drawn with the highest
-- pass@1 over its test roles (ties: more training FLOPs, then the later run).
--   SET VARIABLE split_view = 'split_<name>';
SELECT
    r.run_id,                                           -- the run
    r.size,                                             -- model size preset
    r.max_steps,                                        -- configured steps
    r.seed,                                             -- seed
    r.training_flops,                                   -- analytic training FLOPs
    sum(k.n_passed) / sum(k.n) AS test_pass_at_1,       -- pass@1 over its test roles pooled
    sum(k.n) AS n                                       -- test programs answered
FROM finished_runs AS r
JOIN pass_at_k AS k ON k.run_id = r.run_id AND k.view = r.view
WHERE r.view = getvariable('split_view') AND r.method = 'transformer' AND k.role LIKE 'test\_%' ESCAPE '\'
GROUP BY ALL
HAVING sum(k.n) > 0
ORDER BY test_pass_at_1 DESC, r.training_flops DESC NULLS LAST, r.run_id DESC
LIMIT 1;
