-- The programs with no operator (one per leaf symbol), and the temporary text tables
-- that sql/build/program_text.sql builds larger programs from.
INSERT INTO programs
SELECT d.program_id, s.token, s.token, 0, 0, d.function_id, d.root_symbol, NULL, NULL
FROM dag AS d
JOIN symbols AS s ON s.symbol_id = d.root_symbol
WHERE d.n_ops = 0;

CREATE OR REPLACE TEMP TABLE symbol_text AS
SELECT symbol_id, token, arity, ' ' || token || ' ' AS spaced FROM symbols;

CREATE OR REPLACE TEMP TABLE child_text (program_id INTEGER, prefix VARCHAR, infix VARCHAR, wrapped VARCHAR);
