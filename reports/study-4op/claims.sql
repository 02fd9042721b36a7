-- claims: every number of the 4-op study's claims table, from the exported Parquet files
-- alone (results/ = `gensynth runs export`, beyond_runs.csv = which beyond run solved tasks
-- of how many operators). Run from this directory:
--     cd reports/study-4op && duckdb -c ".read claims.sql"
-- claims.py runs the same statements and writes README.md's table from them.
--
-- Intervals. A cell's 95% interval is over the training seeds (the runs are the unit that
-- varies): mean ± t(0.975, n-1) · sd / sqrt(n), n = 3 seeds, t = 4.303. The programs inside
-- one run add a binomial error too (pass_at_k's Wilson interval, at 2,000 programs about
-- ±0.02), which the seed-to-seed spread already includes. A scaling slope's interval is the
-- ordinary least-squares one, slope ± t(0.975, n-2) · se; an AUC's is over the seeds of a
-- block, as a cell's.

-- t975(df): the 0.975 quantile of Student's t with df degrees of freedom (df <= 30; 1.96 beyond).
CREATE OR REPLACE MACRO t975(df) AS CASE WHEN df IS NULL OR df < 1 THEN NULL WHEN df > 30 THEN 1.96 ELSE
    [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
     2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042][df::INTEGER] END;

-- The study's model runs: the density and support blocks are lines micro at 1,200 steps.
CREATE OR REPLACE VIEW study_runs AS
SELECT r.*, regexp_replace(r.view, '^split_', '') AS split_name,
       CASE WHEN r.size = 'micro' AND r.max_steps = 1200 THEN 'block' ELSE 'scaling' END AS block
FROM 'results/analysis/finished_runs.parquet' AS r
WHERE r.method = 'transformer';

CREATE OR REPLACE VIEW run_scores AS
SELECT s.split_name, s.block, s.seed, s.size, s.max_steps, s.training_flops, k.*
FROM 'results/analysis/pass_at_k.parquet' AS k
JOIN study_runs AS s USING (run_id, view);

-- claim: density_cells
-- The density matrix: each training strategy's models (3 seeds) on each test role.
CREATE OR REPLACE VIEW density_cells AS
SELECT regexp_replace(split_name, '^density_', '') AS train_strategy,
       regexp_replace(role, '^test_', '') AS test_strategy,
       count(*) AS n_seeds,
       avg(pass_at_1) AS pass_at_1,
       avg(pass_at_1) - t975(count(*) - 1) * stddev_samp(pass_at_1) / sqrt(count(*)) AS lo,
       avg(pass_at_1) + t975(count(*) - 1) * stddev_samp(pass_at_1) / sqrt(count(*)) AS hi,
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
    SELECT split_name, seed, avg(pass_at_1) AS row_mean, max(pass_at_1) - min(pass_at_1) AS spread,
           arg_max(role, pass_at_1) AS best_role
    FROM run_scores
    WHERE block = 'block' AND split_name LIKE 'density\_%' ESCAPE '\' AND role LIKE 'test\_%' ESCAPE '\'
    GROUP BY ALL
)
SELECT regexp_replace(split_name, '^density_', '') AS train_strategy, count(*) AS n_seeds,
       avg(row_mean) AS row_mean,
       avg(row_mean) - t975(count(*) - 1) * stddev_samp(row_mean) / sqrt(count(*)) AS row_mean_lo,
       avg(row_mean) + t975(count(*) - 1) * stddev_samp(row_mean) / sqrt(count(*)) AS row_mean_hi,
       avg(spread) AS spread,
       avg(spread) - t975(count(*) - 1) * stddev_samp(spread) / sqrt(count(*)) AS spread_lo,
       avg(spread) + t975(count(*) - 1) * stddev_samp(spread) / sqrt(count(*)) AS spread_hi,
       mode(best_role) AS usual_best_role
FROM per_run GROUP BY ALL;
SELECT * FROM density_rows ORDER BY spread;

-- claim: support
-- Support: test_id against each out-of-distribution role, relative drop per seed.
CREATE OR REPLACE VIEW support AS
SELECT d.split, d.ood_role, count(*) AS n_seeds,
       avg(d.id_pass_at_1) AS id_pass_at_1,
       avg(d.id_pass_at_1) - t975(count(*) - 1) * stddev_samp(d.id_pass_at_1) / sqrt(count(*)) AS id_lo,
       avg(d.id_pass_at_1) + t975(count(*) - 1) * stddev_samp(d.id_pass_at_1) / sqrt(count(*)) AS id_hi,
       avg(d.ood_pass_at_1) AS ood_pass_at_1,
       avg(d.ood_pass_at_1) - t975(count(*) - 1) * stddev_samp(d.ood_pass_at_1) / sqrt(count(*)) AS ood_lo,
       avg(d.ood_pass_at_1) + t975(count(*) - 1) * stddev_samp(d.ood_pass_at_1) / sqrt(count(*)) AS ood_hi,
       avg(d.abs_drop) AS abs_drop,
       avg(d.rel_drop) AS rel_drop,
       avg(d.rel_drop) - t975(count(*) - 1) * stddev_samp(d.rel_drop) / sqrt(count(*)) AS rel_lo,
       avg(d.rel_drop) + t975(count(*) - 1) * stddev_samp(d.rel_drop) / sqrt(count(*)) AS rel_hi
