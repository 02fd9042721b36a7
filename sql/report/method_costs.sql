-- method_costs: per search run and test role, the candidate programs each task took and
-- whether it was solved (figure 5's anytime curves: a deterministic search that stops at
-- its first answer solves a task at every budget >= its candidates).
SELECT
    run_id, view, role,   -- search run, split view, test role
    candidates,           -- candidate programs evaluated for the task
    passed                -- the task was solved
FROM analysed_predictions
WHERE candidates IS NOT NULL AND role LIKE 'test\_%' ESCAPE '\' AND NOT trained_on
ORDER BY run_id, view, role, candidates;
