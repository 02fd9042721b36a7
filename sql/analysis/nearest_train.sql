-- nearest_train: for each test program of a split (and each program a run trained on
-- that split was evaluated on in a test role), its nearest program in the split's
-- `train` role, on the syntactic manifold, on the semantic manifold and by pq-gram
-- distance. Written by `gensynth proximity` (gensynth/proximity.py: exact nearest
-- neighbours, a k-d tree over the manifold coordinates; pq-gram distances by an exact
-- sparse search, for every test program or, on large splits, a hashed sample of them).
--
-- A derived table: recomputed for a split whose SQL (splits.sql_hash) or warehouse data
-- version changed, and rebuilt with the warehouse. The `proximity` view joins it to runs.
CREATE TABLE IF NOT EXISTS nearest_train (
    train_view           VARCHAR NOT NULL,  -- split view whose 'train' role is the reference set (a run's runs.view)
    program_id           INTEGER NOT NULL,  -- the evaluated (test) program
    syn_nn_dist          DOUBLE,            -- Euclidean distance on the syntactic manifold (manifold.syn) to the nearest train program
    syn_nn_program_id    INTEGER,           -- that nearest train program (one of them, on ties)
    sem_nn_dist          DOUBLE,            -- Euclidean distance on the semantic manifold (manifold.sem) to the nearest train program; NULL when the program's function is not finite
    sem_nn_program_id    INTEGER,           -- a train program of the nearest function (its smallest train program)
    pqgram_nn_dist       DOUBLE,            -- normalised pq-gram distance (pqgram_distance macro) to the nearest train program; NULL when not in the computed sample
    pqgram_nn_program_id INTEGER,           -- that nearest train program (one of them, on ties)
    split_sql_hash       VARCHAR,           -- splits.sql_hash of train_view when computed (NULL if the split is unregistered)
    data_version         VARCHAR NOT NULL,  -- meta 'data_version' when computed
    computed_at          TIMESTAMPTZ NOT NULL, -- when computed
    PRIMARY KEY (train_view, program_id)
);
