-- schema_migrations: which named migrations of the results tables have been applied.
--
-- Results (runs, metrics, predictions, ...) are irreplaceable, so their tables are never
-- rebuilt: they are created and changed only by the named migrations listed in
-- gensynth/results/migrations.py (MIGRATIONS), each applied once, in order, and recorded
-- here. gensynth.results.migrations.migrate runs this file first.
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       VARCHAR PRIMARY KEY,    -- the migration's name, e.g. '0001_results_tables' (MIGRATIONS[i].name)
    applied_at TIMESTAMPTZ NOT NULL    -- when it was applied to this warehouse
);
