-- demo_summary: the numbers `gensynth demo` ends with, one row per run and test role:
-- the demo's training run (pass@1 of its greedy answers with the 95% Wilson interval,
-- from pass_at_k) and its search runs (solve rate = pass@1 of the search's answers, from
-- method_comparison), on the split the demo trained on. Reads the variables
-- demo_view (the split view) and demo_runs (the demo's run ids, a list of text).
SELECT
    method,                   -- 'transformer' (the trained run) or the search method
    run_id,                   -- the run
    role,                     -- test role of the split ('test_id', 'test_ood', ...)
    n,                        -- programs (tasks) with an answer
    pass_at_1,                -- pass@1 (search runs: share of tasks solved)
    pass_at_1_lo,             -- lower end of its 95% Wilson interval
    pass_at_1_hi              -- upper end of its 95% Wilson interval
FROM method_comparison
WHERE view = getvariable('demo_view')
  AND list_contains(getvariable('demo_runs'), run_id)
ORDER BY method = 'transformer' DESC, method, role;
