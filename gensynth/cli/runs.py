"""CLI commands for run directories and their warehouse rows: ``gensynth runs list|show|sync|export|import``.

Registered in gensynth/cli/main.py (through gensynth.cli.train). Only typer and the
standard library load at import time.

Whether a run is stored is read from the warehouse itself (``gensynth.results.ingest.
storage_state``), in one short read-only connection; a run belongs to the universe (meta
``data_version``) it was computed on, and plain ``runs list`` shows the current universe's
runs only (``--all`` shows every run with its data version).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import typer

from gensynth.errors import GensynthError

from gensynth.cli.options import WarehouseOpt  # noqa: E402 (the one --warehouse option)
LIST_TIMEOUT_S = 5.0  # `runs list` / `runs show` wait this long for a locked warehouse unless $GENSYNTH_LOCK_TIMEOUT says otherwise

runs_app = typer.Typer(help="List, inspect, sync, export and import runs (run directories and their warehouse rows).",
                       no_args_is_help=True, add_completion=False)


def _warehouse(path: Optional[Path]) -> Path:
    from gensynth.warehouse import default_warehouse_path

    return Path(path) if path is not None else default_warehouse_path()


@dataclass
class WarehouseView:
    """What `runs list` / `runs show` read from the warehouse (one short read-only connection)."""

    data_version: str | None = None
    stored: dict | None = None  # run_id -> StoredRun; None when the warehouse could not be read
    counted: dict = field(default_factory=dict)  # (run_id, view) -> {role: (pass@1, n, eval_id)}: what pass_at_k counts
    note: str = ""  # why it could not be read (locked)


def read_warehouse(path: Path, timeout: float | None = None) -> WarehouseView:
    """The warehouse's data version, stored runs and counted scores; a note instead while it stays locked.

    Waits ``timeout`` seconds (default ``$GENSYNTH_LOCK_TIMEOUT``, else ``LIST_TIMEOUT_S``).
    A missing file, or one that is not a warehouse this gensynth reads, is an error: there
    is nothing to list the run directories against.
    """
    from gensynth.results.ingest import current_data_version, stored_runs
    from gensynth.warehouse import WarehouseBusy, connect_retrying, lock_timeout

    timeout = lock_timeout(LIST_TIMEOUT_S) if timeout is None else timeout
    try:
        con = connect_retrying(path, read_only=True, timeout=timeout, purpose="to read which runs it holds")
    except WarehouseBusy as exc:
        return WarehouseView(note=f"{exc} So 'in db' was not checked.")
    try:
        return WarehouseView(current_data_version(con), stored_runs(con), counted_scores(con))
    finally:
        con.close()


def counted_scores(con) -> dict:
    """pass@1 per finished run, view and role as the analysis counts it (pass_at_k: one
    evaluation per run, view and role, by the rule of sql/analysis/analysed_predictions.sql)."""
    import duckdb

    from gensynth.warehouse import relation_exists

    if not relation_exists(con, "pass_at_k", kind="view"):
        return {}
    out: dict = {}
    try:
        rows = con.execute("SELECT run_id, view, role, pass_at_1, n, eval_id FROM pass_at_k").fetchall()
    except duckdb.Error:  # a view of an older layout: nothing counted to show
        return {}
    for run_id, view, role, p1, n, eval_id in rows:
        out.setdefault((run_id, view), {})[role] = (p1, n, eval_id)
    return out


class DamagedRun(Exception):
    """A run directory whose files cannot be read as a run's (the reason is the message)."""


