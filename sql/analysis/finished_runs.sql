-- finished_runs: every run that finished on the current universe, with the facts the
-- analysis views group by pulled out of runs.config once. Every other analysis view reads
-- runs through this one, so the rules below hold for all of them:
--
-- * Only finished runs. Runs still 'running' (including runs that were killed outright
--   and never resumed) and 'failed' runs are left out.
-- * Only runs of the current universe: runs.data_version equal to meta 'data_version'.
--   A program_id means a program of the universe (grammar, max-ops, manifolds) a run was
--   computed on; after a rebuild with another grammar or --max-ops the same id names
--   another program, so runs of other universes are never joined to this one's programs,
--   manifolds or nearest_train. They stay in runs / metrics / predictions untouched
--   (a rebuild carries every stored run over) and `gensynth runs list --all` shows them
--   with their data version. Ingestion follows the same rule: it stores a run directory
--   only into a warehouse of the run's own universe.
--
-- Training runs (`gensynth train`) have no config.method and are 'transformer'; search
-- runs (`gensynth solve`) record config.method ('enumerative', 'sample_verify', 'hybrid')
-- and their budget in candidate programs (config.budget_candidates). The split kind
-- comes from the view's name (split_density_* / split_support_*), so it works for splits
-- added by hand too.
CREATE OR REPLACE VIEW finished_runs AS
SELECT
    run_id,                                                           -- runs.run_id
    view,                                                             -- split view the run trained on (searched against), e.g. 'split_support_syntactic'
    regexp_replace(view, '^split_', '') AS split,                     -- the split's name (splits.name), e.g. 'support_syntactic'
    CASE WHEN view LIKE 'split\_density\_%' ESCAPE '\' THEN 'density'
         WHEN view LIKE 'split\_support\_%' ESCAPE '\' THEN 'support'
    END AS split_kind,                                                -- 'density', 'support', or NULL for other splits (from the name)
    coalesce(config ->> '$.method', 'transformer') AS method,         -- 'transformer' (training runs) or the search method of config.method
    size,                                                             -- model size preset, or 'custom'
    n_params,                                                         -- model parameters
    training_flops,                                                   -- analytic training compute in FLOPs (NULL for runs without training)
    TRY_CAST(coalesce(config ->> '$.data.seed', config ->> '$.seed') AS INTEGER) AS seed,  -- config.data.seed (training) or config.seed (search)
    TRY_CAST(config ->> '$.training.max_steps' AS INTEGER) AS max_steps, -- configured optimizer steps (config.training.max_steps)
    steps,                                                            -- optimizer steps taken
    TRY_CAST(coalesce(config ->> '$.budget', config ->> '$.budget_candidates') AS DOUBLE) AS budget, -- search budget in candidate programs (config.budget or config.budget_candidates; NULL for training runs)
    wall_time_s,                                                      -- seconds the run took (all attempts)
    data_version,                                                     -- warehouse data version the run read its split from
    split_sql_hash,                                                   -- sha256 of the split SQL the run trained on (NULL if unrecorded)
    finished_at                                                       -- when the run finished
FROM runs
WHERE status = 'finished'
  AND data_version = (SELECT value FROM meta WHERE key = 'data_version');
