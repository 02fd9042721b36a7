-- proximity_summary: are solved test programs closer to the training data than unsolved
-- ones? One row per finished run, evaluated view, role (plus role 'all_test': every test
-- role of that view pooled) and distance: 'syntactic', 'semantic', 'pqgram'.
--
-- Medians and means per group, and the Mann-Whitney U test computed from mid-ranks
-- (ties share the average rank):  U = R_unsolved - n_u(n_u + 1)/2,  the number of
-- (solved, unsolved) pairs in which the unsolved program is farther, ties counting 1/2.
-- auc = U / (n_s n_u) is the probability that a random unsolved program lies farther
-- than a random solved one (0.5: no difference; > 0.5: solved programs are closer). z is
-- the normal approximation with the tie correction, sigma² = n_s n_u / 12 ·
-- ((N + 1) - Σ(t³ - t) / (N(N - 1))), no continuity correction; p_value is two-sided,
-- erfc(|z|/√2) by Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7).
CREATE OR REPLACE VIEW proximity_summary AS
WITH obs AS (
    SELECT run_id, train_view, view, role, passed, 'syntactic' AS distance, syn_nn_dist AS dist FROM proximity
    UNION ALL
    SELECT run_id, train_view, view, role, passed, 'semantic', sem_nn_dist FROM proximity
    UNION ALL
    SELECT run_id, train_view, view, role, passed, 'pqgram', pqgram_nn_dist FROM proximity
),
pooled AS (
    SELECT run_id, train_view, view, role, passed, distance, dist FROM obs WHERE dist IS NOT NULL AND passed IS NOT NULL
    UNION ALL
    SELECT run_id, train_view, view, 'all_test', passed, distance, dist FROM obs WHERE dist IS NOT NULL AND passed IS NOT NULL
),
ranked AS (
    SELECT
        *,
        rank() OVER (PARTITION BY run_id, view, role, distance ORDER BY dist)
            + (count(*) OVER (PARTITION BY run_id, view, role, distance, dist) - 1) / 2.0 AS mid_rank
    FROM pooled
),
ties AS (
    SELECT run_id, view, role, distance, sum(t * t * t - t) AS tie_term
    FROM (SELECT run_id, view, role, distance, count(*)::DOUBLE AS t FROM pooled GROUP BY run_id, view, role, distance, dist)
    GROUP BY run_id, view, role, distance
),
groups AS (
    SELECT
        run_id, any_value(train_view) AS train_view, view, role, distance,
        count(*) FILTER (WHERE passed) AS n_solved,
        count(*) FILTER (WHERE NOT passed) AS n_unsolved,
        median(dist) FILTER (WHERE passed) AS median_solved,
        median(dist) FILTER (WHERE NOT passed) AS median_unsolved,
        avg(dist) FILTER (WHERE passed) AS mean_solved,
        avg(dist) FILTER (WHERE NOT passed) AS mean_unsolved,
        sum(mid_rank) FILTER (WHERE NOT passed) AS rank_sum_unsolved
    FROM ranked
    GROUP BY run_id, view, role, distance
),
tested AS (
    SELECT
        g.*,
        g.rank_sum_unsolved - g.n_unsolved * (g.n_unsolved + 1) / 2.0 AS u,
        g.n_solved + g.n_unsolved AS n_all,
        t.tie_term
    FROM groups AS g
    JOIN ties AS t USING (run_id, view, role, distance)
),
scored AS (
    SELECT
        *,
        (u - n_solved * n_unsolved / 2.0)
            / nullif(sqrt(n_solved * n_unsolved / 12.0 * ((n_all + 1) - tie_term / nullif(n_all * (n_all - 1), 0))), 0) AS z
    FROM tested
)
SELECT
    run_id,                                          -- finished_runs.run_id
    train_view,                                      -- split the run trained on (reference set of the distances)
    view,                                            -- split view whose role was evaluated
    role,                                            -- the test role, or 'all_test' for every test role of the view pooled
    distance,                                        -- 'syntactic' (manifold.syn), 'semantic' (manifold.sem) or 'pqgram'
    n_solved,                                        -- test programs solved (greedy) with a distance
    n_unsolved,                                      -- test programs not solved with a distance
    median_solved,                                   -- median distance to the nearest train program, solved programs
    median_unsolved,                                 -- median distance, unsolved programs
    mean_solved,                                     -- mean distance, solved programs
    mean_unsolved,                                   -- mean distance, unsolved programs
    CASE WHEN n_solved > 0 AND n_unsolved > 0 THEN u END AS u_statistic, -- Mann-Whitney U of the unsolved group (pairs where the unsolved one is farther; ties 1/2)
    CASE WHEN n_solved > 0 AND n_unsolved > 0 THEN u / (n_solved * n_unsolved) END AS auc, -- U / (n_solved n_unsolved): P(unsolved farther); 0.5 = no difference
    CASE WHEN n_solved > 0 AND n_unsolved > 0 THEN z END AS z,  -- normal approximation of U (tie-corrected); > 0: solved programs are closer
    CASE WHEN n_solved > 0 AND n_unsolved > 0 AND z IS NOT NULL THEN
        (1 / (1 + 0.3275911 * abs(z) / sqrt(2))) * (0.254829592 + (1 / (1 + 0.3275911 * abs(z) / sqrt(2)))
          * (-0.284496736 + (1 / (1 + 0.3275911 * abs(z) / sqrt(2))) * (1.421413741
          + (1 / (1 + 0.3275911 * abs(z) / sqrt(2))) * (-1.453152073 + (1 / (1 + 0.3275911 * abs(z) / sqrt(2))) * 1.061405429))))
        * exp(-(z * z) / 2)
    END AS p_value                                   -- two-sided p-value of z (normal approximation)
FROM scored;
