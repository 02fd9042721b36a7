-- solved_points: the test programs one run answered, solved or not, with their first two
-- coordinates on each manifold (figure solved_on_manifolds.png), and the distances to the
-- run's nearest training program (the proximity curves of proximity.png; NULL until
-- `gensynth proximity` has run).
--   SET VARIABLE run_id = '<run id>';
SELECT
    p.role,                          -- test role
    p.program_id,                    -- the test program
    p.passed,                        -- the run's answer solved it
    m.syn[1] AS s1, m.syn[2] AS s2,  -- syntactic manifold, first two coordinates
    m.sem[1] AS c1, m.sem[2] AS c2,  -- semantic manifold (NULL for non-finite functions)
    p.syn_nn_dist,                   -- syntactic distance to the nearest train program
    p.sem_nn_dist,                   -- semantic distance
    p.pqgram_nn_dist                 -- pq-gram distance
FROM proximity AS p
JOIN manifold AS m USING (program_id)
WHERE p.run_id = getvariable('run_id') AND p.passed IS NOT NULL
ORDER BY p.role, p.program_id;
