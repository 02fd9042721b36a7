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
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from gensynth.errors import GensynthError
from gensynth.splits.contract import SplitReport, materialise_and_check
from gensynth.splits.sampling import install_sampling, require_sampling
from gensynth.splits.validate import CARRY, CHECK, REEMBED, REGISTER, SplitSQL, check_name, did_you_mean, parse_split
from gensynth.warehouse import (SQL_DIR, QueryLimits, attached, limited, open_warehouse, relation_columns, relation_exists,
                                relation_names, run_sql, sql_text)


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


_COLUMNS = "name, kind, description, sql_text, sql_hash, source, roles, notes, created_at, status, stale_reason"


def register_split(con: duckdb.DuckDBPyConnection, split: SplitSQL, report: SplitReport | None = None,
                   action: str = REGISTER) -> SplitReport:
    """Create ``split_<name>`` and its ``splits`` row in one transaction on a writable ``con``.

    Without ``report`` the split is run and checked inside the transaction first (a
    refusal says ``action``: what failing means here); with one (from a dry run on a
    read-only connection) it is only registered. On any failure the transaction is
    rolled back.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        run_sql(con, "splits_registry.sql")
        create_view(con, split.view, split.body)
        if report is None:
            report = materialise_and_check(con, split.view, split, action=action)
        con.execute(
            f"INSERT OR REPLACE INTO splits ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok', '')",
            [split.name, split.kind, split.description, split.text, split.sql_hash, split.source,
             json.dumps(report.roles), "\n".join(report.notices), _now()],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return report


def mark_stale(con: duckdb.DuckDBPyConnection, row: dict, reason: str) -> None:
    """Keep a split that no longer passes as a ``stale`` registry row (no view) with ``reason``."""
    con.execute("BEGIN TRANSACTION")
    try:
        run_sql(con, "splits_registry.sql")
        con.execute(f"DROP VIEW IF EXISTS split_{row['name']}")
        con.execute(
            f"INSERT OR REPLACE INTO splits ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'stale', ?)",
            [row["name"], row.get("kind") or "density", row.get("description") or "", row["sql_text"], row["sql_hash"],
             row["source"], row.get("roles") or "{}", row.get("notes") or "", row.get("created_at") or _now(), reason],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


# ----------------------------------------------------------------------------------------
# Commands on an existing warehouse (what the CLI calls)
# ----------------------------------------------------------------------------------------

def add_split(path: Path, file: Path, name: str | None = None, replace: bool = False,
              limits: QueryLimits | None = None) -> SplitReport:
    """Validate, run and register the split in ``file``; the warehouse is untouched on refusal.

    Everything that can fail runs first on a read-only, sandboxed connection (TEMP view),
    under ``limits``; only then is the file opened for writing to create the view and the
    registry row (a stale split of that name is replaced only with ``replace``).
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
            raise already_registered(con, path, name)
        split = parse_split(con, name, text, source=str(file))
        with limited(con, limits, f"Split '{name}'"):
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


def already_registered(con: duckdb.DuckDBPyConnection, path: Path, name: str) -> GensynthError:
    """The refusal of ``split add`` without --replace for a name in use: a stale split is called stale, with why and how to revive it."""
    row = registry_row(con, name)
    if row.get("status") == "stale":
        return GensynthError(
            f"A split named '{name}' is already registered in '{path}', but it is stale (it has no view split_{name}): "
            f"{row.get('stale_reason') or 'it failed on this universe'}. Pass --replace to replace it with this file, "
            f"run `gensynth split check {name}` to re-validate its stored SQL as it is (it is registered again if it "
            f"passes), or pass --name to register this file under another name."
        )
    return GensynthError(
        f"A split named '{name}' is already registered in '{path}'. Pass --replace to replace it, "
        f"--name to register this file under another name, or `gensynth split drop {name}` first."
    )


def dry_run(con: duckdb.DuckDBPyConnection, split: SplitSQL, action: str = REGISTER) -> SplitReport:
    """Run and check ``split`` through a TEMP view on ``con`` (read-only is enough); nothing persists."""
    temp = "__gensynth_split_check"
    create_view(con, temp, split.body, temp_view=True)
    try:
        return materialise_and_check(con, temp, split, action=action)
    finally:
        with contextlib.suppress(duckdb.Error):
            con.execute(f"DROP VIEW IF EXISTS temp.{temp}")


