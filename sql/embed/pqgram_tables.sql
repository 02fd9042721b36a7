-- pq-gram tables written by gensynth/pqgrams.py (stage `embed`).
-- Null nodes of the p,q-extended tree are NULL inside `stem` and `base`.

DROP TABLE IF EXISTS pqgrams;
DROP TABLE IF EXISTS pqgram_vocab;

-- pqgram_vocab: every distinct pq-gram (label tuple) that occurs in some program.
CREATE TABLE pqgram_vocab (
    gram_id INTEGER PRIMARY KEY,  -- dense id, ordered by the gram's integer code
    stem    VARCHAR[] NOT NULL,   -- p labels: the anchor's p-1 ancestors (top first) then the anchor; NULL = null node
    base    VARCHAR[] NOT NULL    -- q labels: consecutive children of the anchor in the extended tree; NULL = null node
);

-- pqgrams: each program's pq-gram profile as a bag; one row per (program, distinct gram).
CREATE TABLE pqgrams (
    program_id INTEGER NOT NULL,   -- programs.program_id (rows are stored in program_id order)
    gram_id    INTEGER NOT NULL,   -- pqgram_vocab.gram_id
    n          SMALLINT NOT NULL   -- multiplicity of the gram in the program's profile (>= 1)
);
