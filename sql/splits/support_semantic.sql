-- support_semantic: support generalisation on the semantic manifold. A model trained on
-- functions near the centre of the semantic map is asked to write programs for functions
-- from its outer shell: behaviours it has never seen.
--
-- Inner region: sem_radius <= its 0.8 quantile over the finite functions (each function
-- once); the outer shell is the rest. The radius belongs to the function, so every
-- program of a function lies on the same side and test_ood is function-disjoint from
-- train by construction. 1 in 10 inner functions (by hash(function_id, seed)) are held
-- out for test_id, so test_id is function-disjoint from train too; train and val are
-- drawn uniformly (sample_natural) from the programs of the other inner functions, val
-- from 1 program in 20; test_ood uniformly from the outer shell's programs. Only programs
-- whose function is finite are drawn (the split reads manifold_cells, see
-- sql/sampling/cells.sql).
--
-- Sizes (params below): train 50,000, val 2,000, test_id 2,000, test_ood 2,000 programs;
-- on a smaller universe a role gets what its pool holds, with a notice.
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
inner_radius AS (
    SELECT quantile_cont(sem_radius, 0.8) AS r  -- the inner region's radius quantile
    FROM (SELECT DISTINCT function_id, sem_radius FROM finite)
),
placed AS (
    SELECT *,
           CASE WHEN sem_radius > (SELECT r FROM inner_radius) THEN 'test_ood'
                WHEN hash(function_id, (SELECT seed FROM params), 'test_id') % 100
                     < (SELECT test_id_pct FROM params) THEN 'test_id'
                WHEN hash(program_id, (SELECT seed FROM params), 'part') % 20 = 0 THEN 'val'
                ELSE 'train'
           END AS pool
    FROM finite
),
train_pool AS (SELECT * FROM placed WHERE pool = 'train'),
val_pool AS (SELECT * FROM placed WHERE pool = 'val'),
test_id_pool AS (SELECT * FROM placed WHERE pool = 'test_id'),
test_ood_pool AS (SELECT * FROM placed WHERE pool = 'test_ood')
SELECT program_id,     -- a program whose function is finite (manifold.program_id)
       'train' AS role -- train, val, test_id (inner, unseen functions) or test_ood (outer shell)
FROM sample_natural('train_pool', (SELECT n_train FROM params), (SELECT seed FROM params))
UNION ALL
SELECT program_id, 'val' FROM sample_natural('val_pool', (SELECT n_val FROM params), (SELECT seed FROM params))
UNION ALL
SELECT program_id, 'test_id'
FROM sample_natural('test_id_pool', (SELECT n_test FROM params), (SELECT seed FROM params))
UNION ALL
SELECT program_id, 'test_ood'
FROM sample_natural('test_ood_pool', (SELECT n_test FROM params), (SELECT seed FROM params))