def check_split(con: duckdb.DuckDBPyConnection, name: str, limits: QueryLimits | None = None) -> SplitReport:
    """Re-validate a registered split against the warehouse as it is now and re-run its checks.

    A stale split (no view) is validated and dry-run from its stored SQL; its report says
    ``revivable`` when it passes, and ``revive_split`` registers it again.
    """
    row = registry_row(con, name)
    text, stored_hash, source = row["sql_text"], row["sql_hash"], row["source"]
    split = parse_split(con, name, text, source=source, action=CHECK)
    if split.sql_hash != stored_hash:
        raise GensynthError(f"Split '{name}': the stored SQL does not match its stored hash; the `splits` row was edited by hand. Re-add it with `gensynth split add FILE --name {name} --replace`.")
    stale = row.get("status") == "stale"
    if not stale and not relation_exists(con, split.view):
        raise GensynthError(f"Split '{name}' is registered but its view {split.view} is missing. Re-add it with `gensynth split add FILE --name {name} --replace`.")
    with limited(con, limits, f"Split '{name}'"):
        report = dry_run(con, split, action=CHECK) if stale else materialise_and_check(con, split.view, split, action=CHECK)
    report.revivable = stale
    if source == "builtin" and (SQL_DIR / "splits" / f"{name}.sql").is_file() and builtin_sql(name) != text:
        report.notices.append(f"sql/splits/{name}.sql has changed since this warehouse was built; rebuild (`gensynth build`) to register the new version.")
    return report


def revive_split(con: duckdb.DuckDBPyConnection, name: str, report: SplitReport) -> None:
    """Register a stale split again (view and ``ok`` row) after ``check_split`` passed it."""
    row = registry_row(con, name)
    register_split(con, parse_split(con, name, row["sql_text"], source=row["source"], action=CHECK), report)


def dependents(con: duckdb.DuckDBPyConnection, name: str) -> tuple[list[str], list[str]]:
    """(splits whose SQL reads split_<name>, run ids that trained or were evaluated on it)."""
    view = f"split_{name}"
    readers = []
    for other, text in con.execute("SELECT name, sql_text FROM splits WHERE name <> ? ORDER BY name", [name]).fetchall():
        if view in reads(text):
            readers.append(other)
    runs = []
    if relation_exists(con, "runs"):
        runs = [r[0] for r in con.execute("SELECT run_id FROM runs WHERE view = ? ORDER BY run_id", [view]).fetchall()]
    return readers, runs


def drop_split(con: duckdb.DuckDBPyConnection, name: str, force: bool = False) -> list[str]:
    """Drop ``split_<name>`` and its ``splits`` row (one transaction); returns the dependent
    splits marked stale. Refuses, naming them, while other splits read it or runs used it,
    unless ``force``: then those splits become stale and the runs keep their results."""
    registry_row(con, name)
    readers, runs = dependents(con, name)
    if (readers or runs) and not force:
        parts = ([f"split(s) {', '.join(readers)} read split_{name}"] if readers else []) + \
                ([f"{len(runs)} run(s) used it ({', '.join(runs[:5])}{', ...' if len(runs) > 5 else ''})"] if runs else [])
        raise GensynthError(
            f"Split '{name}' has dependents: {'; '.join(parts)}. Dropping it would leave them pointing at a view that "
            f"no longer exists. Pass --force to drop it anyway (dependent splits are kept as stale; runs keep their results)."
        )
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DROP VIEW IF EXISTS split_{name}")
        con.execute("DELETE FROM splits WHERE name = ?", [name])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    for other in readers:
        mark_stale(con, registry_row(con, other), f"it reads split_{name}, which was dropped")
    return readers


