-- density_natural: density generalisation after training on a sample drawn uniformly
-- over programs (the natural distribution of the grammar, dominated by the most common
-- shapes and functions). Does a model trained this way solve unseen functions, and does
-- it matter how the test programs are drawn?
--
-- Pools and test roles are those every density_* split shares (sql/sampling/density_pools.sql):
-- each finite function goes, with all its programs, to the train pool (80% of the
-- functions) or the test pool, so no test function is ever seen in training; 1 train-pool
-- program in 20 is kept for val. Train and val are drawn from their pools with
-- sample_natural; the four test roles (test_natural, test_syntactic, test_semantic,
-- test_diverse) come from density_test_roles, identical in every density split with the
-- same seed, so one model per split gives the paper's train-strategy x test-strategy
-- table. All roles are disjoint; only programs whose function is finite are drawn.
--
-- Sizes (params below): train 50,000, val 2,000, each test role 2,000 programs; on a
-- smaller universe a role gets what its pool holds, with a notice.
-- kind: density
WITH params AS (
    SELECT 0 AS seed,           -- change to draw another split (pools and samples)
           50000 AS n_train,    -- programs in train
           2000 AS n_val,       -- programs in val
           2000 AS n_test,      -- programs in each test_* role
           80 AS train_pool_pct -- % of the finite functions in the train pool
),
pools AS (SELECT * FROM density_pools((SELECT seed FROM params), (SELECT train_pool_pct FROM params))),
train_pool AS (SELECT * FROM pools WHERE pool = 'train'),
val_pool AS (SELECT * FROM pools WHERE pool = 'val')
SELECT program_id,    -- a program whose function is finite (manifold.program_id)
       'train' AS role -- train, val, or test_<strategy it was drawn with>
FROM sample_natural('train_pool', (SELECT n_train FROM params), (SELECT seed FROM params))
UNION ALL
SELECT program_id, 'val' FROM sample_natural('val_pool', (SELECT n_val FROM params), (SELECT seed FROM params))
UNION ALL
SELECT program_id, role
FROM density_test_roles((SELECT seed FROM params), (SELECT n_test FROM params), (SELECT train_pool_pct FROM params))
