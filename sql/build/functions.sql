-- Assemble `functions` from numpy columns registered by gensynth.evaluate.write_functions:
-- `function_cols` holds one row per function with the outputs spread over columns
-- o0, o1, ... (one per grid point, in point order), packed here into one list.
INSERT INTO functions
SELECT function_id, list_value(*COLUMNS('^o[0-9]+$')) AS outputs, finite, n_programs, smallest_program, value_hash
FROM function_cols;
