-- export_metrics: the metrics rows of the exported runs (export_runs.sql), every column of
-- `metrics` unchanged: run_id, step, name ('train/loss', 'val/loss', 'lr',
-- 'eval/<view>/<role>/<metric>', ...), value.
SELECT m.*  -- every column of metrics, unchanged
FROM metrics AS m
WHERE m.run_id IN (SELECT run_id FROM runs WHERE data_version = (SELECT value FROM meta WHERE key = 'data_version'))
ORDER BY m.run_id, m.name, m.step;
