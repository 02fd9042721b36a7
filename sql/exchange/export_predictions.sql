-- export_predictions: the predictions of the exported runs (export_runs.sql) with every
-- column of `predictions` unchanged (run_id, view, role, program_id, decoding,
-- sample_index, predicted, parsed, passed, exact_match, offgrid_passed, logprob,
-- candidates, search_seconds, eval_id, train_program, train_function), then the target
-- program they were asked for, so the file is readable without the warehouse:
SELECT
    p.*,                                  -- every column of predictions, unchanged
    g.prefix    AS target_prefix,         -- the target program, space-separated prefix tokens (programs.prefix)
    g.infix     AS target_infix,          -- the target program in infix notation (programs.infix)
    g.n_ops     AS target_n_ops,          -- operators in the target program
    g.depth     AS target_depth,          -- depth of the target program's tree
    g.function_id AS target_function_id,  -- the target's semantic class (functions.function_id)
    s.syn       AS target_syn,            -- the target's syntactic manifold coordinates (syn_coords.syn; NULL without manifolds)
    c.sem       AS target_sem             -- its function's semantic manifold coordinates (sem_coords.sem; NULL for non-finite functions or without manifolds)
FROM predictions AS p
JOIN programs AS g USING (program_id)
LEFT JOIN syn_coords AS s USING (program_id)
LEFT JOIN sem_coords AS c ON c.function_id = g.function_id
WHERE p.run_id IN (SELECT run_id FROM runs WHERE data_version = (SELECT value FROM meta WHERE key = 'data_version'))
ORDER BY p.run_id, p.view, p.role, p.program_id, p.decoding, p.sample_index, p.eval_id;
