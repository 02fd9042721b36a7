-- scaling_fits: one log-linear fit per split, role and method (report section 4).
SELECT
    split,                                  -- the split's name
    role,                                   -- role of the split
    method,                                 -- 'transformer' (or any method with training FLOPs)
    any_value(n_fit) AS runs,               -- runs in the fit
    any_value(flops_span) AS flops_span,    -- max / min FLOPs
    any_value(slope) AS slope,              -- pass@1 per 10x FLOPs
    any_value(intercept) AS intercept,      -- fitted pass@1 at 1 FLOP
    any_value(r2) AS r2                     -- R² of the fit
FROM scaling
GROUP BY ALL
ORDER BY ALL;
