-- Migration 0003_runs_results_id: which results version of its run directory each stored
-- run is, so that `gensynth runs list` / `runs sync` decide "stored" from the warehouse
-- itself (a warehouse restored from an older copy then shows its missing or older runs as
-- not stored, and sync ingests them), not from markers in the run directories.
--   results_id  runs/<run_id>/results/manifest.json results_id of the rows stored here;
--               NULL for rows ingested before this migration (then the row counts of the
--               run's metrics and predictions are compared with the manifest instead)
ALTER TABLE runs ADD COLUMN IF NOT EXISTS results_id VARCHAR;
