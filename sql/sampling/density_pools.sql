-- density_pools(seed, train_pool_pct) and density_test_roles(seed, n_test, train_pool_pct):
-- the pools and test roles every density_* split shares (sql/splits/density_*.sql), in
-- one place, so that all density splits with the same seed have identical test roles
-- and one model per split gives the paper's train-strategy x test-strategy table.
--
-- Pools: each finite function goes, with all its programs, to the train pool
-- (train_pool_pct % of the functions, by hash(function_id, seed)) or to the test pool, so
-- no test function is ever seen in training. In the train pool 1 program in 20 (by
-- hash(program_id, seed)) is kept for val. The test pool is cut by the same hash into
-- four equal parts, one per test role, drawn with sample_natural, sample_syntactic,
-- sample_semantic and sample_diverse: test_natural, test_syntactic, test_semantic,
-- test_diverse. All pools are disjoint. Rows come from manifold_cells, so only programs
-- whose function is finite.

-- density_pools: every row of manifold_cells with its pool.
CREATE OR REPLACE MACRO density_pools(seed, train_pool_pct) AS TABLE
WITH parts AS (
    SELECT *,
           hash(function_id, seed, 'pool') % 100 < train_pool_pct AS in_train_pool,
           hash(program_id, seed, 'part') % 20 AS part
    FROM manifold_cells
)
SELECT * EXCLUDE (in_train_pool, part),  -- the manifold_cells columns
       CASE WHEN in_train_pool THEN (CASE WHEN part > 0 THEN 'train' ELSE 'val' END)
            WHEN part % 4 = 0 THEN 'test_natural'
            WHEN part % 4 = 1 THEN 'test_syntactic'
            WHEN part % 4 = 2 THEN 'test_semantic'
            ELSE 'test_diverse' END AS pool  -- train, val, or the test role the program may be drawn for
FROM parts;

-- density_test_roles: n_test programs per test role, each drawn from its part of the test
-- pool with its strategy.
CREATE OR REPLACE MACRO density_test_roles(seed, n_test, train_pool_pct) AS TABLE
WITH pools AS (SELECT * FROM density_pools(seed, train_pool_pct)),
test_natural_pool AS (SELECT * FROM pools WHERE pool = 'test_natural'),
test_syntactic_pool AS (SELECT * FROM pools WHERE pool = 'test_syntactic'),
test_semantic_pool AS (SELECT * FROM pools WHERE pool = 'test_semantic'),
test_diverse_pool AS (SELECT * FROM pools WHERE pool = 'test_diverse')
SELECT program_id,           -- the drawn program
       'test_natural' AS role -- the test role, named after the strategy it was drawn with
FROM sample_natural('test_natural_pool', n_test, seed)
UNION ALL
SELECT program_id, 'test_syntactic' FROM sample_syntactic('test_syntactic_pool', n_test, seed)
UNION ALL
SELECT program_id, 'test_semantic' FROM sample_semantic('test_semantic_pool', n_test, seed)
UNION ALL
SELECT program_id, 'test_diverse' FROM sample_diverse('test_diverse_pool', n_test, seed);
