-- export_predictions_no_manifolds: export_predictions.sql for a warehouse built without
-- manifolds (no syn_coords / sem_coords): the same columns, target_syn and target_sem NULL.
SELECT
    p.*,                                  -- every column of predictions, unchanged
    g.prefix    AS target_prefix,         -- the target program, space-separated prefix tokens (programs.prefix)
    g.infix     AS target_infix,          -- the target program in infix notation (programs.infix)
    g.n_ops     AS target_n_ops,          -- operators in the target program
    g.depth     AS target_depth,          -- depth of the target program's tree
    g.function_id AS target_function_id,  -- the target's semantic class (functions.function_id)
    NULL::FLOAT[] AS target_syn,          -- no syntactic manifold in this warehouse
    NULL::DOUBLE[] AS target_sem          -- no semantic manifold in this warehouse
FROM predictions AS p
JOIN programs AS g USING (program_id)
WHERE p.run_id IN (SELECT run_id FROM runs WHERE data_version = (SELECT value FROM meta WHERE key = 'data_version'))
ORDER BY p.run_id, p.view, p.role, p.program_id, p.decoding, p.sample_index, p.eval_id;