def _read_json_file(path: Path, what: str):
    import json

    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DamagedRun(f"no {what}") from None
    except json.JSONDecodeError as exc:
        raise DamagedRun(f"{what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DamagedRun(f"{what} cannot be read ({exc})") from None


def run_config(run_dir: Path) -> dict:
    """A run directory's config.json; ``DamagedRun`` saying why when it is missing or malformed."""
    cfg = _read_json_file(run_dir / "config.json", "config.json")
    if not isinstance(cfg, dict):
        raise DamagedRun(f"config.json holds {type(cfg).__name__} {str(cfg)[:40]!r}, not a run's configuration")
    if "data" in cfg:  # a training run: the sections runs list and show read
        for section, keys in (("data", ("view",)), ("model", ("size",))):
            if not isinstance(cfg.get(section), dict):
                raise DamagedRun(f"config.json has no '{section}' section (it is {cfg.get(section)!r})")
            missing = [k for k in keys if k not in cfg[section]]
            if missing:
                raise DamagedRun(f"config.json's '{section}' section lacks {', '.join(missing)}")
    return cfg


def _run_state(run_dir: Path) -> dict:
    try:
        state = _read_json_file(run_dir / "state.json", "state.json")
    except DamagedRun:
        return {}
    return state if isinstance(state, dict) else {}


def _display_status(run_dir: Path, state: dict) -> str:
    from gensynth.learning.train import run_is_active

    status = state.get("status", "?")
    if status == "running" and not run_is_active(run_dir):
        return "stopped (killed? resume it)"
    return status


def _results_row(run_dir: Path) -> dict:
    """The `runs` row in a run directory's results folder ({} if it has none or it cannot be read)."""
    import duckdb

    path = run_dir / "results" / "runs.parquet"
    if not path.exists():
        return {}
    con = duckdb.connect()
    try:
        cur = con.execute("SELECT * FROM read_parquet(?)", [str(path)])
        names = [c[0] for c in cur.description]
        row = cur.fetchone()
        return dict(zip(names, row)) if row else {}
    except duckdb.Error:
        return {}
    finally:
        con.close()


def run_data_version(run_dir: Path) -> str | None:
    """The data version (universe) a run directory's run was computed on."""
    return _run_state(run_dir).get("data_version") or _results_row(run_dir).get("data_version")


def _in_db(run_dir: Path, wv: WarehouseView, foreign: bool = False) -> str:
    """Whether the warehouse holds this directory's results, as read from the warehouse."""
    from gensynth.results.ingest import is_pending, storage_state

    if wv.stored is None:  # the warehouse could not be read: say so, and what the directory's own marker says
        return "not checked (locked; " + ("never ingested" if is_pending(run_dir) else "marker: ingested") + ")"
    state = storage_state(run_dir, wv.stored)
    if foreign:  # another universe: ingestion refuses it here, so `runs sync` is no advice
        return {"stored": "yes (never analysed here)", "other version stored": "an older version (never analysed here)",
                "not stored": "no (directory only)", "no results": "no (directory only, no results)"}[state]
    return {"stored": "yes", "not stored": "no: run `gensynth runs sync`",
            "other version stored": "older version: run `gensynth runs sync`", "no results": "-"}[state]


def _scores_cell(run_id: str, view: str, scores: dict, wv: WarehouseView) -> tuple[str, str]:
    """(pass@1 by role, where from): the analysis's count when it has the run, else the run
    directory's latest evaluation of ``view``, labelled as such."""
    counted = wv.counted.get((run_id, view))
    if counted:
        return ", ".join(f"{r} {p1:.2f} (n={n:,})" for r, (p1, n, _) in _by_role(counted) if p1 is not None), "analysis"
    text = ", ".join(f"{r} {sc['pass@1']:.2f} (n={int(sc.get('n_programs') or 0):,})" for r, sc in _by_role(scores)
                     if isinstance(sc, dict) and sc.get("pass@1") is not None)
    return (text or "-"), ("dir: latest eval" if text else "-")


def _by_role(d: dict) -> list:
    rank = {"train": 0, "val": 1}
    return sorted(d.items(), key=lambda kv: (rank.get(kv[0], 2), kv[0]))


def _dir_row(d: Path, wv: WarehouseView, foreign: bool = False) -> tuple[list[str], str | None]:
    """(run, status, view, size, steps, pass@1 by role, from, in db), and why the directory is damaged (None if not)."""
    try:
        cfg = run_config(d)
        if "data" not in cfg:  # not a training run (e.g. `gensynth solve`): show its results row
            row = _results_row(d)
            return [d.name, row.get("status", "?"), row.get("view", "?"), f"{cfg.get('kind', '?')}: {row.get('size', '?')}",
                    "-", *_scores_cell(d.name, row.get("view", "?"), {}, wv), _in_db(d, wv, foreign)], None
        state = _run_state(d)
        view = cfg["data"]["view"]
        latest = d / "evals" / view / "scores.json"
        scores = _read_json_file(latest, f"evals/{view}/scores.json").get("scores", {}) if latest.exists() else {}
        model = cfg["model"]
        size = str(model["size"]) + ("*" if any(model.get(k) is not None for k in model if k != "size") else "")
        return [d.name, _display_status(d, state), view, size, str(state.get("steps", "-")),
                *_scores_cell(d.name, view, scores if isinstance(scores, dict) else {}, wv), _in_db(d, wv, foreign)], None
    except (DamagedRun, KeyError, TypeError, AttributeError, ValueError) as exc:
        why = str(exc) if isinstance(exc, DamagedRun) else f"its files do not read as a run's ({type(exc).__name__}: {exc})"
        row = _results_row(d)
        return [d.name, "damaged (see below)", row.get("view") or "?", row.get("size") or "?", "-", "-", "-",
                _in_db(d, wv, foreign)], why


LIST_COLUMNS = ("run", "status", "view", "size", "steps", "pass@1 by role", "from", "in db")


@runs_app.command("list")
def runs_list(
    all_runs: bool = typer.Option(False, "--all", help="Also runs of other universes (other data versions), with their data version."),
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """The runs of the current universe: run directories, and warehouse rows without one.

    pass@1 is what the analysis counts (pass_at_k: the most complete evaluation per role)
    when the warehouse holds the run ('from' says 'analysis'); otherwise the run
    directory's latest evaluation ('dir: latest eval'). A run directory that cannot be
    read is listed as damaged, with the reason."""
    from rich.table import Table

    from gensynth.progress import out_console as console  # a listing: stdout, whole rows in a pipe
    from gensynth.results.rundirs import every_run_dir, runs_root

    path = _warehouse(warehouse)
    wv = read_warehouse(path)
    known = wv.data_version is not None
    entries, damaged = [], []  # ([row], data version, foreign)
    dirs = every_run_dir(path)
    for d in dirs:
        version = run_data_version(d)
        foreign = known and version is not None and version != wv.data_version
        row, why = _dir_row(d, wv, foreign)
        entries.append((row, version, foreign))
        if why:
            damaged.append((d, why))
    have = {d.name for d in dirs}
    for s in (wv.stored or {}).values():  # stored (e.g. carried over by a rebuild) but without a directory here
        if s.run_id not in have:
            foreign = known and s.data_version != wv.data_version
            cell = _scores_cell(s.run_id, s.view or "?", {}, wv)
            entries.append(([s.run_id, s.status, s.view or "?", s.size or "?", "-", *cell,
                             "yes (no run directory)" + (" (never analysed here)" if foreign else "")],
                            s.data_version, foreign))
    if not entries:
        console.print(f"No runs under {runs_root(path)}. Start one with `gensynth train --view split_NAME`.")
        return
    mine = [row for row, _, foreign in entries if not foreign]
    others = [(row, v) for row, v, foreign in entries if foreign]
    if mine or not others:
        table = Table(title=f"runs of {path}" + ("" if not known else f" (universe {wv.data_version[:12]})"))
        for col in LIST_COLUMNS:
            table.add_column(col, no_wrap=col in ("run", "status", "view"))
        for row in mine:
            table.add_row(*row)
        console.print(table)
    else:
        console.print(f"No runs of the current universe ({wv.data_version[:12]}) in {path}.")
    if others and all_runs:
        other_table = Table(title="runs of ANOTHER universe (other data version): never analysed here")
        for col in ("run", "status", "view", "size", "data version", "in db"):
            other_table.add_column(col, no_wrap=True)
        for row, v in others:
            other_table.add_row(*row[:4], str(v)[:12] if v else "?", row[-1])
        console.print(other_table)
    elif others:
        console.print(f"{len(others)} run(s) of another universe (another data version) not shown: never analysed "
                      f"here; `gensynth runs list --all` lists them.")
    for d, why in damaged:
        console.print(f"[yellow]damaged run directory[/yellow] {d}: {why}. `gensynth runs sync` skips it; restore the "
                      f"file, or move the directory out of {d.parent} if it is not a run.")
    if wv.note:
        raise GensynthError(f"{wv.note} The table above lists the run directories only; rerun `gensynth runs list` "
                            f"when the warehouse is free.")


def run_dir_named(warehouse: Path, run_id: str) -> Path:
    """The directory of run ``run_id`` (damaged or not); refuses an unknown id with close matches."""
    import difflib

    from gensynth.results.rundirs import every_run_dir, runs_root

    d = runs_root(warehouse) / run_id
    if d.is_dir() and "/" not in run_id and run_id not in (".", ".."):
        return d
    close = difflib.get_close_matches(run_id, [p.name for p in every_run_dir(warehouse)], n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise GensynthError(f"No run '{run_id}' under '{runs_root(warehouse)}'.{hint} List runs with `gensynth runs list`.")


@runs_app.command("show")
def runs_show(run: str = typer.Argument(..., help="RUN_ID"), warehouse: Optional[Path] = WarehouseOpt) -> None:
    """One run: configuration, state, every evaluation per view and role (the one the analysis counts marked), files."""
    from gensynth.progress import out_console as console, summary_table

    path = _warehouse(warehouse)
    d = run_dir_named(path, run)
    wv = read_warehouse(path)
    universe = run_data_version(d)
    foreign = bool(wv.data_version and universe and universe != wv.data_version)
    where = [("data version", f"{universe}" + (" (ANOTHER universe: not analysed here)" if foreign else ""))]
    try:
        cfg = run_config(d)
    except DamagedRun as exc:
        rows = [("status", f"damaged: {exc}")] + [(k, "-" if v is None else str(v)) for k, v in _results_row(d).items()
                                                   if k != "config"]
        rows.append(("warehouse", _in_db(d, wv, foreign)))
        console.print(summary_table(f"run {d.name} (damaged directory)", rows + where + [("directory", str(d))]))
        return _show_note(console, wv)
    if "data" not in cfg:  # not a training run: its results row says what there is to say
        rows = [(k, "-" if v is None else str(v)) for k, v in _results_row(d).items() if k != "config"]
        rows.append(("warehouse", _in_db(d, wv, foreign)))
        console.print(summary_table(f"run {d.name} ({cfg.get('kind', '?')})", rows + where + [("directory", str(d))]))
        return _show_note(console, wv)
    rows = _training_rows(d, cfg, _run_state(d)) + _evaluation_rows(d, wv)
    in_db = _in_db(d, wv, foreign)
    marker = _ingested_marker(d)
    rows.append(("warehouse", in_db + (f" (ingested {marker['ingested_at']})" if in_db == "yes" and marker else "")))
    console.print(summary_table(f"run {d.name}", rows + where + [("directory", str(d))]))
    _show_note(console, wv)


def _show_note(console, wv: WarehouseView) -> None:
    if wv.note:
        console.print(f"Note: {wv.note}")


def _ingested_marker(d: Path):
    from gensynth.results.ingest import ingested_marker

    marker = ingested_marker(d)
    return marker if isinstance(marker, dict) and "ingested_at" in marker else None


def _training_rows(d: Path, cfg: dict, state: dict) -> list[tuple[str, object]]:
    """The configuration and state of a training run, as `runs show` prints them."""
    g = lambda section, key: (cfg.get(section) or {}).get(key, "?")  # noqa: E731
    m = (cfg.get("resolved") or {}).get("model") or {}
    attempts = state.get("attempts") or []
    killed = sum(isinstance(a, dict) and a.get("ended") == "killed" for a in attempts)
    return [
        ("status", _display_status(d, state)),
        ("error", state.get("error") or "-"),
        ("view", cfg["data"]["view"]),
        ("roles", ", ".join(f"{r} {n:,}" for r, n in (state.get("role_sizes") or {}).items())),
        ("model", f"{cfg['model']['size']}: d_model {m.get('d_model', '?')}, heads {m.get('n_heads', '?')}, "
                  f"enc {m.get('n_enc_layers', '?')}, dec {m.get('n_dec_layers', '?')}, d_ff {m.get('d_ff', '?')}"),
        ("steps", f"{state.get('steps', '-')} of {g('training', 'max_steps')}"),
        ("batch size / lr / seed", f"{g('data', 'batch_size')} / {g('training', 'lr')} / {g('data', 'seed')}"),
        ("device", f"{g('training', 'accelerator')} x{g('training', 'devices')} ({g('training', 'precision')})"),
        ("attempts", f"{len(attempts)}" + (f" ({killed} killed, counted to their last write)" if killed else "")),
        ("wall time (s)", float(state.get("wall_time_s", 0.0))),
        ("checkpoint evaluated", state.get("checkpoint") or "-"),
        ("started / finished", f"{state.get('started_at', '-')} / {state.get('finished_at') or '-'}"),
    ]


def _evaluation_rows(d: Path, wv: WarehouseView) -> list[tuple[str, object]]:
    """One row per evaluation of the run directory, view and role, oldest first; the one the
    analysis counts (pass_at_k.eval_id) is marked 'counted by the analysis'."""
    from gensynth.results.evaluations import evaluation_dirs

    rows = []
    for e in evaluation_dirs(d):
        try:
            s = _read_json_file(e / "scores.json", f"{e.relative_to(d)}/scores.json")
        except DamagedRun as exc:
            rows.append((str(e.relative_to(d)), f"damaged: {exc}"))
            continue
        view = s.get("view") or e.name
        counted = wv.counted.get((d.name, view), {})
        for role, sc in _by_role(s.get("scores") or {}):
            if not isinstance(sc, dict):
                continue
            mark = ", counted by the analysis" if counted.get(role, (None, None, None))[2] == s.get("eval_id") else ""
            vals = ", ".join(f"{k} {v:.3f}" for k, v in sc.items()
                             if isinstance(v, (int, float)) and not k.startswith("n_"))
            rows.append((f"{view} / {role} (n={int(sc.get('n_programs') or 0):,}, eval {s.get('eval_id', '?')}{mark})", vals))
    return rows


@runs_app.command("sync")
def runs_sync(
    all_runs: bool = typer.Option(False, "--all", help="Re-ingest every run directory, not only those the warehouse lacks."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds to wait for a locked warehouse [default: $GENSYNTH_LOCK_TIMEOUT, else 60]."),
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """Ingest the run directories whose results the warehouse does not hold (checked in the warehouse itself)."""
    from rich.table import Table

    from gensynth.progress import console
    from gensynth.results.ingest import results_manifest, run_dirs, runs_root, sync

    path = _warehouse(warehouse)
    outcomes = sync(path, timeout=timeout, everything=all_runs)  # a missing warehouse is an error
    if outcomes and all(o.state in ("pending", "unchecked") for o in outcomes):  # it stayed locked: nothing checked
        never = sum(o.state == "pending" for o in outcomes)
        raise GensynthError(
            f"{outcomes[0].message} Nothing was checked or ingested: {len(outcomes)} run directory(ies) with results "
            f"were not checked against the warehouse ({never} of them never ingested, by their own markers). "
            f"Rerun `gensynth runs sync` when the warehouse is free."
        )
    foreign = [o for o in outcomes if o.state == "refused"]
    shown = [o for o in outcomes if o.state != "refused"]
    if shown:
        table = Table(title="gensynth runs sync")
        for col in ("run", "result", "detail"):
            table.add_column(col)
        for o in shown:
            table.add_row(o.run_id, o.state, o.message)
        console.print(table)
    elif foreign:
        console.print("Every run of this universe is in the warehouse: nothing of it to ingest.")
    elif not any(results_manifest(d) is not None for d in run_dirs(path)):
        console.print(f"No run directory with results under {runs_root(path)}: nothing to ingest.")
    else:
        console.print("Nothing pending: every run's results are in the warehouse.")
    if foreign:
        console.print(f"{len(foreign)} run directory(ies) of another universe (another data version) left where they "
                      f"are, not ingested ({', '.join(o.run_id for o in foreign)}); see `gensynth runs list --all`.")
    if any(o.state == "failed" for o in outcomes):
        raise GensynthError("Some run directories could not be ingested (named above); the others were. Fix or move "
                            "those directories and rerun `gensynth runs sync`.")
    if any(o.state == "pending" for o in outcomes):
        raise GensynthError("Some results are still pending: the warehouse stayed locked. Close other programs using it and rerun `gensynth runs sync`.")


@runs_app.command("export")
def runs_export(
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write (new, empty, or an earlier export with --replace)."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite an earlier export in --out."),
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """Write the current universe's runs, metrics, evaluations, predictions and analysis views as Parquet (+ README)."""
    from gensynth.analysis.views import install_analysis_views
    from gensynth.progress import console, summary_table
    from gensynth.results.exchange import export_results
    from gensynth.warehouse import connect_retrying

    path = _warehouse(warehouse)
    con = connect_retrying(path, read_only=False)  # one short write: the analysis views, up to date
    try:
        install_analysis_views(con)
    finally:
        con.close()
    con = connect_retrying(path, read_only=True)
    try:
        s = export_results(con, out, replace=replace)
    finally:
        con.close()
    rows = [("directory", str(s.directory)), ("universe (data version)", s.data_version), ("runs", len(s.runs))]
    rows += [(f"{name}.parquet", n) for name, n in s.rows.items()]
    if s.other_universe_runs:
        rows.append(("left out: runs of other universes", s.other_universe_runs))
    console.print(summary_table("gensynth runs export", rows))


@runs_app.command("import")
def runs_import(
    directory: Path = typer.Argument(..., help="A directory written by `gensynth runs export --out DIR`."),
    replace: bool = typer.Option(False, "--replace", help="Replace the rows of runs this warehouse already holds."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds to wait for a locked warehouse [default: $GENSYNTH_LOCK_TIMEOUT, else 60]."),
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """Bring an export's runs into this warehouse (same universe only; one transaction; never overwrites without --replace)."""
    from gensynth.progress import console, summary_table
    from gensynth.results.exchange import import_results, read_manifest
    from gensynth.warehouse import connect_retrying

    read_manifest(directory)  # a directory that is not an export fails before the warehouse is opened
    path = _warehouse(warehouse)
    con = connect_retrying(path, read_only=False, timeout=timeout)
    try:
        s = import_results(con, directory, replace=replace)
    finally:
        con.close()
    rows = [("from", str(s.directory)), ("into", str(path)), ("runs", len(s.runs))]
    rows += [(t, n) for t, n in s.rows.items()]
    if s.replaced:
        rows.append(("runs replaced (--replace)", len(s.replaced)))
    console.print(summary_table("gensynth runs import", rows))
    console.print("The analysis views count the imported runs now; `gensynth report` computes their proximity.")
