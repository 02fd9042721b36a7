-- manifold: every program with its place on both manifolds. This is the surface split
-- SQL is written against (sql/splits/*.sql).
--
-- Columns:
--   program_id   programs.program_id
--   function_id  the program's semantic class (functions.function_id)
--   n_ops        number of operators in the program
--   depth        tree depth in edges (a leaf has depth 0)
--   syn          syntactic coordinates (FLOAT[k_syn]): SVD of the weighted pq-gram profile
--   sem          semantic coordinates (FLOAT[k_sem]) of the program's function; NULL when the
--                function is undefined or infinite at some grid point
--   syn_radius   distance of syn to the centroid of the syntactic manifold (all programs)
--   sem_radius   distance of sem to the centroid of the semantic manifold (finite functions); NULL with sem
CREATE OR REPLACE VIEW manifold AS
SELECT
    p.program_id,
    p.function_id,
    p.n_ops,
    p.depth,
    s.syn,
    c.sem,
    s.syn_radius,
    c.sem_radius
FROM programs AS p
JOIN syn_coords AS s USING (program_id)
LEFT JOIN sem_coords AS c USING (function_id);
