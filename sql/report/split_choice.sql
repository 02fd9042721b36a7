-- split_choice: split views ranked by how many finished runs (current universe) trained
-- on them; `gensynth report` draws the first that still exists on the manifolds (figure 1)
-- unless --split names one.
SELECT
    view,                -- the split view (finished_runs.view)
    count(*) AS runs     -- finished runs that trained on it
FROM finished_runs
GROUP BY view
ORDER BY runs DESC, view;
