-- gensynth warehouse: derived tables written by `gensynth build`.
--
-- These tables are rebuilt from the grammar, never migrated: `gensynth build` writes a
-- fresh warehouse beside the old one and swaps it in. Results tables (runs, metrics,
-- predictions) live in sql/results.sql and are carried over across rebuilds.

-- meta: key/value facts about this warehouse (schema version, grammar and its hash,
-- grid, build parameters, stage timings). Values are text (JSON where structured).
CREATE TABLE meta (
    key   VARCHAR PRIMARY KEY,  -- e.g. 'schema_version', 'grammar_hash', 'max_ops', 'timing.evaluate_s'
    value VARCHAR NOT NULL      -- the value as text; JSON for lists and objects
);

-- symbols: the grammar's tokens; symbol_id orders variables, constants, then operators.
CREATE TABLE symbols (
    symbol_id SMALLINT PRIMARY KEY,  -- dense id, as used in programs.root_symbol
    token     VARCHAR NOT NULL,      -- the prefix token, e.g. '+', 'x', '3'
    kind      VARCHAR NOT NULL,      -- 'variable', 'constant' or 'operator'
    arity     TINYINT NOT NULL,      -- 0 for leaves, 1 or 2 for operators
    numpy     VARCHAR,               -- numpy ufunc evaluating an operator (NULL for leaves)
    value     VARCHAR                -- a constant's exact value, e.g. '1/2' (NULL otherwise)
);

-- grid: the fixed input points every program is evaluated on.
CREATE TABLE grid (
    point_id     SMALLINT PRIMARY KEY,  -- index into functions.outputs (0-based; DuckDB lists are 1-based: outputs[point_id + 1])
    coords       DOUBLE[] NOT NULL,     -- coordinates, one per variable in symbol order (x, y)
    coords_exact VARCHAR[] NOT NULL     -- the same coordinates as exact rationals, e.g. '-10/7'
);

-- programs: one row per syntactically distinct program (every tree up to max_ops operators).
CREATE TABLE programs (
    program_id  INTEGER,  -- dense id ordered by (n_ops, operator, left size, left id, right id)
    prefix      VARCHAR NOT NULL,     -- space-separated prefix tokens, e.g. '+ x * y 2'
    infix       VARCHAR NOT NULL,     -- infix text, e.g. 'x + (y * 2)'; unary operators as 'neg(x)'
    n_ops       TINYINT NOT NULL,     -- number of operator nodes
    depth       TINYINT NOT NULL,     -- edges on the longest root-to-leaf path (a leaf has depth 0)
    function_id INTEGER NOT NULL,     -- the semantic class (functions.function_id)
    root_symbol SMALLINT NOT NULL,    -- symbols.symbol_id of the root node
    left_id     INTEGER,              -- program_id of the first child (NULL for leaves)
    right_id    INTEGER               -- program_id of the second child (NULL for leaves and unary roots)
);

-- functions: one row per semantic equivalence class: programs equal at every grid point
-- (exactly, over the rationals; see gensynth/rational.py).
CREATE TABLE functions (
    function_id        INTEGER,  -- dense id ordered by the class's smallest program
    outputs            DOUBLE[] NOT NULL,    -- value at each grid point (grid.point_id order), NaN where undefined
    finite             BOOLEAN NOT NULL,     -- defined and finite at every grid point
    n_programs         INTEGER NOT NULL,     -- number of programs in the class
    smallest_program   INTEGER NOT NULL,     -- program_id of the class's smallest program (fewest ops, then lowest id)
    value_hash         BIGINT NOT NULL,      -- first half of the 128-bit hash of the exact outputs (gensynth.universe.functions.row_hashes)
    value_hash2        BIGINT NOT NULL       -- second, independent half: a function is identified by (value_hash, value_hash2), never by one half
);
