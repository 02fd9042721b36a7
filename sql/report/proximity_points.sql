-- proximity_points: every (test program, run) distance to the nearest training program,
-- solved or not, per distance (figure 4's cumulative distributions).
SELECT
    d.distance,       -- 'syntactic', 'semantic' or 'pqgram'
    p.passed,         -- the answer solved it
    CASE d.distance WHEN 'syntactic' THEN p.syn_nn_dist WHEN 'semantic' THEN p.sem_nn_dist
                    ELSE p.pqgram_nn_dist END AS dist  -- distance to the nearest train program
FROM proximity AS p
CROSS JOIN (VALUES ('syntactic'), ('semantic'), ('pqgram')) AS d(distance)
WHERE p.passed IS NOT NULL AND dist IS NOT NULL;
