-- scaling_claims: the fitted slope and R² of every transformer split/test role with a
-- compute range (the paper's log-linear claim).
SELECT
    split,                        -- the split's name
    role,                         -- test role
    any_value(slope) AS slope,    -- pass@1 per 10x FLOPs
    any_value(r2) AS r2,          -- R²
    any_value(n_fit) AS n         -- runs in the fit
FROM scaling
WHERE method = 'transformer' AND role LIKE 'test\_%' ESCAPE '\' AND slope IS NOT NULL
GROUP BY ALL
ORDER BY ALL;
