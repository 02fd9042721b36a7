-- pass_by_size: pass@1 by the target program's size, operators (n_ops) and tree depth, on
-- each test role of the split drawn, per transformer run configuration (size, steps: seeds
-- pooled, each seed's answers counted once), with the 95% Wilson interval (figure
-- pass_by_size.png). Counted from analysed_predictions like pass_at_k: one answer per
-- program, programs whose function the run trained on left out.
--   SET VARIABLE split_view = 'split_<name>';
WITH answers AS (
    SELECT p.run_id, p.role, p.program_id, bool_or(p.passed) AS passed
    FROM analysed_predictions AS p
    WHERE p.view = getvariable('split_view') AND p.role LIKE 'test\_%' ESCAPE '\'
      AND p.decoding <> 'sampled' AND NOT p.trained_on
    GROUP BY ALL
),
counted AS (
    SELECT r.method, r.size, r.max_steps, max(r.training_flops) AS training_flops, a.role, d.dimension,
           CASE d.dimension WHEN 'n_ops' THEN g.n_ops ELSE g.depth END AS value,
           count(*) AS n, count(*) FILTER (WHERE a.passed) AS n_passed, count(DISTINCT a.run_id) AS runs
    FROM answers AS a
    JOIN finished_runs AS r ON r.run_id = a.run_id AND r.view = getvariable('split_view') AND r.method = 'transformer'
    JOIN programs AS g USING (program_id)
    CROSS JOIN (VALUES ('n_ops'), ('depth')) AS d(dimension)
    GROUP BY r.method, r.size, r.max_steps, a.role, d.dimension, value
)
SELECT
    method,                      -- 'transformer'
    size,                        -- model size preset
    max_steps,                   -- configured steps
    training_flops,              -- analytic training FLOPs of the configuration
    runs,                        -- runs pooled (seeds)
    role,                        -- test role
    dimension,                   -- 'n_ops' (operators in the target) or 'depth' (its tree depth)
    value,                       -- the target's n_ops or depth
    n,                           -- answers (programs x runs)
    n_passed / n AS pass_at_1,   -- pass@1 of these answers
    (n_passed / n + 1.959964 ^ 2 / (2 * n)
        - 1.959964 * sqrt(n_passed / n * (1 - n_passed / n) / n + 1.959964 ^ 2 / (4 * n ^ 2)))
        / (1 + 1.959964 ^ 2 / n) AS pass_at_1_lo,  -- lower end of the 95% Wilson interval
    (n_passed / n + 1.959964 ^ 2 / (2 * n)
        + 1.959964 * sqrt(n_passed / n * (1 - n_passed / n) / n + 1.959964 ^ 2 / (4 * n ^ 2)))
        / (1 + 1.959964 ^ 2 / n) AS pass_at_1_hi   -- upper end
FROM counted
ORDER BY training_flops, size, max_steps, role, dimension, value;
