-- pq-gram distances between two programs, as plain SQL macros (they work in the stock
-- DuckDB shell). Profiles are bags: the intersection takes the smaller multiplicity,
-- the union (⊎) adds multiplicities.
--
-- pqgram_distance(a, b): the normalised pq-gram distance of Augsten, Böhlen & Gamper
-- (TODS 2010), a metric:  (|P(a) ⊎ P(b)| − 2|P(a) ∩ P(b)|) / (|P(a) ⊎ P(b)| − |P(a) ∩ P(b)|).
CREATE OR REPLACE MACRO pqgram_distance(a, b) AS (
    SELECT (sum(na + nb) - 2 * sum(least(na, nb))) / (sum(na + nb) - sum(least(na, nb)))
    FROM (
        SELECT coalesce(pa.n, 0) AS na, coalesce(pb.n, 0) AS nb
        FROM (SELECT gram_id, n FROM pqgrams WHERE program_id = a) AS pa
        FULL OUTER JOIN (SELECT gram_id, n FROM pqgrams WHERE program_id = b) AS pb USING (gram_id)
    )
);

-- pqgram_distance_vldb(a, b): the VLDB 2005 form 1 − 2|P(a) ∩ P(b)| / |P(a) ⊎ P(b)| (not a metric).
CREATE OR REPLACE MACRO pqgram_distance_vldb(a, b) AS (
    SELECT 1 - 2 * sum(least(na, nb)) / sum(na + nb)
    FROM (
        SELECT coalesce(pa.n, 0) AS na, coalesce(pb.n, 0) AS nb
        FROM (SELECT gram_id, n FROM pqgrams WHERE program_id = a) AS pa
        FULL OUTER JOIN (SELECT gram_id, n FROM pqgrams WHERE program_id = b) AS pb USING (gram_id)
    )
);
