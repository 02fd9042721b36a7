-- Manifold coordinates written by gensynth/embed.py (stage `embed`).

DROP VIEW IF EXISTS manifold;
DROP TABLE IF EXISTS syn_coords;
DROP TABLE IF EXISTS syn_basis;
DROP TABLE IF EXISTS sem_coords;

-- syn_coords: each program's place on the syntactic manifold: its weighted pq-gram count
-- vector w, centred and projected on the top k_syn principal directions:
-- syn = (w − centre) · basis, with centre and basis in syn_basis (meta 'embed.*' says how).
CREATE TABLE syn_coords (
    program_id INTEGER NOT NULL,  -- programs.program_id (stored in program_id order)
    syn        FLOAT[{k_syn}] NOT NULL,  -- k_syn coordinates (meta 'embed.k_syn'); mean ≈ 0, variance non-increasing in the index
    syn_radius DOUBLE NOT NULL    -- Euclidean distance of syn to the mean of syn over all programs
);

-- syn_basis: the fitted syntactic map, one row per pq-gram, so that any program (one
-- outside the universe too) is placed by the same map: take its pq-gram counts n_g,
-- multiply by weight, divide the row by its Euclidean norm (weighting l2 and tfidf; meta
-- 'embed.syn_weighting'), subtract centre and multiply by basis
-- (gensynth.manifolds.embed.project_programs does exactly this).
CREATE TABLE syn_basis (
    gram_id INTEGER NOT NULL,  -- pqgram_vocab.gram_id
    weight  DOUBLE NOT NULL,   -- column weight: the gram's smooth idf for tfidf, else 1
    centre  DOUBLE NOT NULL,   -- mean weighted count of the gram over the fitting sample (the PCA centre)
    basis   FLOAT[{k_syn}] NOT NULL  -- the gram's component in each of the k_syn principal directions
);

-- sem_coords: each finite function's place on the semantic manifold: outputs →
-- sign·log1p|v| → z-score per grid point → PCA. Functions undefined or infinite at some
-- grid point have no row (meta 'embed.sem_excluded_functions' counts them).
CREATE TABLE sem_coords (
    function_id INTEGER NOT NULL,  -- functions.function_id
    sem         FLOAT[{k_sem}] NOT NULL,  -- k_sem principal-component scores (meta 'embed.k_sem')
    sem_radius  DOUBLE NOT NULL    -- Euclidean distance of sem to the mean over finite functions (PCA centres it, so |sem|)
);
