-- method_table: methods side by side, solve rate pooled over test roles (report section 6).
SELECT
    method,                                          -- 'transformer' or the search method
    split,                                           -- the split's name
    budget,                                          -- search budget (NULL for training runs)
    count(DISTINCT run_id) AS runs,                  -- runs
    sum(pass_at_1 * n) / sum(n) AS solve_rate,       -- tasks solved / tasks, test roles pooled
    avg(wall_time_s) AS wall_s                       -- mean wall time per run
FROM method_comparison
GROUP BY ALL
ORDER BY ALL;
