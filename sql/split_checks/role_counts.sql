-- role_counts: the size of each role of a split, run once into the TEMP table
-- __gensynth_split_rows (program_id, role) by gensynth.splits.contract. Used by
-- `gensynth split add/check/show` and the support kind's check (test roles must share no
-- function with train).
--
-- Columns:
--   role             the role (train, val, test_*; NULL rows are reported by violations.sql)
--   programs         rows of the role
--   functions        distinct functions of the role's programs
--   shared_with_train  distinct functions of the role that train also has (the train role itself: all of them)
WITH s AS (
    SELECT r.role, r.program_id, p.function_id
    FROM __gensynth_split_rows r LEFT JOIN programs p USING (program_id)
),
train_functions AS (SELECT DISTINCT function_id FROM s WHERE role = 'train')
SELECT role,
       count(*) AS programs,
       count(DISTINCT function_id) AS functions,
       count(DISTINCT function_id) FILTER (WHERE function_id IN (SELECT function_id FROM train_functions)) AS shared_with_train
FROM s
GROUP BY role
ORDER BY role;
