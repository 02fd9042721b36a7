-- manifold: every program with its place on both manifolds. This is the surface split
-- SQL is written against (sql/splits/*.sql).
--
-- Columns:
--   program_id   programs.program_id
--   function_id  the program's semantic class (functions.function_id)
--   n_ops        number of operators in the program
--   depth        tree depth in edges (a leaf has depth 0)
--   syn          syntactic coordinates (FLOAT[k_syn]): centred PCA (top eigenvectors of the centred gram matrix) of the weighted pq-gram profile
--   sem          semantic coordinates (FLOAT[k_sem]) of the program's function; NULL when the
--                function is undefined or infinite at some grid point
--   syn_radius   distance of syn to the centroid of the syntactic manifold (all programs)
--   sem_radius   distance of sem to the centroid of the semantic manifold (finite functions); NULL with sem
--   prefix       the program as space-separated prefix tokens (programs.prefix), e.g. '+ x * y 2'
--   infix        the program in infix notation (programs.infix), e.g. 'x + (y * 2)'
--
-- sem and sem_radius come from a LEFT JOIN; DuckDB's binder would still describe them as
-- NOT NULL (the columns of sem_coords are), so the CASE declares them nullable, as they are.
CREATE OR REPLACE VIEW manifold AS
SELECT
    p.program_id,
    p.function_id,
    p.n_ops,
    p.depth,
    s.syn,
    CASE WHEN c.function_id IS NULL THEN NULL ELSE c.sem END AS sem,
    s.syn_radius,
    CASE WHEN c.function_id IS NULL THEN NULL ELSE c.sem_radius END AS sem_radius,
    p.prefix,
    p.infix
FROM programs AS p
JOIN syn_coords AS s USING (program_id)
LEFT JOIN sem_coords AS c USING (function_id);
