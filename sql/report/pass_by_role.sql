-- pass_by_role: pass@1 with its 95% Wilson interval for every finished transformer run
-- (current universe) on every role of its own split (figure pass_at_1.png: one panel per
-- split; search runs, which answer test roles only, are in methods.png).
SELECT
    r.view,                                   -- the run's split view
    r.split,                                  -- the split's name
    k.role,                                   -- role of that split: 'train', 'val', 'test_*'
    r.run_id,                                 -- the run
    r.method,                                 -- 'transformer'
    r.size,                                   -- model size preset (search runs: the method)
    r.max_steps,                              -- configured optimizer steps (NULL for search runs)
    r.seed,                                   -- run seed
    r.training_flops,                         -- analytic training FLOPs (NULL for search runs)
    k.n,                                      -- programs answered
    k.pass_at_1,                              -- greedy pass@1
    k.pass_at_1_lo,                           -- lower end of its 95% Wilson interval
    k.pass_at_1_hi,                           -- upper end
    k.function_pass_at_1                      -- pass@1 with each target function weighted once
FROM finished_runs AS r
JOIN pass_at_k AS k ON k.run_id = r.run_id AND k.view = r.view
WHERE k.pass_at_1 IS NOT NULL AND r.method = 'transformer'
ORDER BY r.view, k.role, r.training_flops NULLS LAST, r.size, r.max_steps, r.seed, r.run_id;
