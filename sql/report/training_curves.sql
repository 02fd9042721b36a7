-- training_curves: the logged training curves of every finished transformer run (current
-- universe) from `metrics`: training loss, validation loss, validation sequence accuracy
-- (teacher-forced exact match of the whole target) and validation pass@1 where a run
-- logged it (figure training_curves.png).
SELECT
    r.view,                        -- the run's split view
    r.run_id,                      -- the run
    r.size,                        -- model size preset
    r.max_steps,                   -- configured optimizer steps
    r.seed,                        -- run seed
    m.name,                        -- 'train/loss', 'val/loss', 'val/seq_acc' or 'val/pass@1'
    m.step,                        -- optimizer step
    m.value                        -- the logged value
FROM finished_runs AS r
JOIN metrics AS m USING (run_id)
WHERE r.method = 'transformer'
  AND m.name IN ('train/loss', 'val/loss', 'val/seq_acc', 'val/pass@1')
  AND m.value IS NOT NULL AND isfinite(m.value)
ORDER BY r.view, r.run_id, m.name, m.step;
