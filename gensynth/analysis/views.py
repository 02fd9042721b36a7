"""The analysis layer: plain-SQL views over runs, predictions and the manifolds.

Every file of ``sql/analysis/`` defines one object named after the file: the
``nearest_train`` table (filled by ``gensynth.analysis.proximity``) and the views

* ``finished_runs`` — finished runs of the current universe and the config facts analyses group by;
* ``analysed_predictions`` — the predictions every view counts: one evaluation per run,
  view and role (the most complete), with target and predicted functions;
* ``pass_at_k`` — run × view × role: pass@1 with a Wilson interval, unbiased pass@k;
* ``ood_drop`` — per run: test_id against each other test role, absolute and relative drop;
* ``density_matrix`` — train strategy × test strategy pass@1 with each row's spread;
* ``scaling`` — pass@1 against log10 training FLOPs with the fitted line and R²;
* ``method_comparison`` — training and search methods on the same test roles;
* ``proximity`` / ``proximity_summary`` — distance to the nearest training program,
  solved vs unsolved, with a Mann–Whitney rank test.

They use no Python functions, so they work in the stock DuckDB shell once installed.
``install_analysis_views`` installs them (idempotent, one transaction), in the order
their SQL needs: each file's dependencies on the other analysis objects are read from
the SQL itself (sqlglot), as SQLMesh does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from gensynth.errors import GensynthError
from gensynth.warehouse import SQL_DIR

ANALYSIS_DIR = SQL_DIR / "analysis"


@dataclass(frozen=True)
class AnalysisObject:
    """One file of sql/analysis/: a view (or the one table) and what it reads."""

    name: str
    kind: str  # 'view' or 'table'
    path: Path
    text: str
    depends_on: frozenset[str]  # other analysis objects it reads


def analysis_objects() -> list[AnalysisObject]:
    """Every sql/analysis/ object, ordered so that each comes after what it reads."""
    import sqlglot
    from sqlglot import exp

    files = sorted(ANALYSIS_DIR.glob("*.sql"))
    if not files:
        raise GensynthError(f"No SQL files under '{ANALYSIS_DIR}'; reinstall gensynth from its source tree (pip install -e .).")
    names = {f.stem for f in files}
    found: dict[str, AnalysisObject] = {}
    for f in files:
        text = f.read_text()
        tree = sqlglot.parse_one(text, read="duckdb")
        kind = "table" if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "TABLE" else "view"
        created = tree.this.find(exp.Table) if isinstance(tree, exp.Create) else None
        if created is None or created.name != f.stem:
            raise GensynthError(f"'{f}' must create the object named after the file ('{f.stem}'); "
                                f"it creates '{created.name if created else '?'}'. Rename one of them.")
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        reads = {t.name for t in tree.expression.find_all(exp.Table)} if tree.expression is not None else set()
        found[f.stem] = AnalysisObject(f.stem, kind, f, text, frozenset((reads - ctes) & (names - {f.stem})))
    ordered: list[AnalysisObject] = []
    done: set[str] = set()
    while len(ordered) < len(found):
        ready = sorted(n for n, o in found.items() if n not in done and o.depends_on <= done)
        if not ready:
            stuck = sorted(set(found) - done)
            raise GensynthError(f"sql/analysis/ objects depend on each other in a cycle: {', '.join(stuck)}.")
        for n in ready:
            ordered.append(found[n])
            done.add(n)
    return ordered


def install_analysis_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Create (or replace) every analysis view, and the tables they read if missing.

    Brings the results tables to the latest migration first (gensynth.results.migrations.
    migrate; creating them when the warehouse never received a run), so the views always bind.
    One transaction: on failure the warehouse stays as it was. Returns the names installed,
    in order.
    """
    from gensynth.results.migrations import migrate

    objects = analysis_objects()
    own = not _in_transaction(con)
    if own:
        con.execute("BEGIN TRANSACTION")
    try:
        migrate(con)  # results tables at the latest migration: the views read its columns
        for obj in objects:
            try:
                con.execute(obj.text)
            except duckdb.Error as exc:
                raise GensynthError(f"Cannot install analysis {obj.kind} '{obj.name}' from '{obj.path}': {exc}") from None
        if own:
            con.execute("COMMIT")
    except BaseException:
        if own:
            con.execute("ROLLBACK")
        raise
    return [o.name for o in objects]


TOP_SHARE_WARN = 0.2  # above this share of one predicted function, pass@1 is flagged


def run_role_scores(warehouse: Path, run_id: str, view: str, timeout: float = 5.0) -> list[dict] | None:
    """pass_at_k's rows of one run on one view (sql/report/run_roles.sql); None if the warehouse is busy now.

    Raises GensynthError when the installed views predate this code.
    """
    from gensynth.warehouse import WarehouseBusy, connect_retrying, relation_exists, sql_text

    try:
        con = connect_retrying(warehouse, read_only=True, timeout=timeout)
    except WarehouseBusy:
        return None
    try:
        if not relation_exists(con, "pass_at_k", kind="view"):
            return None
        con.execute("SET VARIABLE run_id = ?", [run_id])
        con.execute("SET VARIABLE view = ?", [view])
        try:
            cur = con.execute(sql_text("report/run_roles.sql"))
        except duckdb.BinderException:
            raise GensynthError("The warehouse's analysis views are older than this gensynth (pass_at_k lacks its new "
                                "columns); `gensynth proximity` or `gensynth report` reinstalls them.") from None
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        con.close()


def column_docs(obj: AnalysisObject) -> dict[str, str]:
    """Selected (or declared) column -> its trailing comment ('' when undocumented)."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(obj.text, read="duckdb")
    docs: dict[str, str] = {}
    if obj.kind == "table":
        for col in tree.this.expressions:
            if isinstance(col, exp.ColumnDef):
                docs[col.name] = " ".join(c.strip() for c in (col.comments or [])).strip()
        return docs
    select = tree.expression
    while not isinstance(select, exp.Select):
        select = select.this if isinstance(select, (exp.Subquery, exp.SetOperation)) else select.args.get("this")
    from gensynth.sqldoc import select_column_docs

    docs.update(select_column_docs(select))
    return docs


def _in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    try:
        con.execute("BEGIN TRANSACTION")
    except duckdb.TransactionException:
        return True
    con.execute("ROLLBACK")
    return False
