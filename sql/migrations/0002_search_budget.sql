-- Migration 0002_search_budget: per-task search effort on `predictions`, so that search
-- and neural synthesizers are compared at equal budgets (gensynth solve).
--   candidates      candidate programs (value rows) evaluated for this task, samples drawn
--                   counting one each; NULL for plain model evaluation (gensynth train/eval)
--   search_seconds  wall seconds spent on this task; NULL for plain model evaluation
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS candidates BIGINT;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS search_seconds DOUBLE;
