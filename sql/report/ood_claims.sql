-- ood_claims: mean relative pass@1 drop per split over transformer runs (the paper's
-- support claims).
SELECT
    split,                            -- the split's name
    avg(rel_drop) AS rel,             -- mean relative drop
    count(DISTINCT run_id) AS runs    -- runs
FROM ood_drop
WHERE method = 'transformer'
GROUP BY split;
