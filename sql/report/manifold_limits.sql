-- manifold_limits: where the programs are on each manifold's first two coordinates: the
-- 0.5% and 99.5% quantiles (the axes of the manifold figures, so a few far programs, e.g.
-- the 0-operator ones, do not squeeze the rest into a corner) and how many programs lie
-- outside them.
WITH coords AS (
    SELECT 'syn' AS manifold, syn[1] AS x, syn[2] AS y FROM manifold
    UNION ALL
    SELECT 'sem', sem[1], sem[2] FROM manifold WHERE sem IS NOT NULL
),
limits AS (
    SELECT manifold,
           quantile_cont(x, 0.005) AS x_lo, quantile_cont(x, 0.995) AS x_hi,
           quantile_cont(y, 0.005) AS y_lo, quantile_cont(y, 0.995) AS y_hi,
           count(*) AS n
    FROM coords GROUP BY manifold
)
SELECT
    l.manifold,                              -- 'syn' or 'sem'
    l.x_lo, l.x_hi,                          -- coordinate 1: 0.5% and 99.5% quantiles
    l.y_lo, l.y_hi,                          -- coordinate 2: the same
    l.n,                                     -- programs with coordinates
    count(*) FILTER (WHERE c.x < l.x_lo OR c.x > l.x_hi OR c.y < l.y_lo OR c.y > l.y_hi) AS n_outside -- programs outside those limits
FROM limits AS l JOIN coords AS c USING (manifold)
GROUP BY ALL
ORDER BY l.manifold;
