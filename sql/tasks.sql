-- tasks: targets users bring (`gensynth solve --tasks FILE`, gensynth/synthesis/task_files.py):
-- formulas over the grammar's variables, or explicit values per grid point, evaluated or
-- read exactly. One row per task; a file already stored for the same universe (same
-- sha256, same data version) is not stored again. Results on these tasks land in
-- `predictions` with view = 'tasks', role = 'test_tasks' and program_id = task_id, so they
-- join like any other run's (method_comparison, pass_at_k).
CREATE TABLE IF NOT EXISTS tasks (
    task_id      INTEGER NOT NULL,     -- dense id over all stored tasks; predictions.program_id of runs on them
    name         VARCHAR NOT NULL,     -- from 'name: formula', the file's name column, or 'line<N>' for a bare formula
    formula      VARCHAR,              -- the formula as written; NULL for a task given by values
    source_file  VARCHAR NOT NULL,     -- the task file's path as given on the command line
    source_hash  VARCHAR NOT NULL,     -- sha256 of the file's bytes: identifies the task set
    line         INTEGER,              -- line of the formula in its file; NULL for a task given by values
    outputs      DOUBLE[] NOT NULL,    -- value at each grid point (grid.point_id order), NaN where undefined
    exact        VARCHAR[] NOT NULL,   -- exact value at each grid point as 'p/q' in lowest terms, NULL where undefined
    finite       BOOLEAN NOT NULL,     -- defined at every grid point
    value_hash   BIGINT NOT NULL,      -- first half of the exact values' 128-bit hash (as functions.value_hash)
    value_hash2  BIGINT NOT NULL,      -- second half of that hash
    in_universe  BOOLEAN NOT NULL,     -- some function of the warehouse has the same 128-bit value hash, both halves (a program of the universe solves it)
    data_version VARCHAR NOT NULL,     -- meta 'data_version' the values were computed for (grammar and grid)
    added_at     TIMESTAMPTZ NOT NULL  -- when the file was stored
);
