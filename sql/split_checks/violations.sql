-- violations: one row counting the breaches of the split contract in a split's rows
-- (TEMP table __gensynth_split_rows), each reported by gensynth.splits.contract with the
-- fix. Every program has one role; program_id and role are never NULL; every program_id
-- is a program of the warehouse.
--
-- Columns:
--   null_rows           rows whose program_id or role is NULL
--   multi_role          programs that are in more than one role
--   multi_role_example  the smallest such program: {'id': program_id, 'roles': its roles}, NULL if none
--   unknown_ids         rows whose program_id is not in programs
WITH multi AS (
    SELECT program_id, list(DISTINCT role ORDER BY role) AS roles
    FROM __gensynth_split_rows
    GROUP BY program_id
    HAVING count(DISTINCT role) > 1
)
SELECT (SELECT count(*) FROM __gensynth_split_rows WHERE program_id IS NULL OR role IS NULL) AS null_rows,
       (SELECT count(*) FROM multi) AS multi_role,
       (SELECT {'id': program_id, 'roles': roles} FROM multi ORDER BY program_id LIMIT 1) AS multi_role_example,
       (SELECT count(*) FROM __gensynth_split_rows r
        WHERE NOT EXISTS (SELECT 1 FROM programs p WHERE p.program_id = r.program_id)) AS unknown_ids;
