-- proximity_runs: per finished run (test roles pooled) and distance, are the solved test
-- programs closer to the training data? The Mann-Whitney AUC with its p-value, and the
-- run's size, so runs of very different sizes are shown apart (figure proximity.png).
SELECT
    s.run_id,                        -- the run
    r.split,                         -- the split it trained on
    r.method, r.size, r.max_steps,   -- what ran
    s.distance,                      -- 'syntactic', 'semantic' or 'pqgram'
    s.n_solved,                      -- solved test programs with a distance
    s.n_unsolved,                    -- unsolved ones
    s.median_solved,                 -- their median distance to the nearest train program
    s.median_unsolved,
    s.auc,                           -- P(an unsolved program lies farther than a solved one); 0.5: no difference
    s.p_value                        -- two-sided p-value (normal approximation of U)
FROM proximity_summary AS s
JOIN finished_runs AS r USING (run_id)
WHERE s.role = 'all_test' AND s.auc IS NOT NULL
ORDER BY r.split, r.method, r.training_flops NULLS LAST, r.size, r.max_steps, s.run_id, s.distance;
