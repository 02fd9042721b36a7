-- nearest_train_rows: write one split's computed nearest-train rows (gensynth.analysis.
-- proximity, registered as _prox_rows: NaN distances and -1 ids mean "none") into
-- nearest_train (sql/analysis/nearest_train.sql documents the columns). INSERT OR REPLACE:
-- a row another `gensynth proximity` wrote meanwhile is replaced by an identical one.
INSERT OR REPLACE INTO nearest_train
SELECT
    $train_view,                                                               -- train_view
    program_id,                                                                -- program_id
    CASE WHEN NOT isnan(syn_nn_dist) THEN syn_nn_dist END,                     -- syn_nn_dist
    nullif(syn_nn_program_id, -1),                                             -- syn_nn_program_id
    CASE WHEN NOT isnan(sem_nn_dist) THEN sem_nn_dist END,                     -- sem_nn_dist
    nullif(sem_nn_program_id, -1),                                             -- sem_nn_program_id
    CASE WHEN NOT isnan(pqgram_nn_dist) THEN pqgram_nn_dist END,               -- pqgram_nn_dist
    nullif(pqgram_nn_program_id, -1),                                          -- pqgram_nn_program_id
    $split_sql_hash,                                                           -- split_sql_hash
    $data_version,                                                             -- data_version
    $computed_at                                                               -- computed_at
FROM _prox_rows;
