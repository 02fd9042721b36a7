-- proximity_auc: mean Mann-Whitney AUC over runs per distance, all test roles pooled, and
-- how many runs were evaluated on test roles at all (figure 4 and the claims table).
SELECT
    d.distance,                                                         -- 'syntactic', 'semantic' or 'pqgram'
    avg(auc) AS auc,                                                    -- mean AUC over runs (> 0.5: solved lie closer)
    count(auc) AS runs,                                                 -- runs with an AUC
    (SELECT count(DISTINCT run_id) FROM proximity WHERE passed IS NOT NULL) AS evaluated_runs -- runs with test answers
FROM (VALUES ('pqgram'), ('semantic'), ('syntactic')) AS d(distance)
LEFT JOIN proximity_summary AS s ON s.distance = d.distance AND s.role = 'all_test'
GROUP BY d.distance
ORDER BY d.distance;
