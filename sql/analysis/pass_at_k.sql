-- pass_at_k: how often a run's model solves the programs of each role it was evaluated
-- on, one row per finished run (current universe) x evaluated view x role, counted from
-- analysed_predictions (one evaluation per run, view and role: the most complete; test
-- programs whose function the run trained on left out, and counted in n_excluded_trained).
--
-- pass@1 comes from the one answer per program: greedy decoding for trained models, the
-- search's answer for search runs (decoding 'search'; any decoding but 'sampled' counts
-- as the answer), with a 95% Wilson score interval:  (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n),  z = 1.959964.
--
-- Per-program pass@1 lets a common function dominate (one constant predicted for every
-- task passes on all the programs of that constant). Two columns say whether it does:
-- function_pass_at_1 weights each distinct target function of the role once (pass@1 of
-- its programs averaged, then averaged over functions), and top_prediction_share is the
-- share of the role's answers that are the single most frequent predicted function (the
-- predicted program's function; an unparsed answer predicts no function: it counts in the
-- denominator, never as the top one). `gensynth train` and the report warn above 0.2.
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
        any_value(p.eval_id) AS eval_id,
        coalesce('f' || any_value(p.function_id), 'task ' || p.program_id) AS target_function,
        count(*) FILTER (WHERE p.decoding <> 'sampled') AS n_greedy,
        bool_or(p.passed) FILTER (WHERE p.decoding <> 'sampled') AS greedy_passed,
        bool_or(p.parsed) FILTER (WHERE p.decoding <> 'sampled') AS greedy_parsed,
        bool_or(p.exact_match) FILTER (WHERE p.decoding <> 'sampled') AS greedy_exact,
        bool_or(p.offgrid_passed) FILTER (WHERE p.decoding <> 'sampled') AS greedy_offgrid,
        min(p.predicted_function) FILTER (WHERE p.decoding <> 'sampled') AS answer_function,
        min(p.predicted) FILTER (WHERE p.decoding <> 'sampled') AS answer_text,
        count(*) FILTER (WHERE p.decoding = 'sampled') AS n_samples,
        count(*) FILTER (WHERE p.decoding = 'sampled' AND p.passed) AS c_samples
    FROM analysed_predictions AS p
    WHERE NOT p.trained_on
    GROUP BY p.run_id, p.view, p.role, p.program_id
),
excluded AS (  -- test programs left out because the run trained on their function
    SELECT run_id, view, role, count(DISTINCT program_id) AS n_excluded_trained
    FROM analysed_predictions
    WHERE trained_on
    GROUP BY run_id, view, role
),
by_function AS (  -- pass@1 of each target function (its programs' answers averaged)
    SELECT run_id, view, role, target_function, avg(greedy_passed::INTEGER) AS function_pass
    FROM per_program
    WHERE n_greedy > 0
    GROUP BY run_id, view, role, target_function
),
functions_scored AS (
    SELECT run_id, view, role, count(*) AS n_functions,
           avg(function_pass ORDER BY target_function) AS function_pass_at_1  -- ordered: the same float sum every time
    FROM by_function
    GROUP BY run_id, view, role
),
top_answer AS (  -- the most frequent predicted function among the role's answers
    SELECT run_id, view, role, answer_function, count(*) AS n_answers, min(answer_text) AS example
    FROM per_program
    WHERE n_greedy > 0 AND answer_function IS NOT NULL
    GROUP BY run_id, view, role, answer_function
    QUALIFY row_number() OVER (PARTITION BY run_id, view, role ORDER BY count(*) DESC, answer_function) = 1
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
        avg((c_samples > 0)::INTEGER) FILTER (WHERE n_samples > 0) AS p_all,
        any_value(eval_id) AS eval_id
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
    greatest(0.0, (n_passed / nullif(n, 0) + 1.959964 ^ 2 / (2 * n)
        - 1.959964 * sqrt(n_passed / nullif(n, 0) * (1 - n_passed / nullif(n, 0)) / n + 1.959964 ^ 2 / (4 * n ^ 2)))
        / (1 + 1.959964 ^ 2 / n)) AS pass_at_1_lo,      -- lower end of the 95% Wilson interval of pass_at_1 (clamped to 0: rounding gave -1.7e-18 at pass@1 0)
    least(1.0, (n_passed / nullif(n, 0) + 1.959964 ^ 2 / (2 * n)
        + 1.959964 * sqrt(n_passed / nullif(n, 0) * (1 - n_passed / nullif(n, 0)) / n + 1.959964 ^ 2 / (4 * n ^ 2)))
        / (1 + 1.959964 ^ 2 / n)) AS pass_at_1_hi,      -- upper end of the 95% Wilson interval of pass_at_1 (clamped to 1)
    parse_rate,                                         -- share of greedy predictions that are well-formed programs
    exact_match_rate,                                   -- share of greedy predictions equal to the target's text
    offgrid_pass_rate,                                  -- share of greedy predictions that also agree off the grid (no aliasing)
    n_sampled,                                          -- programs with sampled predictions (0 if the run did not sample)
    samples,                                            -- samples per program (the smallest n over sampled programs)
    CASE WHEN samples >= 1 THEN sample_pass_at_1 END AS sample_pass_at_1, -- unbiased pass@1 from the samples (mean c/n)
    CASE WHEN samples >= 5 THEN p5 END AS pass_at_5,    -- unbiased pass@5 (NULL with fewer than 5 samples per program)
    CASE WHEN samples >= 10 THEN p10 END AS pass_at_10, -- unbiased pass@10 (NULL with fewer than 10 samples per program)
    p_all AS pass_at_samples,                           -- share of sampled programs with at least one correct sample (pass@n)
    f.n_functions,                                      -- distinct target functions among the n programs
    f.function_pass_at_1,                               -- pass@1 with each target function weighted once (mean over functions of their programs' pass@1)
    coalesce(t.n_answers, 0) / nullif(n, 0) AS top_prediction_share, -- share of the n answers that are the single most frequent predicted function (> 0.2: one answer fakes pass@1)
    t.example AS top_prediction,                        -- a predicted program of that most frequent function (prefix tokens)
    coalesce(x.n_excluded_trained, 0) AS n_excluded_trained, -- test programs left out because the run trained on their function (evaluations on another split)
    eval_id                                             -- the evaluation counted (analysed_predictions: the most complete; NULL for rows from before evaluations were recorded)
FROM counts
LEFT JOIN functions_scored AS f USING (run_id, view, role)
LEFT JOIN top_answer AS t USING (run_id, view, role)
LEFT JOIN excluded AS x USING (run_id, view, role);
