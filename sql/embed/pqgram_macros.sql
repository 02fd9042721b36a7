-- pq-gram distances between two programs, as plain SQL macros (they work in the stock
-- DuckDB shell). Profiles are bags: the intersection takes the smaller multiplicity,
-- the union (⊎) adds multiplicities, so |P(a) ⊎ P(b)| = |P(a)| + |P(b)| and only the
-- intersection |P(a) ∩ P(b)| needs a join, an inner one on gram_id. Arguments may be
-- constants or columns (`SELECT pqgram_distance(a.program_id, b.program_id) FROM
-- pairs ...`): each macro is scalar subqueries over `pqgrams` with equality conditions
-- only, which DuckDB decorrelates into hash joins over the whole set of pairs (the
-- FULL OUTER JOIN the macros used before could not be decorrelated: "Unsupported join
-- type for flattening correlated subquery"). Same integers, same division: same values.
--
-- pqgram_distance(a, b): the normalised pq-gram distance of Augsten, Böhlen & Gamper
-- (TODS 2010), a metric:  (|P(a) ⊎ P(b)| − 2|P(a) ∩ P(b)|) / (|P(a) ⊎ P(b)| − |P(a) ∩ P(b)|).
CREATE OR REPLACE MACRO pqgram_distance(a, b) AS (
    SELECT (size_a + size_b - 2 * common) / (size_a + size_b - common)
    FROM (SELECT (SELECT sum(n) FROM pqgrams WHERE program_id = a) AS size_a,
                 (SELECT sum(n) FROM pqgrams WHERE program_id = b) AS size_b,
                 (SELECT coalesce(sum(least(pa.n, pb.n)), 0)
                  FROM pqgrams AS pa JOIN pqgrams AS pb ON pb.gram_id = pa.gram_id
                  WHERE pa.program_id = a AND pb.program_id = b) AS common)
);

-- pqgram_distance_vldb(a, b): the VLDB 2005 form 1 − 2|P(a) ∩ P(b)| / |P(a) ⊎ P(b)| (not a metric).
CREATE OR REPLACE MACRO pqgram_distance_vldb(a, b) AS (
    SELECT 1 - 2 * common / (size_a + size_b)
    FROM (SELECT (SELECT sum(n) FROM pqgrams WHERE program_id = a) AS size_a,
                 (SELECT sum(n) FROM pqgrams WHERE program_id = b) AS size_b,
                 (SELECT coalesce(sum(least(pa.n, pb.n)), 0)
                  FROM pqgrams AS pa JOIN pqgrams AS pb ON pb.gram_id = pa.gram_id
                  WHERE pa.program_id = a AND pb.program_id = b) AS common)
);
