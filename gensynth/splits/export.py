"""`gensynth split export`: a split with its programs' text, as a Parquet file."""

from __future__ import annotations

from pathlib import Path

import duckdb

from gensynth.errors import GensynthError
from gensynth.splits.registry import usable_row


def export_split(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> int:
    """Write the split, joined to its programs' text, to a Parquet file with DuckDB COPY.

    Columns: program_id, role, function_id, n_ops, depth, prefix, infix. Returns rows written.
    """
    usable_row(con, name)
    path = Path(path)
    if path.is_dir():
        raise GensynthError(f"--parquet '{path}' is a directory. Give a file path, e.g. {path / (name + '.parquet')}.")
    if not path.resolve().parent.is_dir():
        raise GensynthError(f"Cannot write '{path}': directory '{path.resolve().parent}' does not exist. Create it or choose another --parquet path.")
    target = str(path).replace("'", "''")
    con.execute(
        f"COPY (SELECT s.program_id, s.role, p.function_id, p.n_ops, p.depth, p.prefix, p.infix "
        f"FROM split_{name} s JOIN programs p USING (program_id) ORDER BY s.role, s.program_id) "
        f"TO '{target}' (FORMAT parquet)"
    )
    return con.execute(f"SELECT count(*) FROM split_{name}").fetchone()[0]
