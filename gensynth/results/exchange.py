"""Results leave the warehouse and come back: `gensynth runs export` and `gensynth runs import`.

An export directory holds, for the runs of the warehouse's current universe:

* ``runs.parquet``, ``metrics.parquet``, ``evaluations.parquet`` — those tables' rows, every
  column unchanged (``sql/exchange/export_*.sql``);
* ``predictions.parquet`` — every predictions column, plus the target program's text,
  size and manifold coordinates, so the file reads without the warehouse;
* ``analysis/<view>.parquet`` — each analysis view of ``sql/analysis/`` as computed here;
* ``manifest.json`` — the universe (data version, grammar, max-ops), row counts, when;
* ``README.md`` — one line per file.

Plain Parquet: DuckDB (``FROM 'DIR/runs.parquet'``), pandas and polars read it.

``import_results`` brings the four results tables into another warehouse of the same
universe: it refuses another data version (program ids would name other programs), checks
every file against its manifest and the warehouse's programs before writing, refuses runs
the warehouse already holds unless ``replace``, and writes in one transaction — a bad
directory leaves the warehouse exactly as it was. The analysis views and ``nearest_train``
are derived: the importing warehouse recomputes them (``gensynth report`` does).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from gensynth.errors import GensynthError
from gensynth.results.migrations import RESULT_TABLES, migrate, quote_path
from gensynth.warehouse import read_meta, relation_columns, relation_exists, sql_text

FORMAT = "gensynth-results-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DESCRIPTIONS = {
    "runs": "one row per run (training or search): configuration, size, compute, status, data version",
    "metrics": "long-format time series and final scores per run: (run_id, step, name, value)",
    "evaluations": "one row per evaluation of a run (settings, checkpoint, counts, scores); predictions.eval_id",
    "predictions": "one row per answer: the predictions table's columns, then the target program "
                   "(target_prefix, target_infix, target_n_ops, target_depth, target_function_id, target_syn, target_sem)",
}


@dataclass
class ExchangeSummary:
    """What an export or import did."""

    directory: Path
    data_version: str
    rows: dict[str, int] = field(default_factory=dict)  # file or table -> rows
    runs: list[str] = field(default_factory=list)  # run ids exported or imported
    replaced: list[str] = field(default_factory=list)  # run ids whose earlier rows an import replaced
    other_universe_runs: int = 0  # runs of other universes left out of an export


# --------------------------------------------------------------------------- export


def _write(con: duckdb.DuckDBPyConnection, sql: str, path: Path) -> int:
    con.sql(sql).write_parquet(str(path), compression="zstd")
    return con.execute(f"SELECT count(*) FROM read_parquet('{quote_path(path)}')").fetchone()[0]


def _readme(meta: dict, rows: dict[str, int], views: dict[str, str]) -> str:
    lines = [f"# gensynth results export ({meta.get('grammar_name', '?')}, max ops {meta.get('max_ops', '?')})", "",
             f"Universe (data version) `{meta.get('data_version')}`. Read any file with DuckDB "
             "(`FROM 'runs.parquet'`), pandas (`pd.read_parquet`) or polars (`pl.read_parquet`); bring the runs "
             "into another warehouse of the same universe with `gensynth runs import DIR`.", ""]
    for name in RESULT_TABLES:
        lines.append(f"- `{name}.parquet` ({rows[name]:,} rows): {DESCRIPTIONS[name]}.")
    for view, what in views.items():
        lines.append(f"- `analysis/{view}.parquet` ({rows['analysis/' + view]:,} rows): view `{view}` as computed "
                     f"in the source warehouse — {what}.")
    lines.append(f"- `{MANIFEST}`: the universe, row counts and when this was written (read by `gensynth runs import`).")
    return "\n".join(lines) + "\n"


def _view_summaries() -> dict[str, str]:
    """Each analysis view's name and the first sentence of its file's header."""
    from gensynth.analysis.views import analysis_objects

    out = {}
    for o in analysis_objects():
        if o.kind != "view":
            continue
        head = []
        for line in o.text.splitlines():
            if not line.startswith("--") or not line.removeprefix("--").strip():
                break  # the header's first paragraph
            head.append(line.removeprefix("--").strip())
        text = re.split(r"\.\s|:\s*\*|\.$", " ".join(head).split(": ", 1)[-1])[0].rstrip(".:")
        out[o.name] = text if len(text) <= 180 else text[:177].rsplit(" ", 1)[0] + " …"
    return out


def _prepare_out(out: Path, replace: bool) -> None:
    if out.exists() and not out.is_dir():
        raise GensynthError(f"--out {out}: that is a file, not a directory. Name a new directory for the export.")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MANIFEST).is_file():
            raise GensynthError(f"--out {out}: the directory is not empty and holds no earlier export "
                                f"({MANIFEST}), so nothing is written there. Name a new or empty directory.")
        if not replace:
            raise GensynthError(f"--out {out}: it holds an earlier export. Pass --replace to overwrite it, or name "
                                "another directory.")


def export_results(con: duckdb.DuckDBPyConnection, out: Path, replace: bool = False) -> ExchangeSummary:
    """Write the current universe's results and analysis views as Parquet into ``out``.

    ``con`` reads the warehouse (analysis views installed). Files are written into a
    temporary sibling directory that replaces ``out`` only when complete.
    """
    out = Path(out)
    _prepare_out(out, replace)
    meta = read_meta(con)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "analysis").mkdir(parents=True)
    try:
        rows = {}
        for name in ("runs", "metrics", "evaluations"):
            rows[name] = _write(con, sql_text(f"exchange/export_{name}.sql"), tmp / f"{name}.parquet")
        with_manifolds = relation_exists(con, "syn_coords", kind="table") and relation_exists(con, "sem_coords", kind="table")
        rows["predictions"] = _write(con, sql_text("exchange/export_predictions.sql" if with_manifolds else
                                                   "exchange/export_predictions_no_manifolds.sql"),
                                     tmp / "predictions.parquet")
        views = _view_summaries()
        for view in views:
            rows[f"analysis/{view}"] = _write(con, f"SELECT * FROM {view}", tmp / "analysis" / f"{view}.parquet")
        run_ids = [r[0] for r in con.execute(f"SELECT run_id FROM read_parquet('{quote_path(tmp / 'runs.parquet')}')").fetchall()]
        others = con.execute("SELECT count(*) FROM runs WHERE data_version IS DISTINCT FROM ?",
                             [meta.get("data_version")]).fetchone()[0]
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "data_version": meta.get("data_version"),
                    "grammar_name": meta.get("grammar_name"), "grammar_hash": meta.get("grammar_hash"),
                    "max_ops": meta.get("max_ops"), "n_programs": meta.get("n_programs"),
                    "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "rows": rows, "runs": run_ids}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        (tmp / "README.md").write_text(_readme(meta, rows, views))
        if out.exists():  # an earlier export (checked above), replaced only now that the new one is complete
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExchangeSummary(out, meta.get("data_version"), rows, run_ids, other_universe_runs=others)


# --------------------------------------------------------------------------- import


def read_manifest(directory: Path) -> dict:
    """The manifest of an export directory, or an error saying why it is not one."""
    directory = Path(directory)
    if not directory.is_dir():
        raise GensynthError(f"'{directory}' is not a directory. Name a directory written by `gensynth runs export --out DIR`.")
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise GensynthError(f"'{directory}' is not a gensynth results export: it has no {MANIFEST}. Write one with "
                            "`gensynth runs export --out DIR`.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GensynthError(f"'{path}' is not valid JSON ({exc}); the export is damaged. Export again.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise GensynthError(f"'{path}' is not a gensynth results manifest (no \"format\": \"{FORMAT}\"). Export again.")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise GensynthError(f"'{path}' has export format version {manifest.get('format_version')}, this gensynth reads "
                            f"version {FORMAT_VERSION}. Import it with the gensynth that wrote it, or export again.")
    return manifest


def _universe(d: dict) -> str:
    return f"grammar '{d.get('grammar_name')}', max ops {d.get('max_ops')}, data version {d.get('data_version')}"


def _attach_files(con: duckdb.DuckDBPyConnection, directory: Path, manifest: dict) -> None:
    """Temporary views import_<table> over the directory's files, each checked against the manifest's count."""
    for t in RESULT_TABLES:
        path = directory / f"{t}.parquet"
        if not path.is_file():
            raise GensynthError(f"'{directory}' lacks {t}.parquet (its manifest lists it). The export is incomplete: "
                                "export again.")
        try:
            con.execute(f"CREATE OR REPLACE TEMP VIEW import_{t} AS SELECT * FROM read_parquet('{quote_path(path)}')")
            n = con.execute(f"SELECT count(*) FROM import_{t}").fetchone()[0]
        except duckdb.Error as exc:
            raise GensynthError(f"'{path}' cannot be read as Parquet ({str(exc).splitlines()[0]}). The export is "
                                "damaged: export again.") from None
        expected = (manifest.get("rows") or {}).get(t)
        if n != expected:
            raise GensynthError(f"'{path}' has {n:,} rows but the export's manifest says {expected}: the file was "
                                "changed or cut short after export. Export again.")


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, bool]:
    """Column name -> nullable, of a table or temporary view."""
    return {c: nullable for c, _, nullable in relation_columns(con, relation)}


def _insert_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The columns of ``table`` to copy from import_<table>; missing NOT NULL ones refuse the import."""
    have, want = _columns(con, f"import_{table}"), _columns(con, table)
    missing = [c for c, nullable in want.items() if c not in have and not nullable]
    if missing:
        raise GensynthError(f"{table}.parquet lacks the column(s) {', '.join(missing)} that `{table}` requires "
                            "(written by an older gensynth?). Export again with this gensynth.")
    return [c for c in want if c in have]


