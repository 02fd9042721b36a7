-- claims: every number of the 4-op study's claims table, from the exported Parquet files
-- alone (results/ = `gensynth runs export`, beyond_runs.csv = which beyond run solved tasks
-- of how many operators). Run from this directory:
--     cd reports/study-4op && duckdb -c ".read claims.sql"
-- claims.py runs the same statements and writes README.md's table from them.
--
-- Intervals (95%). Two sources of error, combined: the training seeds (mean ± t(0.975,
-- n-1) · sd / sqrt(n), n = 3 seeds, t = 4.303) and the test programs. Every seed scores
-- the same 2,000 programs of a role (the split and the evaluation subset are fixed), so
-- the programs' binomial error is shared by the seeds, not averaged away: its variance is
-- p(1-p)/N for a mean pass@1 (N programs), and by the delta method (o/i)^2 (var_o/o^2 +
-- var_i/i^2) for a relative drop 1 - o/i. Half-width = sqrt(seed half-width^2 + (1.96 *
-- program se)^2). A scaling slope's interval is the least-squares one, slope ± t(0.975,
-- n-2) · se (DuckDB's regr_sxx/regr_syy/regr_sxy are sums: n·var_pop). An AUC's interval
-- combines its seeds with the Hanley-McNeil standard error of each run's AUC.

-- t975(df): the 0.975 quantile of Student's t with df degrees of freedom (a table to 30).
-- Past 30 the Cornish-Fisher expansion around z = 1.959964 (error < 1e-4 there).
CREATE OR REPLACE MACRO t975(df) AS CASE WHEN df IS NULL OR df < 1 THEN NULL
    WHEN df > 30 THEN 1.959964 + (1.959964 ^ 3 + 1.959964) / (4 * df)
                      + (5 * 1.959964 ^ 5 + 16 * 1.959964 ^ 3 + 3 * 1.959964) / (96 * df ^ 2) ELSE
    [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
     2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042][df::INTEGER] END;

-- half(sd, k, prog_var): the combined 95% half-width of a mean over k seeds (sample sd sd)
-- whose programs add variance prog_var (see above); with one seed only the programs count.
CREATE OR REPLACE MACRO half(sd, k, prog_var) AS
    sqrt(coalesce((t975(k - 1) * sd / sqrt(k)) ^ 2, 0) + 1.959964 ^ 2 * greatest(prog_var, 0));

-- binom_var(p, n): the variance of a pass rate p measured on n programs.
CREATE OR REPLACE MACRO binom_var(p, n) AS p * (1 - p) / nullif(n, 0);

-- The study's model runs, each grid point once (the latest finished run of a point, should
-- a point have been rerun): the density and support blocks are lines micro at 1,200 steps;
-- the scaling block is the grid of scaling_support.toml (30 / 100 / 300 steps). Any other
-- run in the warehouse (a demo, a trial) is no part of the study.
CREATE OR REPLACE VIEW study_runs AS
SELECT r.*, regexp_replace(r.view, '^split_', '') AS split_name,
       CASE WHEN r.size = 'micro' AND r.max_steps = 1200 THEN 'block' ELSE 'scaling' END AS block
FROM 'results/analysis/finished_runs.parquet' AS r
JOIN 'results/runs.parquet' AS c USING (run_id)
WHERE r.method = 'transformer'
  AND json_extract(c.config, '$.eval.limit')::INTEGER = 2000  -- the study evaluates 2,000 programs per role (a demo: 500)
  AND ((r.size = 'micro' AND r.max_steps = 1200)
       OR (r.view = 'split_support_syntactic' AND r.max_steps IN (30, 100, 300)
           AND r.size IN ('nano', 'micro', 'tiny', 'small', 'medium'))                 -- scaling_support.toml
       OR (r.view = 'split_support_syntactic' AND r.max_steps = 1000
           AND r.size IN ('nano', 'micro', 'tiny')))                                   -- scaling_long.toml
