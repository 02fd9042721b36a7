-- density_cells: the density matrix of one (method, size, max_steps) group (report
-- section 3 and figure 2).
--   SET VARIABLE method = 'transformer'; SET VARIABLE size = 'nano'; SET VARIABLE max_steps = 100;
SELECT
    train_strategy,   -- sampling strategy of the training set
    test_strategy,    -- sampling strategy of the test role
    pass_at_1,        -- mean greedy pass@1 over runs (seeds)
    pass_at_1_sd,     -- its standard deviation over runs
    n_runs,           -- runs in the cell
    row_spread,       -- max - min of the row's cells
    row_mean          -- mean of the row's cells
FROM density_matrix
WHERE method = getvariable('method') AND size = getvariable('size')
  AND max_steps IS NOT DISTINCT FROM getvariable('max_steps')
ORDER BY ALL;
