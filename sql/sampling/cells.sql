-- manifold_cells: the sampling frame. One row per program whose function is finite (its
-- manifold.sem is not NULL), with the columns splits select on (function, size, radii)
-- and its cell on each manifold. Written by the splits stage (gensynth/splits.py) right
-- after the manifolds. Every sampling macro (sql/sampling/) draws from rows of this
-- table, so only finite programs are ever drawn: a program undefined somewhere on the
-- grid has no semantic coordinates and no complete input/output example. It is narrow
-- (no coordinate arrays), so a split over the full universe scans it in a fraction of a
-- second where the `manifold` view, a three-way join, takes seconds.
--
-- Cell scheme (the same for both manifolds): the first 3 coordinates, each cut into 8
-- equal-width bins between its 1st and 99th percentile (values outside are clamped into
-- the first/last bin), so 8^3 = 512 cells. Equal-width, not quantile, bins: quantile bins
-- would give dense regions more cells, and "uniform over the manifold" means uniform over
-- its area, not over its programs. The percentile range keeps a few extreme points from
-- stretching every bin. Syntactic bounds come from every program's syn (syn_coords);
-- semantic bounds from the finite functions' sem (sem_coords, each function once: the
-- semantic manifold is the set of functions, their programs are density on it).

-- grid_bin(x, lo, hi, bins): x's equal-width bin in [lo, hi], clamped to 0..bins-1 (0 when the range is empty or x is NULL).
CREATE OR REPLACE MACRO grid_bin(x, lo, hi, bins) AS
    CASE WHEN x IS NULL OR hi <= lo THEN 0
         ELSE least(bins - 1, greatest(0, floor((x - lo) / (hi - lo) * bins)))::INTEGER END;

-- grid_cell(v, b, bins): the cell of coordinates v, numbered 0..bins^3-1; b holds each of
-- the first 3 dimensions' [lo, hi] bounds.
CREATE OR REPLACE MACRO grid_cell(v, b, bins) AS
    (grid_bin(v[1], b[1][1], b[1][2], bins) * bins + grid_bin(v[2], b[2][1], b[2][2], bins)) * bins
    + grid_bin(v[3], b[3][1], b[3][2], bins);

CREATE OR REPLACE TABLE manifold_cells AS
WITH syn_bounds AS (
    SELECT [quantile_cont(syn[1], [0.01, 0.99]), quantile_cont(syn[2], [0.01, 0.99]),
            quantile_cont(syn[3], [0.01, 0.99])] AS b
    FROM syn_coords
),
sem_bounds AS (
    SELECT [quantile_cont(sem[1], [0.01, 0.99]), quantile_cont(sem[2], [0.01, 0.99]),
            quantile_cont(sem[3], [0.01, 0.99])] AS b
    FROM sem_coords
),
function_cells AS (
    SELECT f.function_id, f.sem_radius, grid_cell(f.sem, b.b, 8)::SMALLINT AS sem_cell
    FROM sem_coords f, sem_bounds b
)
SELECT p.program_id,                                  -- a program whose function is finite
       p.function_id,                                 -- its function (functions.function_id)
       p.n_ops,                                       -- its number of operators
       p.depth,                                       -- its depth in edges
       s.syn_radius,                                  -- manifold.syn_radius
       f.sem_radius,                                  -- manifold.sem_radius (of its function)
       grid_cell(s.syn, b.b, 8)::SMALLINT AS syn_cell, -- its cell on the syntactic manifold, 0..511
       f.sem_cell                                     -- its function's cell on the semantic manifold, 0..511
FROM programs p
JOIN function_cells f USING (function_id)
JOIN syn_coords s USING (program_id)
CROSS JOIN syn_bounds b;
