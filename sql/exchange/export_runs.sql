-- export_runs: the runs `gensynth runs export` writes to runs.parquet — every run of the
-- warehouse's current universe (runs.data_version = meta 'data_version'), whatever its
-- status, with every column of `runs` as stored (sql/results.sql and its migrations).
-- Runs of other universes stay behind: their program ids name programs of another universe.
SELECT *  -- every column of runs, unchanged
FROM runs
WHERE data_version = (SELECT value FROM meta WHERE key = 'data_version')
ORDER BY run_id;
