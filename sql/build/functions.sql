-- Assemble `functions` from numpy columns registered by gensynth.universe.functions.write_functions:
-- `function_cols` holds one row per function with the outputs spread over columns
-- o0, o1, ... (one per grid point, in point order), packed here into one list.
-- DuckDB reads a NaN in a registered numpy column as NULL: turn it back into NaN, the
-- contract's marker for an undefined output.
INSERT INTO functions
SELECT function_id,
       list_transform(list_value(*COLUMNS('^o[0-9]+$')), lambda v: coalesce(v, 'NaN'::DOUBLE)) AS outputs,
       finite, n_programs, smallest_program, value_hash, value_hash2
FROM function_cols;
