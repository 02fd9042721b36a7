-- Manifold coordinates written by gensynth/embed.py (stage `embed`).

DROP VIEW IF EXISTS manifold;
DROP TABLE IF EXISTS syn_coords;
DROP TABLE IF EXISTS sem_coords;

-- syn_coords: each program's place on the syntactic manifold: its weighted pq-gram count
-- vector projected on the top k_syn right singular vectors (meta 'embed.*' says how).
CREATE TABLE syn_coords (
    program_id INTEGER NOT NULL,  -- programs.program_id (stored in program_id order)
    syn        FLOAT[{k_syn}] NOT NULL,  -- k_syn coordinates (meta 'embed.k_syn')
    syn_radius DOUBLE NOT NULL    -- Euclidean distance of syn to the mean of syn over all programs
);

-- sem_coords: each finite function's place on the semantic manifold: outputs →
-- sign·log1p|v| → z-score per grid point → PCA. Functions undefined or infinite at some
-- grid point have no row (meta 'embed.sem_excluded_functions' counts them).
CREATE TABLE sem_coords (
    function_id INTEGER NOT NULL,  -- functions.function_id
    sem         FLOAT[{k_sem}] NOT NULL,  -- k_sem principal-component scores (meta 'embed.k_sem')
    sem_radius  DOUBLE NOT NULL    -- Euclidean distance of sem to the mean over finite functions (PCA centres it, so |sem|)
);