QUALIFY row_number() OVER (PARTITION BY r.view, r.size, r.max_steps, r.seed ORDER BY r.finished_at DESC) = 1;

CREATE OR REPLACE VIEW run_scores AS
SELECT s.split_name, s.block, s.seed, s.size, s.max_steps, s.training_flops, k.*
FROM 'results/analysis/pass_at_k.parquet' AS k
JOIN study_runs AS s USING (run_id, view);

-- claim: density_cells
-- The density matrix: each training strategy's models (3 seeds) on each test role.
CREATE OR REPLACE VIEW density_cells AS
SELECT regexp_replace(split_name, '^density_', '') AS train_strategy,
       regexp_replace(role, '^test_', '') AS test_strategy,
       count(pass_at_1) AS n_seeds,
       avg(n) AS programs,
       avg(pass_at_1) AS pass_at_1,
       avg(pass_at_1) - half(stddev_samp(pass_at_1), count(pass_at_1), binom_var(avg(pass_at_1), avg(n))) AS lo,
       avg(pass_at_1) + half(stddev_samp(pass_at_1), count(pass_at_1), binom_var(avg(pass_at_1), avg(n))) AS hi,
       avg(function_pass_at_1) AS function_pass_at_1,
       max(top_prediction_share) AS max_top_share
FROM run_scores
WHERE block = 'block' AND split_name LIKE 'density\_%' ESCAPE '\' AND role LIKE 'test\_%' ESCAPE '\'
GROUP BY ALL;
SELECT * FROM density_cells ORDER BY train_strategy, test_strategy;