FROM 'results/analysis/ood_drop.parquet' AS d
JOIN study_runs AS s USING (run_id, view)
WHERE s.block = 'block' AND d.method = 'transformer'
GROUP BY ALL;
SELECT * FROM support ORDER BY split, ood_role;

-- claim: scaling
-- pass@1 = a + b log10(FLOPs) over every scaling point of a split and role (5 sizes x 3
-- budgets x 2 seeds), with the slope's interval; the linear fit pass@1 = a + b FLOPs for
-- comparison (R²); and the slope over the lower and the upper half of the compute range
-- (a flatter upper half is saturation).
CREATE OR REPLACE VIEW scaling_fit AS
WITH pts AS (
    SELECT split_name, role, log10(training_flops) AS x, training_flops AS f, pass_at_1 AS y,
           log10(training_flops) >= median(log10(training_flops)) OVER (PARTITION BY split_name, role) AS upper
    FROM run_scores
    WHERE block = 'scaling' AND training_flops > 0 AND pass_at_1 IS NOT NULL AND role LIKE 'test\_%' ESCAPE '\'
)
SELECT split_name, role, count(*) AS n_points,
       max(f) / min(f) AS flops_span,
       regr_slope(y, x) AS slope,
       regr_intercept(y, x) AS intercept,
       regr_r2(y, x) AS r2_log,
       regr_r2(y, f) AS r2_linear,
       -- se(slope) = sqrt(SSE / (n - 2) / Sxx), SSE = Syy - Sxy² / Sxx
       regr_slope(y, x) - t975(count(*) - 2) * sqrt(greatest(regr_syy(y, x) - regr_sxy(y, x) ^ 2 / regr_sxx(y, x), 0)
                                                   / (count(*) - 2) / regr_sxx(y, x)) AS slope_lo,
       regr_slope(y, x) + t975(count(*) - 2) * sqrt(greatest(regr_syy(y, x) - regr_sxy(y, x) ^ 2 / regr_sxx(y, x), 0)
                                                   / (count(*) - 2) / regr_sxx(y, x)) AS slope_hi,
       regr_slope(y, x) FILTER (NOT upper) AS slope_lower_half,
       regr_slope(y, x) FILTER (upper) AS slope_upper_half,
       max(y) AS best_pass_at_1
FROM pts GROUP BY ALL;
SELECT * FROM scaling_fit ORDER BY split_name, role;

-- claim: proximity
-- Are solved test programs nearer the training data? Mann-Whitney AUC of the nearest
-- training program's distance (solved vs unsolved, all test roles pooled) per run of the
-- density and support blocks, then over the seeds of each split.
CREATE OR REPLACE VIEW proximity AS
SELECT s.split_name, p.distance, count(*) AS n_runs, avg(p.auc) AS auc,
       avg(p.auc) - t975(count(*) - 1) * stddev_samp(p.auc) / sqrt(count(*)) AS auc_lo,
       avg(p.auc) + t975(count(*) - 1) * stddev_samp(p.auc) / sqrt(count(*)) AS auc_hi,
       sum(p.n_solved) AS n_solved, sum(p.n_unsolved) AS n_unsolved
FROM 'results/analysis/proximity_summary.parquet' AS p
JOIN study_runs AS s ON s.run_id = p.run_id AND s.view = p.view
WHERE s.block = 'block' AND p.role = 'all_test' AND p.auc IS NOT NULL
GROUP BY ALL;
SELECT * FROM proximity ORDER BY distance, split_name;

-- claim: proximity_overall
CREATE OR REPLACE VIEW proximity_overall AS
SELECT distance, count(*) AS n_splits, avg(auc) AS auc, min(auc_lo) AS worst_split_lo, max(auc_hi) AS best_split_hi,
       count(*) FILTER (auc_lo > 0.5) AS splits_above_half
FROM proximity GROUP BY ALL;
SELECT * FROM proximity_overall ORDER BY distance;

-- claim: search
-- Search and hybrid against the parent transformer on the same test roles (Wilson intervals
-- over the tasks), and beyond the universe by number of operators.
CREATE OR REPLACE VIEW search AS
SELECT m.method, m.role, coalesce(b.ops, 0) AS ops, m.n, m.pass_at_1, m.pass_at_1_lo, m.pass_at_1_hi, m.wall_time_s
FROM 'results/analysis/method_comparison.parquet' AS m
LEFT JOIN read_csv('beyond_runs.csv', header = false, delim = ',', auto_detect = false, columns = {'run_id': 'VARCHAR', 'ops': 'INTEGER'}) AS b USING (run_id)
WHERE m.method <> 'transformer' AND (m.view = 'split_support_syntactic' OR b.ops IS NOT NULL);
SELECT * FROM search ORDER BY ops, role, method;

-- claim: transformer_same_roles
CREATE OR REPLACE VIEW transformer_same_roles AS
SELECT role, count(*) AS n_seeds, avg(pass_at_1) AS pass_at_1,
       avg(pass_at_1) - t975(count(*) - 1) * stddev_samp(pass_at_1) / sqrt(count(*)) AS lo,
       avg(pass_at_1) + t975(count(*) - 1) * stddev_samp(pass_at_1) / sqrt(count(*)) AS hi
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
