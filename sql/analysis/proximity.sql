-- proximity: for each test program a finished run (current universe) was evaluated on
-- (analysed_predictions: the counted evaluation; programs the run trained on left out),
-- whether the run solved it and how far it lies from the run's training data: the distance to the
-- nearest program of the `train` role of the split the run trained on, on the syntactic
-- and the semantic manifold and by pq-gram distance (table nearest_train, filled by
-- `gensynth proximity`; NULL distances mean not computed yet, or the run trained on an
-- earlier version of its split's SQL, whose training set the warehouse no longer has).
-- Only nearest_train rows of the current data version (meta 'data_version') count: rows
-- computed on earlier manifolds (`gensynth embed`, which starts a new data version, keeps
-- them) measure distances on maps this universe no longer has, so they are left out until
-- `gensynth proximity` recomputes them (proximity_summary reads this view).
--
-- The paper's claim: solved test programs lie closer to the training data than unsolved
-- ones. proximity_summary tests it per run and role.
CREATE OR REPLACE VIEW proximity AS
WITH outcomes AS (
    SELECT
        p.run_id, p.view, p.role, p.program_id,
        bool_or(p.passed) FILTER (WHERE p.decoding <> 'sampled') AS passed,
        bool_or(p.passed) FILTER (WHERE p.decoding = 'sampled') AS passed_any_sample
    FROM analysed_predictions AS p
    WHERE p.role LIKE 'test\_%' ESCAPE '\' AND NOT p.trained_on
    GROUP BY p.run_id, p.view, p.role, p.program_id
)
SELECT
    o.run_id,                   -- finished_runs.run_id
    o.view,                     -- split view whose role was evaluated
    o.role,                     -- the test role
    o.program_id,               -- the test program (join to manifold)
    r.view AS train_view,       -- the split the run trained on: its train role is the reference set
    r.method,                   -- 'transformer' or the search method
    o.passed,                   -- the answer (greedy prediction, or search answer) solved it (NULL: no answer)
    o.passed_any_sample,        -- some sampled prediction solved it (NULL: not sampled)
    n.syn_nn_dist,              -- syntactic-manifold distance to the nearest train program
    n.syn_nn_program_id,        -- that train program
    n.sem_nn_dist,              -- semantic-manifold distance to the nearest train program (NULL for non-finite functions)
    n.sem_nn_program_id,        -- a train program of the nearest function
    n.pqgram_nn_dist,           -- pq-gram distance to the nearest train program (NULL outside the computed sample)
    n.pqgram_nn_program_id      -- that train program
FROM outcomes AS o
JOIN finished_runs AS r USING (run_id)
LEFT JOIN nearest_train AS n
       ON n.train_view = r.view
      AND n.program_id = o.program_id
      AND (r.split_sql_hash IS NULL OR n.split_sql_hash IS NOT DISTINCT FROM r.split_sql_hash)
      AND n.data_version = (SELECT value FROM meta WHERE key = 'data_version');
