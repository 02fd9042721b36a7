-- support_joint: support generalisation on both manifolds at once. A model trained on
-- programs central on both maps is tested outside its support along each map separately
-- and along both together, giving a 2 x 2 table (test_id, test_ood_syntactic,
-- test_ood_semantic, test_ood_joint) from one model.
--
-- Inner region: syn_radius <= its 0.8 quantile over the finite programs AND sem_radius <=
-- its 0.8 quantile over the finite functions. 1 in 10 of the functions with an inner
-- program (by hash(function_id, seed)) are held out for test_id; train and val are drawn
-- uniformly (sample_natural) from the inner programs of the other functions, val from 1
-- program in 20. Out of support, drawn uniformly:
--   test_ood_syntactic: syntactically outer, semantically inner, and only programs whose
--                       function has no program in the inner region (syntactic novelty);
--   test_ood_semantic:  semantically outer, syntactically inner;
--   test_ood_joint:     outer on both manifolds.
-- Every test role is function-disjoint from train. Only programs whose function is finite
-- are drawn (the split reads manifold_cells, see sql/sampling/cells.sql).
--
-- Sizes (params below): train 50,000, val 2,000, each test role 2,000 programs; on a
-- smaller universe a role gets what its pool holds, with a notice.
-- kind: support
WITH params AS (
    SELECT 0 AS seed,          -- change to draw another split
           50000 AS n_train,   -- programs in train
           2000 AS n_val,      -- programs in val
           2000 AS n_test,     -- programs in each test_* role
           10 AS test_id_pct   -- % of the inner region's functions held out for test_id
),
finite AS (
    SELECT * FROM manifold_cells  -- the programs of manifold whose function is finite (sem not NULL)
),
syn_inner_radius AS (
    SELECT quantile_cont(syn_radius, 0.8) AS r FROM finite  -- the syntactic inner quantile
),
sem_inner_radius AS (
    SELECT quantile_cont(sem_radius, 0.8) AS r  -- the semantic inner quantile
    FROM (SELECT DISTINCT function_id, sem_radius FROM finite)
),
sided AS (
    SELECT *,
           syn_radius > (SELECT r FROM syn_inner_radius) AS syn_outer,
           sem_radius > (SELECT r FROM sem_inner_radius) AS sem_outer
    FROM finite
),
inner_functions AS (
    SELECT DISTINCT function_id FROM sided WHERE NOT syn_outer AND NOT sem_outer
),
placed AS (
    SELECT *,
           CASE WHEN NOT syn_outer AND NOT sem_outer THEN
                    CASE WHEN hash(function_id, (SELECT seed FROM params), 'test_id') % 100
                              < (SELECT test_id_pct FROM params) THEN 'test_id'
                         WHEN hash(program_id, (SELECT seed FROM params), 'part') % 20 = 0 THEN 'val'
                         ELSE 'train' END
                WHEN syn_outer AND sem_outer THEN 'test_ood_joint'
                WHEN sem_outer THEN 'test_ood_semantic'
                WHEN function_id NOT IN (SELECT function_id FROM inner_functions) THEN 'test_ood_syntactic'
           END AS pool  -- NULL: a syntactically outer program of a function with inner programs
    FROM sided
),
train_pool AS (SELECT * FROM placed WHERE pool = 'train'),
val_pool AS (SELECT * FROM placed WHERE pool = 'val'),
test_id_pool AS (SELECT * FROM placed WHERE pool = 'test_id'),
test_ood_syntactic_pool AS (SELECT * FROM placed WHERE pool = 'test_ood_syntactic'),
test_ood_semantic_pool AS (SELECT * FROM placed WHERE pool = 'test_ood_semantic'),
test_ood_joint_pool AS (SELECT * FROM placed WHERE pool = 'test_ood_joint')
SELECT program_id,     -- a program whose function is finite (manifold.program_id)
       'train' AS role -- train, val, test_id, or test_ood_<manifold it leaves: syntactic, semantic, joint>
FROM sample_natural('train_pool', (SELECT n_train FROM params), (SELECT seed FROM params))
UNION ALL
SELECT program_id, 'val' FROM sample_natural('val_pool', (SELECT n_val FROM params), (SELECT seed FROM params))
UNION ALL
SELECT program_id, 'test_id'
FROM sample_natural('test_id_pool', (SELECT n_test FROM params), (SELECT seed FROM params))
UNION ALL
SELECT program_id, 'test_ood_syntactic'
FROM sample_natural('test_ood_syntactic_pool', (SELECT n_test FROM params), (SELECT seed FROM params))
UNION ALL
SELECT program_id, 'test_ood_semantic'
FROM sample_natural('test_ood_semantic_pool', (SELECT n_test FROM params), (SELECT seed FROM params))
UNION ALL
SELECT program_id, 'test_ood_joint'
FROM sample_natural('test_ood_joint_pool', (SELECT n_test FROM params), (SELECT seed FROM params))
