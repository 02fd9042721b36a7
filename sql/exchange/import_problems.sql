-- import_problems: what is wrong with an export directory, checked against this warehouse
-- before `gensynth runs import` writes anything. Reads the temporary views import_runs,
-- import_metrics, import_predictions and import_evaluations (the directory's Parquet
-- files) and the variable data_version (the export's universe). One row per problem:
SELECT problem, detail, n FROM (  -- problem: what is wrong; detail: an example; n: rows affected
    SELECT 'runs of another universe' AS problem, min(run_id) || ' (data version ' || min(data_version) || ')' AS detail,
           count(*) AS n
    FROM import_runs WHERE data_version IS DISTINCT FROM getvariable('data_version')
    UNION ALL
    SELECT 'a run_id twice in runs.parquet', min(run_id), count(*) FROM (
        SELECT run_id FROM import_runs GROUP BY run_id HAVING count(*) > 1)
    UNION ALL
    SELECT 'metrics of runs not in runs.parquet', min(run_id), count(*)
    FROM import_metrics WHERE run_id NOT IN (SELECT run_id FROM import_runs)
    UNION ALL
    SELECT 'evaluations of runs not in runs.parquet', min(run_id), count(*)
    FROM import_evaluations WHERE run_id NOT IN (SELECT run_id FROM import_runs)
    UNION ALL
    SELECT 'predictions of runs not in runs.parquet', min(run_id), count(*)
    FROM import_predictions WHERE run_id NOT IN (SELECT run_id FROM import_runs)
    UNION ALL  -- the same program id must name the same program here
    SELECT 'predictions whose target program is not this universe''s',
           'program_id ' || min(i.program_id) || ': ' || coalesce(min(i.target_prefix), '?') || ' in the export, '
               || coalesce(min(g.prefix), 'no such program') || ' here', count(*)
    FROM import_predictions AS i LEFT JOIN programs AS g USING (program_id)
    WHERE g.prefix IS DISTINCT FROM i.target_prefix
)
WHERE n > 0
ORDER BY problem;