def check_import(con: duckdb.DuckDBPyConnection, directory: Path, replace: bool) -> tuple[dict, list[str], list[str]]:
    """Everything checked before an import writes: (manifest, run ids, run ids already here)."""
    manifest = read_manifest(directory)
    meta = read_meta(con)
    if manifest.get("data_version") != meta.get("data_version"):
        raise GensynthError(
            f"'{directory}' holds runs of another universe ({_universe(manifest)}); this warehouse is "
            f"{_universe(meta)}. A program id names a different program in another universe, so the runs are "
            f"not imported. Import into a warehouse built with grammar '{manifest.get('grammar_name')}' and "
            f"--max-ops {manifest.get('max_ops')}.")
    _attach_files(con, Path(directory), manifest)
    con.execute("SET VARIABLE data_version = ?", [manifest["data_version"]])
    problems = con.execute(sql_text("exchange/import_problems.sql")).fetchall()
    if problems:
        listed = "; ".join(f"{p}: {n:,} (e.g. {d})" for p, d, n in problems)
        raise GensynthError(f"'{directory}' does not fit this warehouse: {listed}. Nothing was imported; export the "
                            "runs again from their warehouse.")
    run_ids = [r[0] for r in con.execute("SELECT run_id FROM import_runs ORDER BY run_id").fetchall()]
    existing = [r[0] for r in con.execute(sql_text("exchange/import_conflicts.sql")).fetchall()]
    if existing and not replace:
        shown = ", ".join(existing[:10]) + (f" and {len(existing) - 10} more" if len(existing) > 10 else "")
        raise GensynthError(f"This warehouse already holds {len(existing)} of the {len(run_ids)} run(s) in "
                            f"'{directory}' ({shown}). Nothing was imported. Pass --replace to replace their rows "
                            "(runs, metrics, evaluations, predictions) with the export's.")
    return manifest, run_ids, existing


