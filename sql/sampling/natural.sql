-- sample_natural(pool, n, seed): n programs drawn uniformly at random from `pool`,
-- without replacement. `pool` is the quoted name of a table, view or CTE whose rows come
-- from manifold_cells (this macro reads its program_id), e.g.
--   WITH my_pool AS (SELECT * FROM manifold_cells WHERE n_ops = 3)
--   SELECT program_id FROM sample_natural('my_pool', 1000, 0)
-- Deterministic for a seed: the draw order is hash(program_id, seed), so the first n of
-- a larger draw are the draw of n. Fewer than n rows when the pool is smaller.
CREATE OR REPLACE MACRO sample_natural(pool, n, seed) AS TABLE
WITH drawn AS (
    SELECT program_id, hash(program_id, seed, 'natural') AS h
    FROM query_table(pool)
    ORDER BY h, program_id
    LIMIT n
)
SELECT program_id,                                         -- the drawn program
       row_number() OVER (ORDER BY h, program_id) AS draw  -- its place in the draw (1 = first)
FROM drawn;
