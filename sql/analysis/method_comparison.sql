-- method_comparison: training and search methods side by side on the same splits. One
-- row per finished run and test role of the view it was evaluated on (its own): its
-- method, its budget (search runs: candidate programs; training runs: NULL, see
-- training_flops) and wall time, and pass@1 with its 95% Wilson interval. `gensynth report` plots solve rate against
-- budget per method from it.
CREATE OR REPLACE VIEW method_comparison AS
SELECT
    r.method,                 -- 'transformer' or the search method ('enumerative', 'sample_verify', 'hybrid', ...)
    r.view,                   -- the run's split view
    r.split,                  -- the split's name
    k.role,                   -- test role of that split
    r.run_id,                 -- finished_runs.run_id
    r.size,                   -- model size preset (search runs: whatever they record)
    r.budget,                 -- search budget in candidate programs (finished_runs.budget; NULL for training runs)
    r.training_flops,         -- analytic training compute (NULL for pure search)
    r.wall_time_s,            -- seconds the run took
    k.n,                      -- programs evaluated
    k.pass_at_1,              -- pass@1 of the one answer per program (search: share of tasks solved)
    k.pass_at_1_lo,           -- lower end of its 95% Wilson interval
    k.pass_at_1_hi            -- upper end of its 95% Wilson interval
FROM pass_at_k AS k
JOIN finished_runs AS r ON r.run_id = k.run_id AND r.view = k.view
WHERE k.role LIKE 'test\_%' ESCAPE '\';
