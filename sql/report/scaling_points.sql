-- scaling_points: every transformer run's pass@1 on each test role of its own split
-- against its training FLOPs, with the fitted line of its split and role (figure 3).
SELECT
    view, role, run_id,      -- split view, test role, run
    training_flops,          -- analytic training compute
    pass_at_1,               -- greedy pass@1
    slope, intercept, r2,    -- the fit of the split/role (NULL: one compute level)
    n_fit                    -- runs in the fit
FROM scaling
WHERE role LIKE 'test\_%' ESCAPE '\' AND method = 'transformer'
ORDER BY view, role, training_flops;
