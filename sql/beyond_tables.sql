-- tasks_beyond: tasks one operator larger than the warehouse's universe, for testing
-- synthesizers beyond what the neural models ever saw (gensynth/beyond.py).
-- Programs are drawn uniformly from all programs with max_ops + 1 operators, then kept
-- only if their function is finite everywhere and differs from every function in
-- `functions` (so no program of the warehouse solves them), one task per function.
-- Results on these tasks land in `predictions` with view = 'tasks_beyond',
-- role = 'test_beyond' and program_id = task_id.
DROP TABLE IF EXISTS tasks_beyond;
CREATE TABLE tasks_beyond (
    task_id    INTEGER NOT NULL,  -- dense id in draw order; used as predictions.program_id
    prefix     VARCHAR NOT NULL,  -- the program that defined the task (prefix tokens); a synthesizer may find another
    n_ops      TINYINT NOT NULL,  -- operators in that program (meta 'max_ops' + 1)
    outputs    DOUBLE[] NOT NULL, -- its value at each grid point (grid.point_id order): the task's examples
    value_hash BIGINT NOT NULL,   -- first half of the 128-bit hash of the exact outputs (as functions.value_hash)
    value_hash2 BIGINT NOT NULL   -- second half (as functions.value_hash2); the pair differs from every function's
);
