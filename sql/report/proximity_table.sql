-- proximity_table: are solved programs closer to the training data? Per training split
-- and distance, over runs (report section 5).
SELECT
    train_view,                                                            -- split the runs trained on
    distance,                                                              -- 'syntactic', 'semantic' or 'pqgram'
    count(*) AS runs,                                                      -- runs
    avg(median_solved) AS median_solved,                                   -- mean over runs of the solved programs' median distance
    avg(median_unsolved) AS median_unsolved,                               -- same, unsolved programs
    avg(auc) AS auc,                                                       -- mean AUC
    count(*) FILTER (WHERE p_value < 0.05 AND z > 0) AS runs_significant   -- runs with p < 0.05, solved closer
FROM proximity_summary
WHERE role = 'all_test'
GROUP BY ALL
ORDER BY ALL;
