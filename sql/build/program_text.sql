-- Build the programs of one size level ($n_ops) from the enumerated DAG (`dag`, numpy
-- columns registered by gensynth.universe.programs.write_programs) and the text of their
-- children, kept in the temporary table `child_text` (programs of smaller sizes).
-- Prefix: root token, then the children's prefix text. Infix: 'a + b' with a child
-- wrapped in parentheses when its own root is binary; unary operators as 'neg(a)'.
INSERT INTO programs
SELECT
    d.program_id,
    concat_ws(' ', s.token, l.prefix, r.prefix) AS prefix,
    CASE s.arity
        WHEN 1 THEN concat(s.token, '(', l.infix, ')')
        ELSE concat(l.wrapped, s.spaced, r.wrapped)
    END AS infix,
    d.n_ops,
    d.depth,
    d.function_id,
    d.root_symbol,
    d.left_id,
    nullif(d.right_id, -1) AS right_id
FROM dag AS d
JOIN symbol_text AS s ON s.symbol_id = d.root_symbol
JOIN child_text AS l ON l.program_id = d.left_id
LEFT JOIN child_text AS r ON r.program_id = d.right_id
WHERE d.n_ops = $n_ops;
