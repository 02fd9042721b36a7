-- Pack numpy columns (`coord_cols`: id, radius, c0..c{k-1}) into syn_coords rows.
INSERT INTO syn_coords
SELECT id, list_value(*COLUMNS('^c[0-9]+$')), radius FROM coord_cols;
