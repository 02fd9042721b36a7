-- splits: one row per registered split, written by `gensynth build` (the built-in splits
-- of sql/splits/, and the user splits of the warehouse it replaces) and `gensynth split
-- add`. The split itself is the plain-SQL view split_<name> (program_id, role), which
-- works in the stock DuckDB shell; this table records what that view was made from, so
-- `gensynth split check` can re-validate it and results can name the exact SQL (by hash)
-- a model was trained on. A stale split (its SQL no longer passes on this universe) keeps
-- its row, without a view, until it is fixed: `gensynth split add FILE --name NAME
-- --replace`, or `gensynth split check NAME` once the warehouse lets it pass again.
CREATE TABLE IF NOT EXISTS splits (
    name         VARCHAR PRIMARY KEY,            -- the split's name; its view is split_<name>
    kind         VARCHAR NOT NULL,               -- 'density' or 'support', from the SQL's `-- kind:` line
    description  VARCHAR NOT NULL,               -- the SQL's header comment: what the split tests
    sql_text     VARCHAR NOT NULL,               -- the SELECT exactly as written in its file
    sql_hash     VARCHAR NOT NULL,               -- sha256 of sql_text (hex): which SQL a run trained on
    source       VARCHAR NOT NULL,               -- 'builtin' (sql/splits/<name>.sql) or the file it was added from
    roles        VARCHAR NOT NULL,               -- JSON {role: programs} when it was last registered
    notes        VARCHAR NOT NULL,               -- notices from registration (roles clipped to their pool), '' if none
    created_at   TIMESTAMP NOT NULL,             -- when it was registered (UTC)
    status       VARCHAR NOT NULL DEFAULT 'ok',  -- 'ok' (view split_<name> exists) or 'stale' (no view; see stale_reason)
    stale_reason VARCHAR NOT NULL DEFAULT ''     -- why a stale split failed on this universe, '' when ok
);
-- Warehouses written before status existed gain the columns (every split there is ok).
ALTER TABLE splits ADD COLUMN IF NOT EXISTS status VARCHAR DEFAULT 'ok';
ALTER TABLE splits ADD COLUMN IF NOT EXISTS stale_reason VARCHAR DEFAULT '';
