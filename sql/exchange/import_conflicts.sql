-- import_conflicts: runs of the export directory (temporary view import_runs) that this
-- warehouse already holds; `gensynth runs import` refuses them unless --replace.
SELECT
    i.run_id,             -- the run id in both
    r.status,             -- its status here
    r.view                -- the split view it ran on here
FROM import_runs AS i
JOIN runs AS r USING (run_id)
ORDER BY i.run_id;
