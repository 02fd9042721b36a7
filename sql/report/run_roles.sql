-- run_roles: the analysis numbers of one run on one view, per role, as pass_at_k counts
-- them (the most complete evaluation of each role; test programs the run trained on left
-- out). Shown under the summary of `gensynth train` and `gensynth eval`.
--   SET VARIABLE run_id = '<run id>'; SET VARIABLE view = 'split_<name>';
SELECT
    role,                     -- role of the view
    n,                        -- programs with an answer
    pass_at_1,                -- greedy pass@1 over programs
    n_functions,              -- distinct target functions among them
    function_pass_at_1,       -- pass@1 with each target function weighted once
    top_prediction_share,     -- share of the answers that are the single most frequent predicted function
    top_prediction,           -- a program of that function
    n_excluded_trained,       -- test programs left out: the run trained on their function
    eval_id                   -- the evaluation counted
FROM pass_at_k
WHERE run_id = getvariable('run_id') AND view = getvariable('view')
ORDER BY role;
