-- snapshot_tokens: how a run reads its split (gensynth.learning.snapshot.read_snapshot).
-- A run snapshots its split once, through a read-only connection; these TEMP macros live
-- only on that connection (they write nothing to the warehouse). Token ids are fixed
-- across the project: PAD 0, BOS 1, EOS 2, and grammar symbol i (0-based, in the order
-- of meta's grammar: variables, constants, operators) is token 3 + i.

-- prefix_tokens(prefix, symbols, T): a program's prefix text as the decoder's target:
-- BOS, one id per space-separated token, EOS, padded with PAD to T positions (a program
-- longer than T - 2 tokens is cut; read_snapshot refuses those first, using n_tok).
CREATE OR REPLACE TEMP MACRO prefix_tokens(prefix, symbols, T) AS
    list_resize([1] || list_transform(string_split(prefix, ' '), t -> list_position(symbols, t) + 2) || [2], T, 0);

-- snapshot_examples(split_view, roles, symbols, T): one row per program of the split view's
-- roles in `roles`, ordered by (role, program_id) (the snapshot's row order):
--   role         the program's role in the split (train, val, test_*)
--   program_id   programs.program_id
--   function_id  its function (functions.function_id)
--   tokens       prefix_tokens of its prefix: T token ids
--   n_tok        its number of prefix tokens (without BOS / EOS)
CREATE OR REPLACE TEMP MACRO snapshot_examples(split_view, roles, symbols, T) AS TABLE
    SELECT s.role, p.program_id, p.function_id,
           prefix_tokens(p.prefix, symbols, T) AS tokens,
           len(string_split(p.prefix, ' ')) AS n_tok
    FROM query_table(split_view) AS s
    JOIN programs AS p USING (program_id)
    WHERE s.role IN (SELECT unnest(roles))
    ORDER BY s.role, p.program_id;

-- snapshot_functions(function_ids, symbols, T): one row per function in `function_ids`,
-- ordered by function_id:
--   function_id  functions.function_id
--   outputs      its values on the grid, in point order (NaN where undefined)
--   value_hash   functions.value_hash, the first half of the function's hash of its exact outputs
--   value_hash2  functions.value_hash2, the second half: the exact pass check compares a
--                prediction's two halves to these two
--   smallest     prefix_tokens of its smallest program: the off-grid reference (and the
--                target of --targets canonical)
CREATE OR REPLACE TEMP MACRO snapshot_functions(function_ids, symbols, T) AS TABLE
    SELECT f.function_id, f.outputs, f.value_hash, f.value_hash2,
           prefix_tokens(sp.prefix, symbols, T) AS smallest
    FROM functions AS f
    JOIN programs AS sp ON sp.program_id = f.smallest_program
    WHERE f.function_id IN (SELECT unnest(function_ids))
    ORDER BY f.function_id;
