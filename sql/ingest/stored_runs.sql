-- stored_runs: what the warehouse holds of each run, to compare with the run directories
-- (gensynth.results.ingest.stored_runs; `gensynth runs list` and `gensynth runs sync`).
-- COLUMNS(...) picks the columns this warehouse has: results_id only exists after
-- migration 0003_runs_results_id, and a read-only reader cannot migrate.
SELECT
    r.*,                                -- run_id, view, size, status, data_version and (when migrated) results_id of runs
    coalesce(m.n, 0) AS metrics,        -- rows of the run in metrics
    coalesce(p.n, 0) AS predictions     -- rows of the run in predictions
FROM (SELECT COLUMNS('^(run_id|view|size|status|data_version|results_id)$') FROM runs) AS r
LEFT JOIN (SELECT run_id, count(*) AS n FROM metrics GROUP BY run_id) AS m USING (run_id)
LEFT JOIN (SELECT run_id, count(*) AS n FROM predictions GROUP BY run_id) AS p USING (run_id);
