-- gensynth results: every training or evaluation run and its per-program outcomes.
--
-- Unlike the derived tables of sql/schema.sql these cannot be regenerated (a run costs
-- compute), so they are never dropped and rebuilt: this file is migration
-- '0001_results_tables' (gensynth/results/migrations.py), and any later change to these tables is
-- a new, named migration recorded in `schema_migrations`.
--
-- Rows are written by ingestion only: a run writes its results into its run directory
-- (runs/<run_id>/results/), then copies them here in one short transaction that first
-- deletes the run's old rows, so re-ingesting a run replaces it and never duplicates.
--
-- Count only finished runs: a run killed outright (SIGKILL, power loss) keeps the
-- status 'running' it was registered with, forever. Analysis joins
--   runs (status = 'finished') -> predictions -> manifold (program_id).

-- runs: one row per training run (`gensynth train`), with its resolved configuration.
CREATE TABLE IF NOT EXISTS runs (
    run_id          VARCHAR PRIMARY KEY,  -- e.g. '20261126-124501-3fa9'; names the run directory runs/<run_id>/
    view            VARCHAR NOT NULL,     -- the split view trained on, e.g. 'split_support_syntactic'
    split_sql_hash  VARCHAR,              -- splits.sql_hash of that view when the run started (NULL if unrecorded)
    role_sizes      JSON NOT NULL,        -- programs per role of the view at the start, e.g. {"train": 3000, "test_id": 500}
    config          JSON NOT NULL,        -- the full resolved configuration (model, data, training, evaluation), as in runs/<run_id>/config.json
    size            VARCHAR NOT NULL,     -- model size preset (models.SIZES), or 'custom' when model flags overrode it
    n_params        BIGINT NOT NULL,      -- model parameters (tied token table counted once)
    training_flops  DOUBLE,               -- ANALYTIC training compute (models.flops.training_flops: 6 FLOPs per weight per position + attention, padded decoder length), not measured
    examples_seen   BIGINT,               -- training examples processed (summed over steps and devices)
    tokens_seen     BIGINT,               -- target tokens (program symbols + EOS, no padding) in those examples
    steps           INTEGER,              -- optimizer steps taken
    wall_time_s     DOUBLE,               -- seconds of training + evaluation, summed over attempts (killed ones to their last write: migration 0005)
    device          VARCHAR,              -- what trained it, e.g. 'cpu x2 (ddp)' or 'NVIDIA H100 80GB HBM3 x1'
    code_version    VARCHAR NOT NULL,     -- gensynth version + git commit of the training code
    data_version    VARCHAR NOT NULL,     -- meta 'data_version' of the warehouse the split was read from
    checkpoint      VARCHAR,              -- checkpoint evaluated: 'best' (lowest val/loss) or 'last'
    status          VARCHAR NOT NULL,     -- 'running' (started; also a run that was killed), 'finished' or 'failed'
    error           VARCHAR,              -- why a failed run failed (NULL otherwise)
    started_at      TIMESTAMPTZ NOT NULL, -- when the run started
    finished_at     TIMESTAMPTZ,          -- when it finished or failed (NULL while running)
    ingested_at     TIMESTAMPTZ NOT NULL  -- when these rows were copied in from the run directory
);

-- metrics: scalar time series and final scores of a run, long format.
CREATE TABLE IF NOT EXISTS metrics (
    run_id VARCHAR NOT NULL,  -- runs.run_id
    step   INTEGER NOT NULL,  -- optimizer step the value belongs to (final step for evaluation scores)
    name   VARCHAR NOT NULL,  -- 'train/loss', 'val/loss', 'lr', or 'eval/<view>/<role>/<metric>' e.g. 'eval/split_x/test_id/pass@1'
    value  DOUBLE             -- the value (NULL when undefined, e.g. a rate over an empty role)
);

-- predictions: what the model wrote for each program of each evaluated role.
CREATE TABLE IF NOT EXISTS predictions (
    run_id         VARCHAR NOT NULL,   -- runs.run_id
    view           VARCHAR NOT NULL,   -- split view whose roles were evaluated (the run's own, or another via `gensynth eval --view`)
    role           VARCHAR NOT NULL,   -- the program's role in that view: 'train', 'val', 'test_*', ...
    program_id     INTEGER NOT NULL,   -- the target program (join to programs / manifold); its function's outputs were the input
    decoding       VARCHAR NOT NULL,   -- 'greedy' (argmax; gives pass@1) or 'sampled' (temperature sampling; gives pass@k)
    sample_index   INTEGER NOT NULL,   -- 0 for greedy; 0..n-1 for the n samples of a program
    predicted      VARCHAR NOT NULL,   -- predicted program, space-separated prefix tokens ('' if nothing was written)
    parsed         BOOLEAN NOT NULL,   -- the prediction is a well-formed program of the grammar
    passed         BOOLEAN NOT NULL,   -- parsed and exactly equal to the target function on every grid point (non-finite where it is)
    exact_match    BOOLEAN NOT NULL,   -- predicted text equals the target program's prefix
    offgrid_passed BOOLEAN NOT NULL,   -- parsed and agrees with the target's smallest program at the run's off-grid points (float64, rtol 1e-9)
    logprob        DOUBLE              -- model log-probability of the predicted tokens (EOS included)
);
