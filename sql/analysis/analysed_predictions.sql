-- analysed_predictions: the predictions every analysis view counts, one rule for all of
-- them (pass_at_k and proximity read predictions through this view only):
--
-- * Runs: finished runs of the current universe (finished_runs).
-- * One evaluation per run, view and role. Evaluations add, never replace (`gensynth eval`
--   keeps earlier ones; table evaluations), so a role may have been evaluated several
--   times. The analysis counts the MOST COMPLETE one: most programs answered, then most
--   prediction rows (samples), then the latest (evaluations.evaluated_at), then the
--   largest eval_id. Rows written before evaluations were recorded (eval_id NULL) form
--   one evaluation, dated never (it loses ties).
-- * Test programs the run trained on are flagged: `trained_on` is true for a test role's
--   prediction when the run was evaluated on another split and the program's function is
--   that of some program of its own training set (predictions.train_function; the model's
--   input is the function's outputs, so it has seen this very input). The views leave
--   them out and say how many (pass_at_k.n_excluded_trained). On a run's own split the
--   roles are the split's to define: nothing is flagged.
--
-- The target's function comes from programs (program_id; for view 'tasks_beyond' the id
-- is a task's, which has no function in the universe); the predicted program's
-- function too, when the predicted text is a program of the universe. A parsed prediction
-- outside the universe (larger than max-ops) is its own function, keyed by its text (so
-- top-prediction shares are a lower bound there); an unparsed prediction has none.
CREATE OR REPLACE VIEW analysed_predictions AS
WITH runs_here AS (
    SELECT run_id FROM finished_runs
),
candidates AS (  -- each evaluation of each role: how complete it is
    SELECT p.run_id, p.view, p.role, coalesce(p.eval_id, '') AS eval_key,
           count(DISTINCT p.program_id) AS n_programs, count(*) AS n_rows
    FROM predictions AS p
    JOIN runs_here USING (run_id)
    GROUP BY p.run_id, p.view, p.role, coalesce(p.eval_id, '')
),
chosen AS (
    SELECT c.run_id, c.view, c.role, c.eval_key
    FROM candidates AS c
    LEFT JOIN evaluations AS e ON e.run_id = c.run_id AND e.eval_id = c.eval_key
    QUALIFY row_number() OVER (PARTITION BY c.run_id, c.view, c.role
                               ORDER BY c.n_programs DESC, c.n_rows DESC, e.evaluated_at DESC NULLS LAST,
                                        c.eval_key DESC) = 1
)
SELECT
    p.run_id,                                               -- finished_runs.run_id
    p.eval_id,                                              -- the evaluation counted (evaluations.eval_id; NULL: rows from before evaluations were recorded, or a search run)
    p.view,                                                 -- split view whose role was evaluated
    p.role,                                                 -- role of that view
    p.program_id,                                           -- the target program
    CASE WHEN p.view <> 'tasks_beyond' THEN t.function_id END AS function_id, -- the target's function (programs.function_id; NULL for targets outside the universe, e.g. tasks_beyond)
    p.decoding,                                             -- 'greedy', 'sampled' or a search method's 'search'
    p.sample_index,                                         -- 0 for the answer; 0..n-1 for samples
    p.predicted,                                            -- predicted program, prefix tokens
    p.parsed,                                               -- a well-formed program
    p.passed,                                               -- computes the target function exactly on the grid
    p.exact_match,                                          -- the target's own text
    p.offgrid_passed,                                       -- also agrees off the grid
    p.candidates,                                           -- search runs: candidate programs evaluated (NULL for model evaluation)
    p.search_seconds,                                       -- search runs: seconds on the task
    (p.role LIKE 'test\_%' ESCAPE '\' AND coalesce(p.train_function, false)) AS trained_on, -- a test program whose function the run trained on: left out of every view
    CASE WHEN p.parsed THEN coalesce('f' || q.function_id, 'text ' || p.predicted) END AS predicted_function -- the predicted program's function ('f<function_id>', or 'text <prefix>' outside the universe; NULL when not parsed)
FROM predictions AS p
JOIN chosen AS c ON c.run_id = p.run_id AND c.view = p.view AND c.role = p.role AND c.eval_key = coalesce(p.eval_id, '')
LEFT JOIN programs AS t ON t.program_id = p.program_id  -- an equi-join (a hash join); for tasks_beyond, whose program_id is a task_id, the CASE above drops it
LEFT JOIN programs AS q ON q.prefix = p.predicted;
