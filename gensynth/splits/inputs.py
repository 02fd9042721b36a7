"""What a split's SQL may read and call: the universe and its maps, nothing that changes.

A split is a function of the universe alone, so that training, evaluation and the stock
DuckDB shell all see the same rows for as long as the split's hash stays the same. So its
SQL may read only an allow-list, derived here in one place from what ``gensynth build``
creates before any run exists:

* the relations created by the SQL files of the universe, manifold and split stages
  (``SPLIT_INPUT_FILES``): ``symbols``, ``grid``, ``programs``, ``functions``,
  ``pqgram_vocab``, ``pqgrams``, ``syn_basis``, ``syn_coords``, ``sem_coords``,
  ``manifold``, ``manifold_cells``, less ``meta`` (facts about the build: timings, code
  version, the time it ran);
* the views of other registered splits (``split_<name>``, status ok);
* the sampling macros of ``sql/sampling/`` (table macros ``sample_*``, ``density_pools``,
  ``density_test_roles``; scalar ``grid_bin``, ``grid_cell``) and ``pqgram_distance``.

Everything else the warehouse holds is refused with its reason (``refused_reason``):
results and their analysis (they change as runs land), ``tasks_beyond`` and ``tasks``
(redrawn or grown by commands), ``meta``, the ``splits`` registry, and any view or macro
made by hand. Functions whose value changes between queries or depends on the machine or
the session are refused too (``unstable_functions``): DuckDB's own VOLATILE and
CONSISTENT_WITHIN_QUERY functions (random, now, today, ...), read from the running
DuckDB so a new one is caught without an edit here, plus ``MACHINE_DEPENDENT``.
"""

from __future__ import annotations

import re
from functools import lru_cache

import duckdb

from gensynth.warehouse import SQL_DIR

# The SQL files of the build stages a split is drawn from (universe, manifolds, split cells).
SPLIT_INPUT_FILES = ("schema.sql", "embed/pqgram_tables.sql", "embed/coords_tables.sql", "views/manifold.sql",
                     "sampling/cells.sql")
NOT_SPLIT_INPUTS = {"meta": "it holds facts about the build (its time, timings, code version) that change with every rebuild"}
# The macro files gensynth installs that a split may call (table macros and scalar macros).
SPLIT_MACRO_FILES = ("sampling/*.sql", "embed/pqgram_macros.sql")
CREATED = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I | re.M)
CREATED_MACRO = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?MACRO\s+(\w+)", re.I | re.M)

# Functions DuckDB marks CONSISTENT whose value still depends on the machine, the DuckDB
# version or the session (sqlglot's names for them included: version() is CURRENT_VERSION).
MACHINE_DEPENDENT = {
    "version", "current_version", "current_setting", "current_database", "current_catalog", "current_schema",
    "current_schemas", "current_user", "session_user", "user", "current_role", "get_block_size", "platform",
    "pragma_version", "pragma_platform", "which_secret", "in_search_path", "current_connection_id",
}
# sqlglot's names for DuckDB's functions of the moment (current_timestamp is not in duckdb_functions()).
OF_THE_MOMENT = {"current_timestamp", "current_date", "current_time", "current_datetime", "localtimestamp", "localtime",
                 "now", "today", "get_current_timestamp", "get_current_time", "transaction_timestamp", "sysdate"}
RESULT_REASON = ("which changes as runs land (results and their analysis): a split must depend only on the universe "
                 "(programs, functions, manifold, manifold_cells, other splits), or it would drift while the runs "
                 "trained on it keep its hash; select programs by their own columns instead")


def _names(files: tuple[str, ...], pattern: re.Pattern) -> set[str]:
    out: set[str] = set()
    for spec in files:
        for path in sorted(SQL_DIR.glob(spec)):
            out |= {m.lower() for m in pattern.findall(path.read_text())}
    return out


