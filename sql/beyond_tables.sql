-- tasks_beyond: tasks larger than the warehouse's universe, for testing synthesizers
-- beyond what the neural models ever saw (gensynth/synthesis/tasks.py, `gensynth beyond`).
-- Programs with N operators (`--ops N`, default meta 'max_ops' + 1, at most 10) are drawn
-- uniformly from all programs of that size, then kept only if their function is defined
-- at every grid point and differs from every function in `functions` (so no program of
-- the warehouse solves them: their smallest program has more than max_ops operators and
-- at most N), one task per function (both halves of the value hash compared).
-- Results on these tasks land in `predictions` with view = 'tasks_beyond',
-- role = 'test_beyond' and program_id = task_id.
DROP TABLE IF EXISTS tasks_beyond;
CREATE TABLE tasks_beyond (
    task_id    INTEGER NOT NULL,  -- dense id in draw order; used as predictions.program_id
    prefix     VARCHAR NOT NULL,  -- the program that defined the task (prefix tokens); a synthesizer may find a smaller one
    n_ops      TINYINT NOT NULL,  -- operators in that program (--ops N); the task's smallest program has between max_ops + 1 and n_ops
    outputs    DOUBLE[] NOT NULL, -- its value at each grid point (grid.point_id order): the task's examples
    value_hash BIGINT NOT NULL,   -- first half of the 128-bit hash of the exact outputs (as functions.value_hash)
    value_hash2 BIGINT NOT NULL   -- second half (as functions.value_hash2); the pair differs from every function's
);
