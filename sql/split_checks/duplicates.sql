-- duplicates: roles of a split (TEMP table __gensynth_split_rows) that list a program
-- more than once. The split contract: every program appears at most once per role.
--
-- Columns:
--   role    a role with repeated programs
--   extra   rows beyond one per program (count(*) - count(DISTINCT program_id))
SELECT role, count(*) - count(DISTINCT program_id) AS extra
FROM __gensynth_split_rows
GROUP BY role
HAVING count(*) > count(DISTINCT program_id)
ORDER BY role;
