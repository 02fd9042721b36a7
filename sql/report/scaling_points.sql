-- scaling_points: every transformer run's pass@1 (with its 95% Wilson interval) on each
-- test role of its own split against its training FLOPs, with the fitted line of its split
-- and role (figure scaling.png: one panel per split with a compute range).
SELECT
    s.view, s.role, s.run_id,  -- split view, test role, run
    s.size, s.max_steps,       -- model size preset and configured steps (marker labels)
    s.training_flops,          -- analytic training compute
    s.pass_at_1,               -- greedy pass@1
    k.pass_at_1_lo,            -- lower end of its 95% Wilson interval
    k.pass_at_1_hi,            -- upper end
    s.slope, s.intercept, s.r2, -- the fit of the split/role (NULL: one compute level)
    s.n_fit,                   -- runs in the fit
    s.flops_span               -- max / min FLOPs of the fit's runs
FROM scaling AS s
JOIN pass_at_k AS k ON k.run_id = s.run_id AND k.view = s.view AND k.role = s.role
WHERE s.role LIKE 'test\_%' ESCAPE '\' AND s.method = 'transformer'
ORDER BY s.view, s.role, s.training_flops;