@lru_cache(maxsize=1)
def split_inputs() -> frozenset[str]:
    """The tables and views a split may read (besides other split views): see the module docstring."""
    return frozenset(_names(SPLIT_INPUT_FILES, CREATED) - set(NOT_SPLIT_INPUTS))


@lru_cache(maxsize=1)
def split_macros() -> frozenset[str]:
    """The macros gensynth installs that a split may call (sampling, cells, pq-gram distance)."""
    return frozenset(_names(SPLIT_MACRO_FILES, CREATED_MACRO))


@lru_cache(maxsize=1)
def _results_relations() -> frozenset[str]:
    from gensynth.results.migrations import RESULT_TABLES

    analysis = {p.stem for p in (SQL_DIR / "analysis").glob("*.sql")}
    return frozenset(set(RESULT_TABLES) | {"schema_migrations", "nearest_train"} | analysis)


def readable_split_views(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The views of registered splits that have their view (status ok): a split may read those."""
    from gensynth.warehouse import relation_columns, relation_exists

    if not relation_exists(con, "splits", kind="table"):
        return set()
    ok = "status = 'ok'" if "status" in {c for c, _, _ in relation_columns(con, "splits")} else "TRUE"
    return {f"split_{r[0]}".lower() for r in con.execute(f"SELECT name FROM splits WHERE {ok}").fetchall()}


def refused_reason(name: str) -> str:
    """Why a relation of the warehouse that is not a split input may not be read by a split."""
    name = name.lower()
    if name in NOT_SPLIT_INPUTS:
        return f"which a split may not read: {NOT_SPLIT_INPUTS[name]}; write the value into the SQL (a params CTE) instead"
    if name in _results_relations():
        return RESULT_REASON
    reasons = {
        "tasks_beyond": "it is redrawn by `gensynth beyond`, so the split would change with it",
        "tasks": "it grows as `gensynth solve --tasks FILE` stores targets, so the split would change with it",
        "splits": "it is the registry of splits itself, which changes as splits are added",
    }
    why = reasons.get(name, "it is not part of the universe gensynth built (a table or view made by hand, or by a "
                            "command that changes it)")
    return (f"which a split may not read: {why}. A split may read {', '.join(sorted(split_inputs()))}, the sampling "
            f"macros and the views of other registered splits")


def unstable_functions(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """{function name: why a split may not call it} for the functions of ``con``'s DuckDB whose
    value changes between queries or depends on the machine or the session."""
    out = {}
    for name, stability in con.execute(
            "SELECT DISTINCT function_name, stability FROM duckdb_functions() WHERE internal "
            "AND function_type IN ('scalar', 'aggregate') AND stability IN ('VOLATILE', 'CONSISTENT_WITHIN_QUERY')").fetchall():
        out[name.lower()] = volatile_reason(stability)
    for name in OF_THE_MOMENT:
        out.setdefault(name, volatile_reason("CONSISTENT_WITHIN_QUERY"))
    for name in MACHINE_DEPENDENT:
        out[name] = ("depends on the machine or the session (the DuckDB version, its settings, the user or the database "
                     "name), so the split would differ in the stock shell or on another machine; write the value into "
                     "the SQL (a params CTE) instead")
    return out


def volatile_reason(stability: str) -> str:
    if stability == "VOLATILE":
        return ("returns a new value on every read (DuckDB marks it VOLATILE), so the split would change between "
                "training and evaluation; order by hash(program_id, seed) instead")
    return ("changes from one query to the next (the time or the transaction: DuckDB marks it "
            "CONSISTENT_WITHIN_QUERY), so the split would differ between training and evaluation; write the value "
            "into the SQL (a params CTE) instead")


def hand_made_macros(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Macros of the warehouse that gensynth did not install (made by hand in the shell)."""
    names = {r[0].lower() for r in con.execute(
        "SELECT DISTINCT function_name FROM duckdb_functions() WHERE NOT internal AND function_type IN ('macro', 'table_macro') "
        "AND database_name = current_database()").fetchall()}
    return names - split_macros()
