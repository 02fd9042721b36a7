"""The splits registry: named SELECTs over the manifold that give programs a role.

A split is one SELECT returning ``program_id`` and ``role`` (``train``, ``val`` or
``test_<name>``), kept in a file ``sql/splits/<name>.sql`` whose header comment says what
it tests and whose ``-- kind: density`` / ``-- kind: support`` line declares its kind. It
is registered as the plain-SQL view ``split_<name>`` (it works in the stock DuckDB shell)
and recorded in the ``splits`` table (sql/splits_registry.sql).

Built-in splits (sql/splits/): ``density_<s>`` for each strategy and ``support_syntactic``,
``support_semantic``, ``support_joint``. Their sizes live in each file's ``params`` CTE:
train 50,000, val 2,000 and 2,000 for each ``test_*`` role, seed 0. On a smaller universe
a role gets what its pool holds and registration prints a notice.

A split is validated before it runs (gensynth.splits.validate) and its rows checked after
(gensynth.splits.contract). A refused split leaves the warehouse unchanged: ``add``
validates and runs the split on a read-only connection with external access disabled
before it opens the file for writing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path

import duckdb

from gensynth.errors import GensynthError
from gensynth.splits.contract import SplitReport, materialise_and_check
from gensynth.splits.sampling import install_sampling, require_sampling
from gensynth.splits.validate import SplitSQL, check_name, did_you_mean, parse_split
from gensynth.warehouse import SQL_DIR, open_warehouse, relation_exists, run_sql, sql_text


# ----------------------------------------------------------------------------------------
# Built-ins and installation
# ----------------------------------------------------------------------------------------

def builtin_names() -> list[str]:
    """Names of the built-in splits (sql/splits/*.sql), density first."""
    names = [p.stem for p in (SQL_DIR / "splits").glob("*.sql")]
    return sorted(names, key=lambda n: (not n.startswith("density_"), n))


def builtin_sql(name: str) -> str:
    """The text of built-in split ``name``."""
    return sql_text(f"splits/{name}.sql")


def register_builtin_splits(con: duckdb.DuckDBPyConnection, stages=None, quiet: bool = False) -> list[str]:
    """Install sampling and register every built-in split on ``con`` (inside ``gensynth build``).

    ``stages`` (a ``gensynth.progress.Stages``) times each split as its own stage. A
    built-in whose rows fail a check on this universe (e.g. an empty train on a tiny
    one) is skipped with a notice; a built-in that fails static validation is a bug and
    raises. Returns the names registered.
    """
    quiet = quiet or bool(getattr(stages, "quiet", False))
    with _stage(stages, "split cells"):
        install_sampling(con)
    registered = []
    for name in builtin_names():
        with _stage(stages, f"split {name}"):
            split = parse_split(con, name, builtin_sql(name), source="builtin")
            try:
                report = register_split(con, split)
            except GensynthError as exc:
                _notice(f"Built-in split '{name}' was not registered on this universe: {exc}", quiet)
                continue
        for line in report.notices:
            _notice(f"split {name}: {line}", quiet)
        registered.append(name)
    return registered


def register_split(con: duckdb.DuckDBPyConnection, split: SplitSQL, report: SplitReport | None = None) -> SplitReport:
    """Create ``split_<name>`` and its ``splits`` row in one transaction on a writable ``con``.

    Without ``report`` the split is run and checked inside the transaction first; with
    one (from a dry run on a read-only connection) it is only registered. On any failure
    the transaction is rolled back.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        run_sql(con, "splits_registry.sql")
        create_view(con, split.view, split.body)
        if report is None:
            report = materialise_and_check(con, split.view, split)
        con.execute(
            "INSERT OR REPLACE INTO splits VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [split.name, split.kind, split.description, split.text, split.sql_hash, split.source,
             json.dumps(report.roles), "\n".join(report.notices), dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return report


# ----------------------------------------------------------------------------------------
# Commands on an existing warehouse (what the CLI calls)
# ----------------------------------------------------------------------------------------

def add_split(path: Path, file: Path, name: str | None = None, replace: bool = False) -> SplitReport:
    """Validate, run and register the split in ``file``; the warehouse is untouched on refusal.

    Everything that can fail runs first on a read-only, sandboxed connection (TEMP view);
    only then is the file opened for writing to create the view and the registry row.
    """
    file = Path(file)
    if not file.is_file():
        raise GensynthError(f"No split file '{file}'. Pass the path of a .sql file holding one SELECT (see sql/splits/ for examples).")
    name = name or file.stem
    check_name(name)
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise GensynthError(f"Cannot read split file '{file}': {exc}. Save it as UTF-8 text.") from None
    con = open_warehouse(path, read_only=True)
    try:
        sandbox(con)
        require_sampling(con, path)
        if not replace and name in registered_names(con):
            raise GensynthError(
                f"A split named '{name}' is already registered in '{path}'. Pass --replace to replace it, "
                f"--name to register this file under another name, or `gensynth split drop {name}` first."
            )
        split = parse_split(con, name, text, source=str(file))
        report = dry_run(con, split)
    finally:
        con.close()
    con = open_warehouse(path, read_only=False)
    try:
        sandbox(con)
        if not replace and name in registered_names(con):
            raise GensynthError(f"A split named '{name}' was registered in '{path}' meanwhile. Pass --replace to replace it.")
        register_split(con, split, report)
    finally:
        con.close()
    return report


def dry_run(con: duckdb.DuckDBPyConnection, split: SplitSQL, action: str = "was not registered") -> SplitReport:
    """Run and check ``split`` through a TEMP view on ``con`` (read-only is enough); nothing persists."""
    temp = "__gensynth_split_check"
    create_view(con, temp, split.body, temp_view=True)
    try:
        return materialise_and_check(con, temp, split, action=action)
    finally:
        with contextlib.suppress(duckdb.Error):
            con.execute(f"DROP VIEW IF EXISTS temp.{temp}")


def check_split(con: duckdb.DuckDBPyConnection, name: str) -> SplitReport:
    """Re-validate a registered split against the warehouse as it is now and re-run its checks."""
    row = registry_row(con, name)
    text, stored_hash, source = row["sql_text"], row["sql_hash"], row["source"]
    split = parse_split(con, name, text, source=source)
    if split.sql_hash != stored_hash:
        raise GensynthError(f"Split '{name}': the stored SQL does not match its stored hash; the `splits` row was edited by hand. Re-add it with `gensynth split add FILE --name {name} --replace`.")
    if not relation_exists(con, split.view):
        raise GensynthError(f"Split '{name}' is registered but its view {split.view} is missing. Re-add it with `gensynth split add FILE --name {name} --replace`.")
    report = materialise_and_check(con, split.view, split)
    if source == "builtin" and (SQL_DIR / "splits" / f"{name}.sql").is_file() and builtin_sql(name) != text:
        report.notices.append(f"sql/splits/{name}.sql has changed since this warehouse was built; rebuild (`gensynth build`) to register the new version.")
    return report


def drop_split(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop ``split_<name>`` and its ``splits`` row (one transaction)."""
    registry_row(con, name)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DROP VIEW IF EXISTS split_{name}")
        con.execute("DELETE FROM splits WHERE name = ?", [name])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def list_splits(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The ``splits`` table as dicts (``roles`` parsed), by name."""
    if not relation_exists(con, "splits"):
        return []
    cur = con.execute("SELECT name, kind, description, source, roles, notes, created_at, sql_hash FROM splits ORDER BY name")
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    for r in rows:
        r["roles"] = json.loads(r["roles"])
    return rows


def registered_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names in the ``splits`` table (empty if the table does not exist)."""
    if not relation_exists(con, "splits"):
        return []
    return [r[0] for r in con.execute("SELECT name FROM splits ORDER BY name").fetchall()]


def registry_row(con: duckdb.DuckDBPyConnection, name: str) -> dict:
    """The ``splits`` row of ``name`` as a dict; refuses an unknown name with a "did you mean"."""
    names = registered_names(con)
    if name not in names:
        hint = did_you_mean(name, names) or "."
        raise GensynthError(
            f"No split named '{name}'{hint}"
            + (f" Registered: {', '.join(names)} (see `gensynth split list`)." if names else " This warehouse has no splits; add one with `gensynth split add FILE`.")
        )
    cur = con.execute("SELECT * FROM splits WHERE name = ?", [name])
    return dict(zip([d[0] for d in cur.description], cur.fetchone()))


def sandbox(con: duckdb.DuckDBPyConnection) -> None:
    """Forbid file and network access on ``con`` for the rest of its life (defence in depth)."""
    con.execute("SET enable_external_access = false")


def create_view(con: duckdb.DuckDBPyConnection, view: str, body: str, temp_view: bool = False) -> None:
    """``CREATE OR REPLACE [TEMP] VIEW view AS body``, refusing SQL that would form more than that one statement."""
    sql = f"CREATE OR REPLACE {'TEMP ' if temp_view else ''}VIEW {view} AS\n{body}\n"
    stmts = con.extract_statements(sql)
    if len(stmts) != 1 or stmts[0].type != duckdb.StatementType.CREATE:
        raise GensynthError(f"Refusing to create view {view}: its SQL does not form exactly one CREATE VIEW statement.")
    con.execute(sql)


def _stage(stages, name: str):
    return stages.stage(name) if stages is not None else contextlib.nullcontext()


def _notice(message: str, quiet: bool) -> None:
    if not quiet:
        from gensynth.progress import console

        console.print(f"[yellow]notice:[/yellow] {message}")
