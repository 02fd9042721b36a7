-- Pack numpy columns (`basis_cols`: gram_id, weight, centre, c0..c{k-1}) into syn_basis rows.
INSERT INTO syn_basis
SELECT gram_id, weight, centre, list_value(*COLUMNS('^c[0-9]+$')) FROM basis_cols;
