-- pass_at_k: how often a run's model solves the programs of each role it was evaluated
-- on, one row per finished run x evaluated view x role.
--
-- pass@1 comes from the one answer per program: greedy decoding for trained models, the
-- search's answer for search runs (decoding 'search'; any decoding but 'sampled' counts
-- as the answer), with a 95% Wilson score interval:  (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n),  z = 1.959964.
--
-- pass@k comes from the n sampled predictions of each program, c of them correct, with
-- the unbiased estimator of Chen et al. (2021):  pass@k = 1 - C(n-c, k) / C(n, k),
-- averaged over programs; it is 1 when n - c < k. The binomial ratio is computed in
-- log space with lgamma:  C(n-c,k)/C(n,k) = exp(lgamma(n-c+1) - lgamma(n-c-k+1)
-- - lgamma(n+1) + lgamma(n-k+1)),  accurate to ~1e-12 for n up to thousands. A pass@k
-- column is NULL where no program was sampled or some sampled program has fewer than k
-- samples. For another k, copy the `est` expression with that k.
CREATE OR REPLACE VIEW pass_at_k AS
WITH per_program AS (
    SELECT
        p.run_id,
        p.view,
        p.role,
        p.program_id,
        count(*) FILTER (WHERE p.decoding <> 'sampled') AS n_greedy,
        bool_or(p.passed) FILTER (WHERE p.decoding <> 'sampled') AS greedy_passed,
        bool_or(p.parsed) FILTER (WHERE p.decoding <> 'sampled') AS greedy_parsed,
        bool_or(p.exact_match) FILTER (WHERE p.decoding <> 'sampled') AS greedy_exact,
        bool_or(p.offgrid_passed) FILTER (WHERE p.decoding <> 'sampled') AS greedy_offgrid,
        count(*) FILTER (WHERE p.decoding = 'sampled') AS n_samples,
        count(*) FILTER (WHERE p.decoding = 'sampled' AND p.passed) AS c_samples
    FROM predictions AS p
    JOIN finished_runs AS r USING (run_id)
    GROUP BY p.run_id, p.view, p.role, p.program_id
),
est AS (
    SELECT
        *,
        -- unbiased pass@k per sampled program (NULL when it has fewer than k samples)
        CASE WHEN n_samples < 1 THEN NULL WHEN n_samples - c_samples < 1 THEN 1.0
             ELSE 1.0 - exp(lgamma(n_samples - c_samples + 1) - lgamma(n_samples - c_samples - 1 + 1)
                            - lgamma(n_samples + 1) + lgamma(n_samples - 1 + 1)) END AS est_1,
        CASE WHEN n_samples < 5 THEN NULL WHEN n_samples - c_samples < 5 THEN 1.0
             ELSE 1.0 - exp(lgamma(n_samples - c_samples + 1) - lgamma(n_samples - c_samples - 5 + 1)
                            - lgamma(n_samples + 1) + lgamma(n_samples - 5 + 1)) END AS est_5,
        CASE WHEN n_samples < 10 THEN NULL WHEN n_samples - c_samples < 10 THEN 1.0
             ELSE 1.0 - exp(lgamma(n_samples - c_samples + 1) - lgamma(n_samples - c_samples - 10 + 1)
                            - lgamma(n_samples + 1) + lgamma(n_samples - 10 + 1)) END AS est_10
    FROM per_program
),
counts AS (
    SELECT
        run_id, view, role,
        count(*) FILTER (WHERE n_greedy > 0) AS n,
        count(*) FILTER (WHERE greedy_passed) AS n_passed,
        avg(greedy_parsed::INTEGER) AS parse_rate,
        avg(greedy_exact::INTEGER) AS exact_match_rate,
        avg(greedy_offgrid::INTEGER) AS offgrid_pass_rate,
        count(*) FILTER (WHERE n_samples > 0) AS n_sampled,
        min(n_samples) FILTER (WHERE n_samples > 0) AS samples,
        avg(est_1) FILTER (WHERE n_samples > 0) AS sample_pass_at_1,
        avg(est_5) FILTER (WHERE n_samples > 0) AS p5,
        avg(est_10) FILTER (WHERE n_samples > 0) AS p10,
        avg((c_samples > 0)::INTEGER) FILTER (WHERE n_samples > 0) AS p_all
    FROM est
    GROUP BY run_id, view, role
)
SELECT
    run_id,                                             -- finished_runs.run_id
    view,                                               -- split view whose roles were evaluated (predictions.view)
    role,                                               -- role of that view: 'train', 'val', 'test_*'
    n,                                                  -- programs with an answer (greedy prediction, or a search run's answer)
    n_passed,                                           -- of them, solved (the prediction computes the target function)
    n_passed / nullif(n, 0) AS pass_at_1,               -- greedy pass@1 = n_passed / n
    (n_passed / nullif(n, 0) + 1.959964 ^ 2 / (2 * n)
        - 1.959964 * sqrt(n_passed / nullif(n, 0) * (1 - n_passed / nullif(n, 0)) / n + 1.959964 ^ 2 / (4 * n ^ 2)))
        / (1 + 1.959964 ^ 2 / n) AS pass_at_1_lo,       -- lower end of the 95% Wilson interval of pass_at_1
    (n_passed / nullif(n, 0) + 1.959964 ^ 2 / (2 * n)
        + 1.959964 * sqrt(n_passed / nullif(n, 0) * (1 - n_passed / nullif(n, 0)) / n + 1.959964 ^ 2 / (4 * n ^ 2)))
        / (1 + 1.959964 ^ 2 / n) AS pass_at_1_hi,       -- upper end of the 95% Wilson interval of pass_at_1
    parse_rate,                                         -- share of greedy predictions that are well-formed programs
    exact_match_rate,                                   -- share of greedy predictions equal to the target's text
    offgrid_pass_rate,                                  -- share of greedy predictions that also agree off the grid (no aliasing)
    n_sampled,                                          -- programs with sampled predictions (0 if the run did not sample)
    samples,                                            -- samples per program (the smallest n over sampled programs)
    CASE WHEN samples >= 1 THEN sample_pass_at_1 END AS sample_pass_at_1, -- unbiased pass@1 from the samples (mean c/n)
    CASE WHEN samples >= 5 THEN p5 END AS pass_at_5,    -- unbiased pass@5 (NULL with fewer than 5 samples per program)
    CASE WHEN samples >= 10 THEN p10 END AS pass_at_10, -- unbiased pass@10 (NULL with fewer than 10 samples per program)
    p_all AS pass_at_samples                            -- share of sampled programs with at least one correct sample (pass@n)
FROM counts;
