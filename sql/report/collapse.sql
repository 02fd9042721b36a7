-- collapse: test roles where one predicted function is more than the given share of a
-- run's answers, so that pass@1 there mostly counts that one answer (report warnings).
--   SET VARIABLE top_share = 0.2;
SELECT
    run_id, view, role,        -- run, evaluated view, test role
    n,                         -- programs evaluated
    pass_at_1,                 -- pass@1 over programs
    function_pass_at_1,        -- pass@1 with each function weighted once
    top_prediction_share,      -- share of answers that are the most frequent predicted function
    top_prediction             -- a program of that function
FROM pass_at_k
WHERE role LIKE 'test\_%' ESCAPE '\' AND top_prediction_share > getvariable('top_share')
ORDER BY top_prediction_share DESC, run_id, role;
