-- splits: one row per registered split, written by `gensynth build` (the built-in splits
-- of sql/splits/) and `gensynth split add`. The split itself is the plain-SQL view
-- split_<name> (program_id, role), which works in the stock DuckDB shell; this table
-- records what that view was made from, so `gensynth split check` can re-validate it
-- and results can name the exact SQL (by hash) a model was trained on.
CREATE TABLE IF NOT EXISTS splits (
    name        VARCHAR PRIMARY KEY,            -- the split's name; its view is split_<name>
    kind        VARCHAR NOT NULL,               -- 'density' or 'support', from the SQL's `-- kind:` line
    description VARCHAR NOT NULL,               -- the SQL's header comment: what the split tests
    sql_text    VARCHAR NOT NULL,               -- the SELECT exactly as written in its file
    sql_hash    VARCHAR NOT NULL,               -- sha256 of sql_text (hex): which SQL a run trained on
    source      VARCHAR NOT NULL,               -- 'builtin' (sql/splits/<name>.sql) or the file it was added from
    roles       VARCHAR NOT NULL,               -- JSON {role: programs} when it was registered
    notes       VARCHAR NOT NULL,               -- notices from registration (roles clipped to their pool), '' if none
    created_at  TIMESTAMP NOT NULL              -- when it was registered (UTC)
);
