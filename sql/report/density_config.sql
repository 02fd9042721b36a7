-- density_config: the (method, size, max_steps) groups of density_matrix, the one drawn
-- first: transformer runs first, then most cells, most runs, most steps.
SELECT
    method,                 -- density_matrix.method
    size,                   -- model size
    max_steps,              -- configured optimizer steps
    count(*) AS cells,      -- train x test cells with runs
    sum(n_runs) AS runs     -- runs summed over cells
FROM density_matrix
GROUP BY method, size, max_steps
ORDER BY (method = 'transformer') DESC, cells DESC, runs DESC, max_steps DESC NULLS LAST, size;
