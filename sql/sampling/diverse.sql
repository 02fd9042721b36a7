-- sample_diverse(pool, n, seed): n programs of `pool` drawn uniformly over semantic
-- equivalence classes, then uniformly over the syntactically distinct programs of the
-- drawn class: the draw cycles over the pool's functions, taking one program of each
-- (chosen uniformly) per round; a function that runs out of programs drops out of later
-- rounds. A function with one program is as likely to appear as one with ten thousand.
-- `pool` is the quoted name of a table, view or CTE whose rows come from manifold_cells
-- (this macro reads program_id and function_id), e.g.
--   WITH my_pool AS (SELECT * FROM manifold_cells WHERE n_ops = 3)
--   SELECT program_id FROM sample_diverse('my_pool', 1000, 0)
-- Deterministic for a seed: programs are ordered within their function by
-- hash(program_id, seed) and functions within a round by hash(function_id, seed).
CREATE OR REPLACE MACRO sample_diverse(pool, n, seed) AS TABLE
WITH ranked AS (
    SELECT program_id,
           function_id,
           row_number() OVER (PARTITION BY function_id
                              ORDER BY hash(program_id, seed, 'diverse'), program_id) AS round
    FROM query_table(pool)
),
drawn AS (
    SELECT program_id, round, hash(function_id, seed, 'diverse-function') AS function_order, function_id
    FROM ranked
    ORDER BY round, function_order, function_id
    LIMIT n
)
SELECT program_id,                                                              -- the drawn program
       row_number() OVER (ORDER BY round, function_order, function_id) AS draw  -- its place in the draw (1 = first)
FROM drawn;