-- claim: density_rows
-- Robustness: each run's spread over the four test roles (max - min), then over seeds.
CREATE OR REPLACE VIEW density_rows AS
WITH per_run AS (
    SELECT split_name, seed, count(pass_at_1) AS n_roles, avg(n) AS programs, avg(pass_at_1) AS row_mean,
           max(pass_at_1) - min(pass_at_1) AS spread,
           (max(pass_at_1) - min(pass_at_1)) / nullif(avg(pass_at_1), 0) AS rel_spread,
           arg_max(role, pass_at_1) AS best_role
    FROM run_scores
    WHERE block = 'block' AND split_name LIKE 'density\_%' ESCAPE '\' AND role LIKE 'test\_%' ESCAPE '\'
    GROUP BY ALL
)
-- The programs' error of a spread (max - min of two cells) is about twice one cell's; of a
-- relative spread, that divided by the row mean squared (the row mean's own error is small).
SELECT regexp_replace(split_name, '^density_', '') AS train_strategy, count(*) AS n_seeds, min(n_roles) AS roles,
       avg(row_mean) AS row_mean,
       avg(row_mean) - half(stddev_samp(row_mean), count(*), binom_var(avg(row_mean), avg(programs)) / min(n_roles)) AS row_mean_lo,
       avg(row_mean) + half(stddev_samp(row_mean), count(*), binom_var(avg(row_mean), avg(programs)) / min(n_roles)) AS row_mean_hi,
       avg(spread) AS spread,
       avg(spread) - half(stddev_samp(spread), count(*), 2 * binom_var(avg(row_mean), avg(programs))) AS spread_lo,
       avg(spread) + half(stddev_samp(spread), count(*), 2 * binom_var(avg(row_mean), avg(programs))) AS spread_hi,
       avg(rel_spread) AS rel_spread,
       avg(rel_spread) - half(stddev_samp(rel_spread), count(*), 2 * binom_var(avg(row_mean), avg(programs)) / avg(row_mean) ^ 2) AS rel_spread_lo,
       avg(rel_spread) + half(stddev_samp(rel_spread), count(*), 2 * binom_var(avg(row_mean), avg(programs)) / avg(row_mean) ^ 2) AS rel_spread_hi,
       mode(best_role) AS usual_best_role
FROM per_run GROUP BY ALL;
SELECT * FROM density_rows ORDER BY spread;

-- claim: support
-- Support: test_id against each out-of-distribution role, relative drop per seed.
CREATE OR REPLACE VIEW support AS
WITH d AS (
    SELECT d.* FROM 'results/analysis/ood_drop.parquet' AS d
    JOIN study_runs AS s USING (run_id, view)
    WHERE s.block = 'block' AND d.method = 'transformer'
), m AS (
    SELECT split, ood_role, count(*) AS n_seeds, count(rel_drop) AS n_rel, avg(n_id) AS n_id, avg(n_ood) AS n_ood,
           avg(id_pass_at_1) AS i, stddev_samp(id_pass_at_1) AS sd_i,
           avg(ood_pass_at_1) AS o, stddev_samp(ood_pass_at_1) AS sd_o,
           avg(abs_drop) AS abs_drop, stddev_samp(abs_drop) AS sd_abs,
           avg(rel_drop) AS rel_drop, stddev_samp(rel_drop) AS sd_rel
    FROM d GROUP BY ALL
)
SELECT split, ood_role, n_seeds,
       i AS id_pass_at_1, i - half(sd_i, n_seeds, binom_var(i, n_id)) AS id_lo, i + half(sd_i, n_seeds, binom_var(i, n_id)) AS id_hi,
       o AS ood_pass_at_1, o - half(sd_o, n_seeds, binom_var(o, n_ood)) AS ood_lo, o + half(sd_o, n_seeds, binom_var(o, n_ood)) AS ood_hi,
       abs_drop,
       abs_drop - half(sd_abs, n_seeds, binom_var(i, n_id) + binom_var(o, n_ood)) AS abs_lo,
       abs_drop + half(sd_abs, n_seeds, binom_var(i, n_id) + binom_var(o, n_ood)) AS abs_hi,
       rel_drop,
       -- delta method: var(o/i) ≈ (o/i)² (var_o/o² + var_i/i²)
       rel_drop - half(sd_rel, n_rel, (o / nullif(i, 0)) ^ 2 * (binom_var(o, n_ood) / nullif(o, 0) ^ 2 + binom_var(i, n_id) / nullif(i, 0) ^ 2)) AS rel_lo,
       rel_drop + half(sd_rel, n_rel, (o / nullif(i, 0)) ^ 2 * (binom_var(o, n_ood) / nullif(o, 0) ^ 2 + binom_var(i, n_id) / nullif(i, 0) ^ 2)) AS rel_hi
FROM m;
SELECT * FROM support ORDER BY split, ood_role;

-- claim: scaling_fit
-- pass@1 = a + b log10(FLOPs) over every scaling point of support_syntactic: the grid of
-- scaling_support.toml (5 sizes x 30/100/300 steps x 2 seeds), the longer budgets of
-- scaling_long.toml (3 sizes x 1,000 steps x 2 seeds) and the support block's 3 runs
-- (micro, 1,200 steps), per program and per function (each function once: a model that
-- answers one constant to everything scores per program on the programs of that
-- constant, not per function); the slope's interval; the linear fit pass@1 = a + b FLOPs
-- for comparison (R²); and the slope over the lower and the upper half of the compute
-- range (an upper half significantly flatter than the lower is saturation).
CREATE OR REPLACE MACRO ols_se(y, x) AS  -- the least-squares slope's standard error (regr_* are sums)
    sqrt(greatest(regr_syy(y, x) - regr_sxy(y, x) ^ 2 / regr_sxx(y, x), 0) / (regr_count(y, x) - 2) / regr_sxx(y, x));
CREATE OR REPLACE VIEW scaling_fit AS
WITH pts AS (
    SELECT split_name, role, metric, log10(training_flops) AS x, training_flops AS f, y,
           log10(training_flops) > median(log10(training_flops)) OVER (PARTITION BY split_name, role, metric) AS upper
    FROM (SELECT *, 'pass@1' AS metric, pass_at_1 AS y FROM run_scores
          UNION ALL BY NAME
          SELECT *, 'function pass@1' AS metric, function_pass_at_1 AS y FROM run_scores)
    WHERE split_name = 'support_syntactic' AND training_flops > 0 AND y IS NOT NULL AND role LIKE 'test\_%' ESCAPE '\'
), halves AS (
    SELECT split_name, role, metric, upper, regr_slope(y, x) AS slope, ols_se(y, x) AS se, count(*) AS n
    FROM pts GROUP BY ALL
), whole AS (
    SELECT split_name, role, metric, count(*) AS n_points, max(f) / min(f) AS flops_span,
           regr_slope(y, x) AS slope, regr_intercept(y, x) AS intercept, ols_se(y, x) AS se,
           regr_r2(y, x) AS r2_log, regr_r2(y, f) AS r2_linear, max(y) AS best_pass_at_1
    FROM pts GROUP BY ALL
), fit AS (
    SELECT w.*, l.slope AS slope_lower_half, l.se AS se_lower, l.n AS n_lower,
           u.slope AS slope_upper_half, u.se AS se_upper, u.n AS n_upper
    FROM whole AS w
    LEFT JOIN halves AS l ON l.split_name = w.split_name AND l.role = w.role AND l.metric = w.metric AND NOT l.upper
    LEFT JOIN halves AS u ON u.split_name = w.split_name AND u.role = w.role AND u.metric = w.metric AND u.upper
)
SELECT *, slope - t975(n_points - 2) * se AS slope_lo, slope + t975(n_points - 2) * se AS slope_hi,
       -- saturation: the upper half's slope minus the lower half's, with its interval (the
       -- halves are independent fits; t with the smaller half's degrees of freedom)
       slope_upper_half - slope_lower_half AS slope_change,
       slope_upper_half - slope_lower_half - t975(least(n_lower, n_upper) - 2) * sqrt(se_lower ^ 2 + se_upper ^ 2) AS slope_change_lo,
       slope_upper_half - slope_lower_half + t975(least(n_lower, n_upper) - 2) * sqrt(se_lower ^ 2 + se_upper ^ 2) AS slope_change_hi
FROM fit;
SELECT * FROM scaling_fit ORDER BY split_name, role, metric DESC;

-- claim: proximity
-- Are solved test programs nearer the training data? The Mann-Whitney AUC of the nearest
-- training program's distance, solved vs unsolved, within each test role (pooling the
-- roles would confound distance with role: test_ood is both farther and harder), averaged
-- over a run's roles, then over the seeds of each split. AUC = P(an unsolved program is
-- farther than a solved one): 0.5 = no relation. Per role, the Hanley-McNeil variance
-- A(1-A) + (n_s-1)(Q1-A²) + (n_u-1)(Q2-A²) over n_s n_u, Q1 = A/(2-A), Q2 = 2A²/(1+A).
CREATE OR REPLACE VIEW proximity AS
WITH per_role AS (
    SELECT p.run_id, s.split_name, s.seed, p.role, p.distance, p.auc, p.n_solved, p.n_unsolved,
           (p.auc * (1 - p.auc) + (p.n_solved - 1) * (p.auc / (2 - p.auc) - p.auc ^ 2)
            + (p.n_unsolved - 1) * (2 * p.auc ^ 2 / (1 + p.auc) - p.auc ^ 2)) / (p.n_solved * p.n_unsolved) AS hm_var
    FROM 'results/analysis/proximity_summary.parquet' AS p
    JOIN study_runs AS s ON s.run_id = p.run_id AND s.view = p.view
    WHERE s.block = 'block' AND p.role <> 'all_test' AND p.auc IS NOT NULL AND p.n_solved >= 5 AND p.n_unsolved >= 5
), per_run AS (
    SELECT run_id, split_name, seed, distance, avg(auc) AS auc, sum(hm_var) / count(*) ^ 2 AS hm_var, count(*) AS n_roles,
           sum(n_solved) AS n_solved, sum(n_unsolved) AS n_unsolved
    FROM per_role GROUP BY ALL
)
SELECT split_name, distance, count(*) AS n_runs, min(n_roles) AS roles, avg(auc) AS auc,
       avg(auc) - half(stddev_samp(auc), count(*), avg(hm_var)) AS auc_lo,
       avg(auc) + half(stddev_samp(auc), count(*), avg(hm_var)) AS auc_hi,
       sum(n_solved) AS n_solved, sum(n_unsolved) AS n_unsolved
