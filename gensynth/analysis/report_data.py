"""The data of `gensynth report`: every number it shows, read by the files of sql/report/.

Each file of ``sql/report/`` is one query over the analysis views (a header says what it
answers and which variables it reads with ``getvariable``); the report prints, under each
table, the file and the ``SET VARIABLE`` lines that rerun it in ``gensynth shell``.

``gather`` runs them all on one read-only connection and keeps the rows, so the figures
and the Markdown are then drawn with no connection open: the warehouse stays free for
runs that finish meanwhile (a reader blocks every writer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from gensynth.analysis.views import TOP_SHARE_WARN as TOP_SHARE  # one predicted function above this share is flagged
from gensynth.warehouse import SQL_DIR, relation_names, sql_text

MAX_POINTS = 50_000  # points drawn in the manifold figure


@dataclass
class Query:
    """One sql/report/ file as run: its name, its variables, its rows."""

    name: str
    variables: dict
    rows: list[dict]

    @property
    def path(self) -> str:
        return f"sql/report/{self.name}.sql"

    def shell_text(self) -> str:
        """What to paste into `gensynth shell` to rerun it."""
        sets = "".join(f"SET VARIABLE {k} = {_literal(v)};\n" for k, v in self.variables.items())
        return sets + (SQL_DIR / "report" / f"{self.name}.sql").read_text().strip()


def _literal(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


class Queries:
    """Runs sql/report/ files on one connection and remembers each run."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.runs: dict[str, Query] = {}

    def __call__(self, name: str, **variables) -> Query:
        for k, v in variables.items():
            self.con.execute(f"SET VARIABLE {k} = ?", [v])
        cur = self.con.execute(sql_text(f"report/{name}.sql"))
        cols = [d[0] for d in cur.description]
        q = Query(name, variables, [dict(zip(cols, r)) for r in cur.fetchall()])
        self.runs[name] = q
        return q


def views_of(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of the warehouse's views."""
    return set(relation_names(con, kind="view"))


def choose_split(con: duckdb.DuckDBPyConnection, split: str | None) -> str | None:
    """The split view for figure 1: the one asked for, else the one with most finished runs, else any."""
    from gensynth.errors import GensynthError

    views = views_of(con)
    splits = sorted(v for v in views if v.startswith("split_"))
    if split is not None:
        view = split if split.startswith("split_") else f"split_{split}"
        if view not in views:
            import difflib

            close = difflib.get_close_matches(view, splits, n=1)
            raise GensynthError(f"--split {split}: no split view '{view}' here" + (f" (did you mean '{close[0]}'?)" if close else "")
                                + f". Splits: {', '.join(splits) or 'none'}.")
        return view
    ranked = [r["view"] for r in Queries(con)("split_choice").rows if r["view"] in views]
    if ranked:
        return ranked[0]
    for preferred in ("split_support_syntactic", "split_density_natural"):
        if preferred in views:
            return preferred
    return splits[0] if splits else None


@dataclass
class ReportData:
    """Everything the report draws and prints, read in one go (see ``gather``)."""

    meta: dict
    split: str | None
    has_manifold: bool
    q: dict[str, Query] = field(default_factory=dict)  # name -> the query as run

    def rows(self, name: str) -> list[dict]:
        """The rows of a query that ran ([] if it did not: its data is missing)."""
        return self.q[name].rows if name in self.q else []


def gather(con: duckdb.DuckDBPyConnection, split: str | None = None) -> ReportData:
    """Run every sql/report/ query the report needs; ``con`` has the analysis views installed."""
    run = Queries(con)
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    view = choose_split(con, split)
    has_manifold = "manifold" in views_of(con)
    if has_manifold:
        run("manifold_limits")
    if has_manifold and view is not None:
        run("manifold_roles", split_view=view)
        run("manifold_points", split_view=view, max_points=MAX_POINTS)
    if view is not None:
        run("pass_by_size", split_view=view)
        featured = run("featured_run", split_view=view).rows
        if featured and has_manifold:
            run("solved_points", run_id=featured[0]["run_id"])
    run("run_status")
    cfg = run("density_config").rows
    if cfg:
        group = {"method": cfg[0]["method"], "size": cfg[0]["size"], "max_steps": cfg[0]["max_steps"]}
        for name in ("density_cells", "density_runs", "density_claims"):
            run(name, **group)
    for name in ("pass_by_role", "training_curves", "scaling_points", "scaling_fits", "scaling_claims",
                 "proximity_auc", "proximity_runs", "proximity_table", "method_runs", "method_costs", "method_table",
                 "ood_table", "ood_claims", "every_run"):
        run(name)
    run("prediction_diversity", top_share=TOP_SHARE)
    run("collapse", top_share=TOP_SHARE)
    return ReportData(meta, view, has_manifold, run.runs)