def import_results(con: duckdb.DuckDBPyConnection, directory: Path, replace: bool = False) -> ExchangeSummary:
    """Copy an export directory's runs, metrics, evaluations and predictions into ``con``.

    One transaction holds the checks and the writes: a refused or failed import leaves the
    warehouse exactly as it was (not even the results tables are created).
    """
    directory = Path(directory)
    rows = {}
    con.execute("BEGIN TRANSACTION")
    try:
        migrate(con)  # a warehouse that never had a run gets the results tables
        manifest, run_ids, existing = check_import(con, directory, replace)
        columns = {t: _insert_columns(con, t) for t in RESULT_TABLES}
        if existing:
            for t in RESULT_TABLES:
                con.execute(f"DELETE FROM {t} WHERE run_id IN (SELECT run_id FROM import_runs)")
        for t in RESULT_TABLES:  # runs first: the order rows are written
            cols = ", ".join(f'"{c}"' for c in columns[t])
            con.execute(f"INSERT INTO {t} ({cols}) SELECT {cols} FROM import_{t}")
            rows[t] = con.execute(f"SELECT count(*) FROM import_{t}").fetchone()[0]
        con.execute("COMMIT")
    except BaseException as exc:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        if isinstance(exc, duckdb.Error):
            raise GensynthError(f"Importing '{directory}' failed ({str(exc).splitlines()[0]}); the warehouse was left "
                                "as it was.") from None
        raise
    return ExchangeSummary(directory, manifest["data_version"], rows, run_ids, replaced=existing)
