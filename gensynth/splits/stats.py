"""`gensynth split show`: per-role statistics of a registered split.

Flatness: the normalised entropy of a role's occupancy histogram, H(p) / ln K, where p is
the share of the role's finite programs in each cell and K the number of cells the
universe's finite programs occupy. 1 means the role covers every occupied cell equally; a
role dominated by a few dense cells is near 0. It is computed on the syntactic grid, on
the semantic grid and over functions (each function a cell: the measure ``diverse``
flattens), and for the universe itself (the natural density) as a reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb
import sqlglot
from sqlglot import exp

from gensynth.splits.contract import ROWS, requested, role_counts, role_order
from gensynth.splits.registry import usable_row
from gensynth.splits.sampling import GRIDS
from gensynth.splits.validate import SplitSQL, parse_split


@dataclass
class RoleStats:
    """One row of `gensynth split show`."""

    role: str
    programs: int
    requested: int | None
    pool: int | None
    functions: int
    train_overlap: int | None  # functions shared with train (test roles only)
    nonfinite: int  # programs whose function is not finite (not on the semantic manifold)
    syn_radius: tuple[float, float, float] | None  # 10th, 50th, 90th percentile over the role's finite programs
    sem_radius: tuple[float, float, float] | None
    n_ops: dict[int, int]  # n_ops -> programs
    flatness: dict[str, float | None]  # grid ('syntactic', 'semantic', 'functions') -> normalised entropy
    cells: dict[str, int]  # grid -> distinct cells the role's finite programs occupy


@dataclass
class SplitStats:
    """Everything `gensynth split show` prints."""

    name: str
    kind: str
    description: str
    source: str
    sql_hash: str
    created_at: str
    notes: str
    columns: dict[str, str]
    roles: list[RoleStats]
    universe_flatness: dict[str, float | None]  # grid -> flatness of all finite programs (the natural density)
    occupied: dict[str, int]  # grid -> cells the universe's finite programs occupy


def split_stats(con: duckdb.DuckDBPyConnection, name: str) -> SplitStats:
    """Per-role counts, functions, train overlap, radius/n_ops distributions and flatness."""
    row = usable_row(con, name)
    split = parse_split(con, name, row["sql_text"], source=row["source"])
    rows = ROWS
    con.execute(f"CREATE OR REPLACE TEMP TABLE {rows} AS SELECT program_id, role FROM split_{name}")
    try:
        report = role_counts(con)
        pools = pool_sizes(con, split)
        dist = {r[0]: r[1:] for r in con.execute(f"""
            SELECT r.role,
                   count(*) FILTER (WHERE c.program_id IS NULL),
                   quantile_cont(c.syn_radius, [0.1, 0.5, 0.9]),
                   quantile_cont(c.sem_radius, [0.1, 0.5, 0.9])
            FROM {rows} r LEFT JOIN manifold_cells c USING (program_id) GROUP BY r.role""").fetchall()}
        n_ops: dict[str, dict[int, int]] = {}
        for role, ops, n in con.execute(f"""
                SELECT r.role, p.n_ops, count(*) FROM {rows} r JOIN programs p USING (program_id)
                GROUP BY ALL ORDER BY ALL""").fetchall():
            n_ops.setdefault(role, {})[int(ops)] = n
        flat, cells_hit, occupied, universe = flatness(con, rows)
    finally:
        con.execute(f"DROP TABLE IF EXISTS temp.{rows}")
    roles = []
    for role in role_order(report.roles, split.declared_roles):
        nonfinite, syn_q, sem_q = dist.get(role, (0, None, None))
        roles.append(RoleStats(
            role=role, programs=report.roles.get(role, 0), requested=requested(split.requested, role),
            pool=pools.get(role), functions=report.functions.get(role, 0),
            train_overlap=report.train_overlap.get(role) if role.startswith("test_") else None,
            nonfinite=int(nonfinite or 0),
            syn_radius=tuple(syn_q) if syn_q else None, sem_radius=tuple(sem_q) if sem_q else None,
            n_ops=n_ops.get(role, {}),
            flatness={g: flat.get((g, role)) for g in GRIDS},
            cells={g: cells_hit.get((g, role), 0) for g in GRIDS},
        ))
    return SplitStats(
        name=name, kind=split.kind, description=split.description, source=row["source"],
        sql_hash=row["sql_hash"], created_at=str(row["created_at"]), notes=row["notes"],
        columns=split.columns, roles=roles,
        universe_flatness=universe, occupied=occupied,
    )


def flatness(con: duckdb.DuckDBPyConnection, rows: str):
    """Normalised entropy of each role's occupancy histogram on each grid (module docstring).

    ``rows`` is a table or view of (program_id, role). Returns ``(flat, cells, occupied,
    universe)``: flat[(grid, role)], cells[(grid, role)], occupied[grid], universe[grid].
    """
    hist: dict[tuple[str, str], list[int]] = {}
    universe_hist: dict[str, list[int]] = {}
    for grid, column in GRIDS.items():
        for role, n in con.execute(
                f"SELECT r.role, count(*) FROM {rows} r JOIN manifold_cells c USING (program_id) GROUP BY r.role, c.{column}").fetchall():
            hist.setdefault((grid, role), []).append(n)
        universe_hist[grid] = [n for (n,) in con.execute(f"SELECT count(*) FROM manifold_cells GROUP BY {column}").fetchall()]
    occupied = {g: len(h) for g, h in universe_hist.items()}
    flat = {key: normalised_entropy(h, occupied[key[0]]) for key, h in hist.items()}
    cells = {key: len(h) for key, h in hist.items()}
    universe = {g: normalised_entropy(h, occupied[g]) for g, h in universe_hist.items()}
    return flat, cells, occupied, universe


def normalised_entropy(counts: list[int], cells: int) -> float | None:
    """H(p) / ln(cells) of a histogram; 1.0 = equal counts in all ``cells`` cells."""
    total = sum(counts)
    if total == 0 or cells < 2:
        return None
    h = -sum(c / total * math.log(c / total) for c in counts if c)
    return h / math.log(cells)


def pool_sizes(con: duckdb.DuckDBPyConnection, split: SplitSQL) -> dict[str, int]:
    """Programs in each role's pool, for splits whose CTEs follow the `<role>_pool` convention
    (or label pools in a CTE called ``pools`` with a ``pool`` column)."""
    try:
        root = sqlglot.parse_one(split.text, read="duckdb")
        ctes = {c.alias_or_name.lower() for c in root.find_all(exp.CTE)}
        roles = [r for r in split.declared_roles if f"{r}_pool" in ctes]
        with_ = root.args.get("with_") or root.args.get("with")  # the key's name varies across sqlglot versions
        if with_ is None:
            return {}
        parts = [f"SELECT '{r}' AS role, count(*) AS n FROM {r}_pool" for r in roles]
        if "pools" in ctes:  # a CTE of labelled pools (the density splits' density_pools): one pool per role
            parts.append("SELECT pool AS role, count(*) AS n FROM pools GROUP BY pool")
        if not parts:
            return {}
        sizes: dict[str, int] = {}
        for role, n in con.execute(f"{with_.sql(dialect='duckdb')} {' UNION ALL '.join(parts)}").fetchall():
            sizes.setdefault(role, n)
        return sizes
    except Exception:  # a pool we cannot count is left blank in `show`
        return {}


# ----------------------------------------------------------------------------------------
