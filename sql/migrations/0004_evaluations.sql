-- Migration 0004_evaluations: evaluations add, never replace. Every evaluation of a run
-- (the one at the end of training, and each `gensynth eval`) is recorded here with its
-- settings, when it ran and what it covered, and its predictions keep their eval_id, so a
-- later evaluation (say `--eval-limit 10`) no longer deletes an earlier one's predictions.
-- Which evaluation the analysis counts for a run, view and role is the rule stated in
-- sql/analysis/analysed_predictions.sql (the most complete one).
CREATE TABLE IF NOT EXISTS evaluations (
    run_id          VARCHAR NOT NULL,     -- runs.run_id
    eval_id         VARCHAR NOT NULL,     -- unique per run, e.g. '20261126T124501123456-3fa9c1'; predictions.eval_id
    view            VARCHAR NOT NULL,     -- split view whose roles were evaluated (the run's own, or another via `gensynth eval --view`)
    checkpoint      VARCHAR,              -- checkpoint file evaluated, e.g. 'best.ckpt'
    step            INTEGER,              -- optimizer step of the run when evaluated
    settings        JSON,                 -- the evaluation settings (roles, samples, k, temperature, limit, seed, ...)
    evaluated_at    TIMESTAMPTZ,          -- when the evaluation finished
    roles           JSON,                 -- role -> {"programs": n, "functions": m} evaluated
    n_programs      BIGINT,               -- programs evaluated, summed over roles
    n_predictions   BIGINT,               -- prediction rows (greedy + samples)
    train_programs  BIGINT,               -- evaluated programs that are in the run's own training set (NULL: evaluated on its own split)
    train_functions BIGINT,               -- evaluated programs whose function is in the run's training set (NULL: own split)
    scores          JSON,                 -- role -> metric -> value, as scores.json of the evaluation
    PRIMARY KEY (run_id, eval_id)
);
--   predictions.eval_id         evaluations.eval_id of the evaluation that wrote the row
--                               (NULL for rows written before this migration, and for search runs)
--   predictions.train_program   the program is in the run's own training set (set for evaluations on
--                               another split than the run's own; NULL otherwise)
--   predictions.train_function  the program's function is that of some program of the run's training
--                               set, i.e. the model saw this very input in training (same rule)
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS eval_id VARCHAR;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS train_program BOOLEAN;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS train_function BOOLEAN;