FROM per_run GROUP BY ALL;
SELECT * FROM proximity ORDER BY distance, split_name;

-- claim: proximity_overall
CREATE OR REPLACE VIEW proximity_overall AS
SELECT distance, count(*) AS n_splits, avg(auc) AS auc, min(auc_lo) AS worst_split_lo, max(auc_hi) AS best_split_hi,
       count(*) FILTER (auc_lo > 0.5) AS splits_above_half, count(*) FILTER (auc_hi < 0.5) AS splits_below_half
FROM proximity GROUP BY ALL;
SELECT * FROM proximity_overall ORDER BY distance;

-- claim: search
-- Search and hybrid against the parent transformer on the same test roles (Wilson intervals
-- over the tasks), and beyond the universe by number of operators.
CREATE OR REPLACE VIEW search AS
SELECT m.method, m.role, coalesce(b.ops, 0) AS ops, m.n, m.pass_at_1, m.pass_at_1_lo, m.pass_at_1_hi, m.wall_time_s
FROM 'results/analysis/method_comparison.parquet' AS m
JOIN 'results/analysis/finished_runs.parquet' AS r ON r.run_id = m.run_id AND r.view = m.view
LEFT JOIN read_csv('beyond_runs.csv', header = false, delim = ',', auto_detect = false, columns = {'run_id': 'VARCHAR', 'ops': 'INTEGER'}) AS b ON b.run_id = m.run_id
WHERE m.method <> 'transformer' AND (m.view = 'split_support_syntactic' OR b.ops IS NOT NULL)
-- one run per method, role and size of task (a resumed block may have rerun one: the latest counts)
QUALIFY row_number() OVER (PARTITION BY m.method, m.role, coalesce(b.ops, 0) ORDER BY r.finished_at DESC) = 1;
SELECT * FROM search ORDER BY ops, role, method;

