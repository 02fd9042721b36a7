-- evaluation_row: the `evaluations` row of one evaluation, written into a run directory's
-- results (gensynth.results.evaluations.insert_evaluation) after its predictions were
-- inserted with their eval_id; the counts come from those predictions. Columns: see
-- sql/migrations/0004_evaluations.sql.
INSERT INTO evaluations
SELECT
    $run_id,                                        -- run_id
    $eval_id,                                       -- eval_id
    $view,                                          -- view
    $checkpoint,                                    -- checkpoint
    $step,                                          -- step
    $settings,                                      -- settings (JSON)
    $evaluated_at::TIMESTAMPTZ,                     -- evaluated_at
    $roles,                                         -- roles (JSON)
    count(DISTINCT (role, program_id)),             -- n_programs
    count(*),                                       -- n_predictions
    $train_programs,                                -- train_programs
    $train_functions,                               -- train_functions
    $scores                                         -- scores (JSON)
FROM predictions
WHERE run_id = $run_id AND eval_id = $eval_id;
