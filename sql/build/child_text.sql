-- Remember the text of level $n_ops for building larger programs: `wrapped` is the infix
-- as it appears inside a parent (parenthesised when the root is binary).
INSERT INTO child_text
SELECT p.program_id, p.prefix, p.infix,
       CASE WHEN s.arity = 2 THEN '(' || p.infix || ')' ELSE p.infix END AS wrapped
FROM programs AS p
JOIN symbols AS s ON s.symbol_id = p.root_symbol
WHERE p.n_ops = $n_ops;