-- claim: transformer_same_roles
CREATE OR REPLACE VIEW transformer_same_roles AS
SELECT role, count(pass_at_1) AS n_seeds, avg(pass_at_1) AS pass_at_1,
       avg(pass_at_1) - half(stddev_samp(pass_at_1), count(pass_at_1), binom_var(avg(pass_at_1), avg(n))) AS lo,
       avg(pass_at_1) + half(stddev_samp(pass_at_1), count(pass_at_1), binom_var(avg(pass_at_1), avg(n))) AS hi
FROM run_scores WHERE block = 'block' AND split_name = 'support_syntactic' AND role LIKE 'test\_%' ESCAPE '\'
GROUP BY ALL;
SELECT * FROM transformer_same_roles ORDER BY role;

-- claim: diversity
-- Prediction diversity and per-function pass@1 of every block run's test roles.
CREATE OR REPLACE VIEW diversity AS
SELECT split_name, role, count(*) AS n_seeds, avg(n) AS programs, avg(n_functions) AS functions,
       avg(pass_at_1) AS pass_at_1, avg(function_pass_at_1) AS function_pass_at_1,
       max(top_prediction_share) AS max_top_share
FROM run_scores WHERE block = 'block' AND role LIKE 'test\_%' ESCAPE '\'
GROUP BY ALL;
SELECT * FROM diversity ORDER BY split_name, role;
