-- density_matrix: the paper's train-strategy x test-strategy table. Each cell is greedy
-- pass@1 of the finished runs trained on split_density_<train strategy>, on their own
-- split's test_<test strategy> role (all density_* splits with the same seed share their
-- test roles), averaged over the runs (seeds) of the same method, size and step budget.
--
-- row_spread (max - min of a row's cells) is the paper's robustness measure: a model
-- whose pass@1 hardly changes with the test distribution has a small spread. The paper
-- reports diverse-trained models steady near 19% and semantic-trained ones peaking at
-- 30.5% in-domain but brittle under shift.
CREATE OR REPLACE VIEW density_matrix AS
WITH cells AS (
    SELECT
        r.method, r.size, r.max_steps,
        regexp_replace(r.view, '^split_density_', '') AS train_strategy,
        regexp_replace(k.role, '^test_', '') AS test_strategy,
        count(*) AS n_runs,
        count(DISTINCT r.seed) AS n_seeds,
        avg(k.pass_at_1) AS pass_at_1,
        stddev_samp(k.pass_at_1) AS pass_at_1_sd,
        min(k.pass_at_1) AS pass_at_1_min,
        max(k.pass_at_1) AS pass_at_1_max,
        sum(k.n) AS n_programs
    FROM pass_at_k AS k
    JOIN finished_runs AS r ON r.run_id = k.run_id AND r.view = k.view
    WHERE r.view LIKE 'split\_density\_%' ESCAPE '\'
      AND k.role LIKE 'test\_%' ESCAPE '\'
      AND k.pass_at_1 IS NOT NULL
    GROUP BY ALL
)
SELECT
    method,                                        -- 'transformer' or the search method
    size,                                          -- model size preset
    max_steps,                                     -- configured optimizer steps
    train_strategy,                                -- sampling strategy of the training set: natural, syntactic, semantic, diverse
    test_strategy,                                 -- sampling strategy of the test role (test_<strategy>)
    n_runs,                                        -- finished runs averaged in this cell
    n_seeds,                                       -- distinct seeds among them
    pass_at_1,                                     -- mean greedy pass@1 over those runs
    pass_at_1_sd,                                  -- standard deviation over runs (NULL with one run)
    pass_at_1_min,                                 -- lowest run's pass@1
    pass_at_1_max,                                 -- highest run's pass@1
    n_programs,                                    -- programs evaluated, summed over runs
    avg(pass_at_1) OVER row_w AS row_mean,         -- mean of this row's cells (the train strategy's average over test strategies)
    max(pass_at_1) OVER row_w - min(pass_at_1) OVER row_w AS row_spread, -- max - min of this row's cells: lower = more robust
    count(*) OVER row_w AS row_cells               -- test strategies present in this row (4 when complete)
FROM cells
WINDOW row_w AS (PARTITION BY method, size, max_steps, train_strategy);
