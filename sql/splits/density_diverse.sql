-- density_diverse: density generalisation after training on a sample drawn uniformly
-- over functions, then over each function's programs (every semantic class equally,
-- whatever its number of programs). Does a model trained this way solve unseen
-- functions, and does it matter how the test programs are drawn?
--
-- Pools: each finite function goes, with all its programs, to the train pool (80% of the
-- functions, by hash(function_id, seed)) or to the test pool, so no test function is ever
-- seen in training. In the train pool 1 program in 20 (by hash(program_id, seed)) is kept
-- for val; train and val are drawn from their parts with sample_diverse. The test pool is cut
-- by hash(program_id, seed) into four equal parts, one per test role, drawn with
-- sample_natural, sample_syntactic, sample_semantic and sample_diverse (sql/sampling/).
-- Every density_* split with the same seed has the same pools and identical test roles,
-- so one model per split gives the paper's train-strategy x test-strategy table. All roles
-- are disjoint. Only programs whose function is finite are drawn: the split reads
-- manifold_cells, the rows of `manifold` with sem not NULL plus their cells
-- (sql/sampling/cells.sql), a narrow table that scans far faster than the view.
--
-- Sizes (params below): train 50,000, val 2,000, each test role 2,000 programs; on a
-- smaller universe a role gets what its part of the pool holds, with a notice.
-- kind: density
WITH params AS (
    SELECT 0 AS seed,           -- change to draw another split (pools and samples)
           50000 AS n_train,    -- programs in train
           2000 AS n_val,       -- programs in val
           2000 AS n_test,      -- programs in each test_* role
           80 AS train_pool_pct -- % of the finite functions in the train pool
),
pooled AS (
    SELECT *,
           hash(function_id, (SELECT seed FROM params), 'pool') % 100
               < (SELECT train_pool_pct FROM params) AS in_train_pool,
           hash(program_id, (SELECT seed FROM params), 'part') % 20 AS part
    FROM manifold_cells
),
train_pool AS (SELECT * FROM pooled WHERE in_train_pool AND part > 0),
val_pool AS (SELECT * FROM pooled WHERE in_train_pool AND part = 0),
test_natural_pool AS (SELECT * FROM pooled WHERE NOT in_train_pool AND part % 4 = 0),
test_syntactic_pool AS (SELECT * FROM pooled WHERE NOT in_train_pool AND part % 4 = 1),
test_semantic_pool AS (SELECT * FROM pooled WHERE NOT in_train_pool AND part % 4 = 2),
test_diverse_pool AS (SELECT * FROM pooled WHERE NOT in_train_pool AND part % 4 = 3)
SELECT program_id,    -- a program whose function is finite (manifold.program_id)
       'train' AS role -- train, val, or test_<strategy it was drawn with>
FROM sample_diverse('train_pool', (SELECT n_train FROM params), (SELECT seed FROM params))
UNION ALL
SELECT program_id, 'val' FROM sample_diverse('val_pool', (SELECT n_val FROM params), (SELECT seed FROM params))
UNION ALL
SELECT program_id, 'test_natural'
FROM sample_natural('test_natural_pool', (SELECT n_test FROM params), (SELECT seed FROM params))
UNION ALL
SELECT program_id, 'test_syntactic'
FROM sample_syntactic('test_syntactic_pool', (SELECT n_test FROM params), (SELECT seed FROM params))
UNION ALL
SELECT program_id, 'test_semantic'
FROM sample_semantic('test_semantic_pool', (SELECT n_test FROM params), (SELECT seed FROM params))
UNION ALL
SELECT program_id, 'test_diverse'
FROM sample_diverse('test_diverse_pool', (SELECT n_test FROM params), (SELECT seed FROM params))
