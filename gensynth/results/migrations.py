"""Results tables: the named migrations that create and change them, and carrying them over a rebuild.

Results are irreplaceable, so their tables are never rebuilt: they are created and changed
only by the named migrations in ``MIGRATIONS`` (files under ``sql/``), each applied once and
recorded in ``schema_migrations`` (``sql/migrations/schema_migrations.sql``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from gensynth.warehouse import relation_names, sql_text

# Every results table, in the order rows are written. runs, metrics and predictions exist
# since migration 0001 (CORE_TABLES); later tables may be missing from warehouses and run
# directories written before them.
RESULT_TABLES = ("runs", "metrics", "predictions", "evaluations")
CORE_TABLES = ("runs", "metrics", "predictions")


@dataclass(frozen=True)
class Migration:
    """A named, ordered change to the results tables (never edited once released)."""

    name: str
    """Unique, sortable name recorded in schema_migrations, e.g. '0001_results_tables'."""
    sql_file: str
    """File under sql/ holding the statements."""


# Append only. A later schema change is a new entry with a new file, e.g.
# Migration("0002_predictions_depth", "migrations/0002_predictions_depth.sql").
MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_results_tables", "results.sql"),
    Migration("0002_search_budget", "migrations/0002_search_budget.sql"),
    Migration("0003_runs_results_id", "migrations/0003_runs_results_id.sql"),
    Migration("0004_evaluations", "migrations/0004_evaluations.sql"),
    Migration("0005_run_attempts", "migrations/0005_run_attempts.sql"),
    Migration("0006_runs_arch", "migrations/0006_runs_arch.sql"),
)


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply every migration not yet recorded in ``schema_migrations``; return their names.

    Runs inside the caller's transaction when there is one (ingestion), so a failed
    ingestion leaves no half-applied migration behind.
    """
    con.execute(sql_text("migrations/schema_migrations.sql"))
    done = {r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()}
    applied = []
    for m in MIGRATIONS:
        if m.name in done:
            continue
        con.execute(sql_text(m.sql_file))
        con.execute("INSERT INTO schema_migrations VALUES (?, now())", [m.name])
        applied.append(m.name)
    return applied


def has_results_tables(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the results tables exist (a warehouse that never received a run has none)."""
    return set(CORE_TABLES) <= set(relation_names(con, kind="table"))


def carry_over(old_path: Path, con: duckdb.DuckDBPyConnection) -> int:
    """Copy the results tables of the warehouse at ``old_path`` into ``con`` (a new build).

    For ``gensynth build``, which replaces the warehouse file: results must survive a
    rebuild, whatever universe they were computed on (the analysis views show only the
    current universe's runs). Tables a warehouse written by an older gensynth lacks are
    skipped, columns it lacks become NULL. Returns the number of runs copied (0 when the
    old file has no results).
    """
    old_path = Path(old_path)
    if not old_path.is_file():
        return 0
    con.execute(f"ATTACH '{quote_path(old_path)}' AS old_wh (READ_ONLY)")
    try:
        tables = set(relation_names(con, database="old_wh", kind="table"))
        if not set(CORE_TABLES) <= tables:
            return 0
        migrate(con)
        for t in RESULT_TABLES:
            if t in tables:
                con.execute(f"INSERT INTO {t} BY NAME SELECT * FROM old_wh.{t}")
        return con.execute("SELECT count(*) FROM old_wh.runs").fetchone()[0]
    finally:
        con.execute("DETACH old_wh")


def quote_path(path: Path | str) -> str:
    """A path quoted for a SQL string literal."""
    return str(path).replace("'", "''")
