-- Migration 0006_runs_arch: the model architecture of each training run (models.registry),
-- so runs of different architectures are told apart by a column, next to `size`.
--   arch  the architecture's registered name, e.g. 'grid64'; runs trained before the registry
--         existed are grid64; NULL for search runs (gensynth solve), which train no model
ALTER TABLE runs ADD COLUMN IF NOT EXISTS arch VARCHAR;
UPDATE runs SET arch = 'grid64' WHERE arch IS NULL AND json_extract(config, '$.data') IS NOT NULL;
