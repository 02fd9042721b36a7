-- density_claims: per train strategy of one density group, the row mean, the row spread
-- and the in-domain cell (test strategy = train strategy): the paper's density claims.
--   SET VARIABLE method = 'transformer'; SET VARIABLE size = 'nano'; SET VARIABLE max_steps = 100;
SELECT
    train_strategy,                                                          -- sampling strategy of the training set
    any_value(row_mean) AS mean,                                             -- mean pass@1 over test strategies
    any_value(row_spread) AS spread,                                         -- max - min over test strategies
    max(pass_at_1) FILTER (WHERE test_strategy = train_strategy) AS in_domain -- pass@1 on its own strategy's test role
FROM density_matrix
WHERE method = getvariable('method') AND size = getvariable('size')
  AND max_steps IS NOT DISTINCT FROM getvariable('max_steps')
GROUP BY train_strategy;