def list_splits(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The ``splits`` table as dicts (``roles`` parsed; ``status`` 'ok' or 'stale'), by name."""
    if not relation_exists(con, "splits"):
        return []
    cur = con.execute("SELECT * FROM splits ORDER BY name")
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    for r in rows:
        r["roles"] = json.loads(r["roles"] or "{}")
        r["status"] = "stale" if r.get("status") == "stale" else "ok"
        r["stale_reason"] = r.get("stale_reason") or ""
    return rows


def registered_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names in the ``splits`` table (empty if the table does not exist)."""
    if not relation_exists(con, "splits"):
        return []
    return [r[0] for r in con.execute("SELECT name FROM splits ORDER BY name").fetchall()]


# ----------------------------------------------------------------------------------------
# What training, evaluation and search read: a registered split's view
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SplitInfo:
    """A registered split view and the sizes of its roles."""

    view: str
    roles: dict[str, int]
    sql_hash: str | None


def require_split(con: duckdb.DuckDBPyConnection, view: str, require_train: bool = True) -> SplitInfo:
    """Check that ``view`` is a registered split (with a non-empty train role); return its roles.

    Accepts the view name (``split_x``) or the split name (``x``). Errors name the problem
    and the fix, suggest close names for a misspelt view, and say why a stale split has
    no view. What ``gensynth train``, ``eval`` and ``solve`` call before reading a split.
    """
    views = relation_names(con, kind="view")
    registered = registered_names(con)
    if view not in views and f"split_{view}" in views:
        view = f"split_{view}"
    if view not in views:
        name = view.removeprefix("split_")
        if name in registered:
            usable_row(con, name)  # a stale split: says why it has no view and how to fix it
        known = sorted(v for v in views if v.startswith("split_")) or sorted(registered)
        candidates = sorted(set(views) | {f"split_{r}" for r in registered})
        close = difflib.get_close_matches(view, candidates, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        listing = f" Split views in this warehouse: {', '.join(known)}." if known else " This warehouse has no split views yet."
        raise GensynthError(f"No view '{view}' in the warehouse.{hint}{listing} Pass one with --view split_NAME.")
    if view not in registered and view.removeprefix("split_") not in registered:
        raise GensynthError(
            f"View '{view}' exists but is not a registered split (it has no row in the `splits` table), so a run on it "
            f"could not record which split it used. Create splits with gensynth's split command (which registers them), "
            f"or pass a registered one: {', '.join(sorted(registered)) or 'none registered yet'}."
        )
    cols = [c for c, _, _ in relation_columns(con, view)]
    if not {"program_id", "role"} <= set(cols):
        raise GensynthError(f"Split view '{view}' must have columns (program_id, role); it has {', '.join(cols)}.")
    roles = dict(con.execute(f'SELECT role, count(*) FROM "{view}" GROUP BY role ORDER BY role').fetchall())
    if require_train and not roles.get("train"):
        have = ", ".join(f"{r} {n:,}" for r, n in roles.items()) or "none: the view is empty"
        raise GensynthError(
            f"Split view '{view}' has no programs with role 'train' (roles: {have}), so there is nothing to train on. "
            f"Fix the split's SQL so some programs get role 'train'."
        )
    dups = con.execute(f'SELECT count(*) - count(DISTINCT (program_id, role)) FROM "{view}"').fetchone()[0]
    if dups:
        raise GensynthError(f"Split view '{view}' lists {dups} (program_id, role) pair(s) more than once; fix its SQL (add DISTINCT).")
    sql_hash = None
    if relation_exists(con, "splits") and "sql_hash" in {c for c, _, _ in relation_columns(con, "splits")}:
        row = con.execute("SELECT sql_hash FROM splits WHERE name IN (?, ?) LIMIT 1", [view, view.removeprefix("split_")]).fetchone()
        sql_hash = None if row is None else str(row[0])
    return SplitInfo(view, roles, sql_hash)


# ----------------------------------------------------------------------------------------
# Rebuilds: user splits are carried over
# ----------------------------------------------------------------------------------------

@dataclass
class CarryReport:
    """What a rebuild (or ``gensynth embed``) did with the user splits it re-validated."""

    carried: int = 0  # user splits found (in the replaced warehouse, or in this one for embed)
    registered: list[str] = field(default_factory=list)  # re-validated and registered
    stale: dict[str, str] = field(default_factory=dict)  # kept without a view: name -> why
    empty_tests: dict[str, list[str]] = field(default_factory=dict)  # registered, but these test roles are empty now


def carry_over_splits(old_path: Path, con: duckdb.DuckDBPyConnection, limits: QueryLimits | None = None) -> CarryReport:
    """Re-register the user splits (source not 'builtin') of the warehouse at ``old_path`` on ``con``.

    For ``gensynth build``, which replaces the warehouse: user splits are irreplaceable.
    Each is re-validated against the new universe (``revalidate_splits``).
    """
    return revalidate_splits(con, _old_user_splits(Path(old_path), con), CARRY, limits)


def revalidate_user_splits(con: duckdb.DuckDBPyConnection, limits: QueryLimits | None = None) -> CarryReport:
    """Re-validate the user splits of ``con``'s own warehouse after its manifolds changed (``gensynth embed``)."""
    if not relation_exists(con, "splits", kind="table"):
        return CarryReport()
    return revalidate_splits(con, _user_split_rows(con, "splits"), REEMBED, limits)


def revalidate_splits(con: duckdb.DuckDBPyConnection, rows: list[dict], action: str,
                      limits: QueryLimits | None = None) -> CarryReport:
    """Re-validate and re-run each split row under ``limits``, in the order it was registered
    (a split reading another comes after it): one that passes is registered (its roles
    counted anew), one that fails is kept as a stale row with the reason, worded by
    ``action``. A registered split whose test roles (declared in its SQL, or held when it
    was last registered) are now empty is listed in ``empty_tests``.
    """
    report = CarryReport(carried=len(rows))
    for row in rows:
        try:
            if not relation_exists(con, "manifold_cells"):
                raise GensynthError("the rebuilt warehouse has no manifolds (built with --skip-embed); run `gensynth embed`, then `gensynth split check --all`")
            split = parse_split(con, row["name"], row["sql_text"], source=row["source"], action=action)
            with limited(con, limits, f"Split '{row['name']}'"):
                result = register_split(con, split, action=action)
            report.registered.append(row["name"])
            before = [r for r in json.loads(row.get("roles") or "{}") if r not in split.declared_roles]
            empty = [r for r in dict.fromkeys(split.declared_roles + before)
                     if r.startswith("test_") and not result.roles.get(r)]
            if empty:
                report.empty_tests[row["name"]] = empty
        except GensynthError as exc:
            reason = " ".join(str(exc).split())
            mark_stale(con, row, reason)
            report.stale[row["name"]] = reason
    return report


def _old_user_splits(old_path: Path, con: duckdb.DuckDBPyConnection) -> list[dict]:
    if not old_path.is_file():
        return []
    with attached(con, old_path, "old_splits"):
        if not relation_exists(con, "splits", database="old_splits"):
            return []
        return _user_split_rows(con, "old_splits.splits")


def _user_split_rows(con: duckdb.DuckDBPyConnection, table: str) -> list[dict]:
    """The user splits (source not 'builtin') of ``table`` as dicts, in the order they were registered."""
    cur = con.execute(f"SELECT * FROM {table} WHERE source <> 'builtin' ORDER BY created_at, name")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def reads(text: str) -> set[str]:
    """Names of the tables and views a split's SQL reads (lowercase; CTE names excluded)."""
    import sqlglot
    from sqlglot import exp

    try:
        root = sqlglot.parse_one(text, read="duckdb")
    except Exception:  # unparsable SQL reads nothing we can name
        return set()
    ctes = {c.alias_or_name.lower() for c in root.find_all(exp.CTE)}
    return {t.name.lower() for t in root.find_all(exp.Table) if isinstance(t.this, exp.Identifier)} - ctes


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


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


def usable_row(con: duckdb.DuckDBPyConnection, name: str) -> dict:
    """``registry_row`` of a split that has its view; refuses a stale split, saying why and how to fix it."""
    row = registry_row(con, name)
    if row.get("status") == "stale":
        raise GensynthError(
            f"Split '{name}' is stale (it has no view split_{name}): {row.get('stale_reason') or 'it failed on this universe'}. "
            f"Fix its SQL and re-add it (`gensynth split add FILE --name {name} --replace`), or re-validate it as it is "
            f"with `gensynth split check {name}`."
        )
    return row


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
