-- sample_syntactic(pool, n, seed): n programs of `pool` drawn uniformly over the
-- syntactic manifold rather than over programs: the draw cycles over the syn cells of
-- manifold_cells (8 x 8 x 8 equal-width cells over the first 3 syn coordinates, see
-- sql/sampling/cells.sql), taking from each cell the pool touches one program, chosen
-- uniformly within it, per round; a cell that runs out drops out of later rounds. So
-- every cell gets the same share until it is exhausted, and dense regions do not
-- dominate. `pool` is the quoted name of a table, view or CTE whose rows come from
-- manifold_cells (this macro reads program_id and syn_cell), e.g.
--   WITH my_pool AS (SELECT * FROM manifold_cells WHERE n_ops = 3)
--   SELECT program_id FROM sample_syntactic('my_pool', 1000, 0)
-- Deterministic for a seed: programs are ordered within their cell by
-- hash(program_id, seed) and cells within a round by hash(cell, seed).
CREATE OR REPLACE MACRO sample_syntactic(pool, n, seed) AS TABLE
WITH ranked AS (
    SELECT program_id,
           syn_cell AS cell,
           row_number() OVER (PARTITION BY syn_cell
                              ORDER BY hash(program_id, seed, 'syntactic'), program_id) AS round
    FROM query_table(pool)
),
drawn AS (
    SELECT program_id, round, hash(cell, seed, 'syntactic-cell') AS cell_order, cell
    FROM ranked
    ORDER BY round, cell_order, cell
    LIMIT n
)
SELECT program_id,                                                   -- the drawn program
       row_number() OVER (ORDER BY round, cell_order, cell) AS draw  -- its place in the draw (1 = first)
FROM drawn;
