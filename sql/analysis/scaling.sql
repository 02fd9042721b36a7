-- scaling: pass@1 against training compute. One row per finished run and role of its
-- own split, with the log-linear fit  pass@1 = intercept + slope * log10(FLOPs)  over all
-- runs of the same split, role and method (DuckDB's regr_slope / regr_intercept /
-- regr_r2 over log10 of the analytic training FLOPs, runs.training_flops).
--
-- The paper reports log-linear gains with compute for every split: a positive slope with
-- a high R². A fit needs runs at two or more compute levels (NULL otherwise). Runs
-- without training compute (search runs) are left out.
CREATE OR REPLACE VIEW scaling AS
WITH points AS (
    SELECT
        r.view, r.split, k.role, r.method, r.run_id, r.size, r.n_params, r.seed, r.max_steps,
        r.training_flops, log10(r.training_flops) AS log10_flops, k.n, k.pass_at_1
    FROM pass_at_k AS k
    JOIN finished_runs AS r ON r.run_id = k.run_id AND r.view = k.view
    WHERE r.training_flops > 0 AND k.pass_at_1 IS NOT NULL
)
SELECT
    view,                                                        -- the runs' split view
    split,                                                       -- the split's name
    role,                                                        -- role of the split the runs were evaluated on
    method,                                                      -- 'transformer' (or any method recording training FLOPs)
    run_id,                                                      -- finished_runs.run_id of this point
    size,                                                        -- model size preset
    n_params,                                                    -- model parameters
    seed,                                                        -- run seed
    max_steps,                                                   -- configured optimizer steps
    training_flops,                                              -- analytic training compute (FLOPs)
    log10_flops,                                                 -- log10(training_flops), the fit's x
    n,                                                           -- programs evaluated in the role
    pass_at_1,                                                   -- greedy pass@1, the fit's y
    count(*) OVER fit AS n_fit,                                  -- runs in this split/role/method's fit
    max(training_flops) OVER fit / min(training_flops) OVER fit AS flops_span, -- compute range of the fit (max / min FLOPs)
    CASE WHEN max(log10_flops) OVER fit > min(log10_flops) OVER fit
         THEN regr_slope(pass_at_1, log10_flops) OVER fit END AS slope,     -- pass@1 gained per 10x compute (NULL: one compute level)
    CASE WHEN max(log10_flops) OVER fit > min(log10_flops) OVER fit
         THEN regr_intercept(pass_at_1, log10_flops) OVER fit END AS intercept, -- fitted pass@1 at 1 FLOP (log10 = 0)
    CASE WHEN max(log10_flops) OVER fit > min(log10_flops) OVER fit
         THEN coalesce(regr_r2(pass_at_1, log10_flops) OVER fit, 1.0) END AS r2 -- coefficient of determination (1 when pass@1 is constant: a flat line fits exactly)
FROM points
WINDOW fit AS (PARTITION BY view, role, method);
