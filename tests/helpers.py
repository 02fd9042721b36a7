"""Helpers shared by tests and benchmarks: a small warehouse with a registered random split."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

SPLIT_ROLES = (("train", 70), ("val", 10), ("test_id", 20))  # role, percent of programs


def make_split_warehouse(path: Path, max_ops: int = 2, split: str = "tiny", roles=SPLIT_ROLES, seed: int = 7,
                         with_embeddings: bool = True) -> Path:
    """Build a warehouse (no manifolds) and add a registered split ``split_<split>``.

    Programs go to roles by ``hash(program_id, seed) % 100`` in the given percentages.
    Without real manifolds the table ``syn_coords`` is created empty (training only
    checks that embeddings exist), unless ``with_embeddings`` is False.
    """
    from gensynth.pipeline import build_warehouse
    from gensynth.universe.grammar import load_grammar
    from gensynth.warehouse import connect, relation_exists

    path = Path(path)
    build_warehouse(load_grammar(), max_ops, path, quiet=True)
    con = connect(path)
    try:
        if with_embeddings and not relation_exists(con, "syn_coords", kind="table"):
            con.execute("CREATE TABLE syn_coords (program_id INTEGER, syn FLOAT[16])")
        add_split(con, split, roles, seed)
    finally:
        con.close()
    return path


def add_split(con, name: str, roles=SPLIT_ROLES, seed: int = 7, where: str = "TRUE") -> str:
    """Create view split_<name> over programs (roles by hashed percentages) and register it."""
    cases, low = [], 0
    for role, pct in roles:
        cases.append(f"WHEN hash(program_id, {seed}) % 100 < {low + pct} THEN '{role}'")
        low += pct
    sql = f"SELECT program_id, CASE {' '.join(cases)} END AS role FROM programs WHERE {where}"
    con.execute(f"CREATE OR REPLACE VIEW split_{name} AS SELECT * FROM ({sql}) WHERE role IS NOT NULL")
    register_split(con, name, sql)
    return f"split_{name}"


def register_split(con, name: str, sql: str) -> None:
    """Add a row to ``splits`` (created with minimal columns if missing; other NOT NULL columns get neutral values)."""
    from gensynth.warehouse import relation_columns, relation_exists

    if not relation_exists(con, "splits", kind="table"):
        con.execute("CREATE TABLE splits (name VARCHAR PRIMARY KEY, kind VARCHAR, sql VARCHAR, sql_hash VARCHAR, created_at TIMESTAMPTZ)")
    given = {"name": name, "kind": "density", "sql": sql, "sql_text": sql,
             "sql_hash": hashlib.sha256(sql.encode()).hexdigest(), "created_at": dt.datetime.now(dt.timezone.utc),
             "description": f"test split {name}", "source": "test", "roles": "{}", "notes": ""}
    cols = [(c, t) for c, t, _ in relation_columns(con, "splits")]
    values = [given.get(c, "" if "CHAR" in t else None) for c, t in cols]
    con.execute("DELETE FROM splits WHERE name = ?", [name])
    con.execute(f"INSERT INTO splits ({', '.join(c for c, _ in cols)}) VALUES ({', '.join('?' * len(cols))})", values)
