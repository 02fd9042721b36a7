-- method_runs: every finished run's pass@1 per test role with its method and budget
-- (figure 5: search methods' curves, the transformer's best as a reference line).
SELECT
    method, view, role, run_id,  -- method, split view, test role, run
    budget,                      -- search budget in candidate programs (NULL for training runs)
    pass_at_1,                   -- pass@1 of the answers
    n                            -- programs evaluated
FROM method_comparison;
