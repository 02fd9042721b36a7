-- export_evaluations: the evaluations rows of the exported runs (export_runs.sql), every
-- column of `evaluations` unchanged (sql/migrations/0004_evaluations.sql): run_id, eval_id,
-- view, checkpoint, step, settings, evaluated_at, roles, n_programs, n_predictions,
-- train_programs, train_functions, scores.
SELECT e.*  -- every column of evaluations, unchanged
FROM evaluations AS e
WHERE e.run_id IN (SELECT run_id FROM runs WHERE data_version = (SELECT value FROM meta WHERE key = 'data_version'))
ORDER BY e.run_id, e.eval_id;
