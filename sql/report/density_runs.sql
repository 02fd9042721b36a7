-- density_runs: finished runs on density_* splits of one (method, size, max_steps) group,
-- and how many groups density_matrix holds in all.
--   SET VARIABLE method = 'transformer'; SET VARIABLE size = 'nano'; SET VARIABLE max_steps = 100;
SELECT
    (SELECT count(DISTINCT run_id) FROM finished_runs
      WHERE view LIKE 'split\_density\_%' ESCAPE '\' AND method = getvariable('method') AND size = getvariable('size')
        AND max_steps IS NOT DISTINCT FROM getvariable('max_steps')) AS runs,  -- runs of the group
    (SELECT count(DISTINCT (method, size, max_steps)) FROM density_matrix) AS groups  -- groups in density_matrix
