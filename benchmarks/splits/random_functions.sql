-- random_functions: a function-disjoint random split. 1 in 10 functions (by hash) is held
-- out for test_id; train and val are programs of the other functions (val 1 program in 20).
-- kind: density
WITH placed AS (
    SELECT *,
           CASE WHEN hash(function_id, 17, 'test') % 10 = 0 THEN 'test_id'
                WHEN hash(program_id, 17, 'val') % 20 = 0 THEN 'val'
                ELSE 'train' END AS pool
    FROM manifold_cells
),
train_pool AS (SELECT * FROM placed WHERE pool = 'train'),
val_pool AS (SELECT * FROM placed WHERE pool = 'val'),
test_pool AS (SELECT * FROM placed WHERE pool = 'test_id')
SELECT program_id, 'train' AS role FROM sample_natural('train_pool', 50000, 17)
UNION ALL SELECT program_id, 'val' FROM sample_natural('val_pool', 2000, 17)
UNION ALL SELECT program_id, 'test_id' FROM sample_natural('test_pool', 2000, 17)
