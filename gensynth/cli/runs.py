"""CLI commands for run directories and their warehouse rows: ``gensynth runs list|show|sync|export|import``.

Registered in gensynth/cli/main.py (through gensynth.cli.train). Only typer and the
standard library load at import time.

Whether a run is stored is read from the warehouse itself (``gensynth.results.ingest.
storage_state``), in one short read-only connection; a run belongs to the universe (meta
``data_version``) it was computed on, and plain ``runs list`` shows the current universe's
runs only (``--all`` shows every run with its data version).
"""

from __future__ import annotations

from dataclasses import dataclass
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
    note: str = ""  # why it could not be read (locked)


def read_warehouse(path: Path, timeout: float | None = None) -> WarehouseView:
    """The warehouse's data version and stored runs; a note instead while it stays locked.

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
        return WarehouseView(current_data_version(con), stored_runs(con))
    finally:
        con.close()


def _run_state(run_dir: Path) -> dict:
    import json

    try:
        return json.loads((run_dir / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _display_status(run_dir: Path, state: dict) -> str:
    from gensynth.learning.train import run_is_active

    status = state.get("status", "?")
    if status == "running" and not run_is_active(run_dir):
        return "stopped (killed? resume it)"
    return status


def _results_row(run_dir: Path) -> dict:
    """The `runs` row in a run directory's results folder ({} if it has none)."""
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
    finally:
        con.close()


def run_data_version(run_dir: Path) -> str | None:
    """The data version (universe) a run directory's run was computed on."""
    return _run_state(run_dir).get("data_version") or _results_row(run_dir).get("data_version")


def _in_db(run_dir: Path, wv: WarehouseView) -> str:
    from gensynth.results.ingest import is_pending, storage_state

    if wv.stored is None:  # the warehouse could not be read: say so, and what the directory's own marker says
        return "not checked (locked; " + ("never ingested" if is_pending(run_dir) else "marker: ingested") + ")"
    state = storage_state(run_dir, wv.stored)
    return {"stored": "yes", "not stored": "no: run `gensynth runs sync`",
            "other version stored": "older version: run `gensynth runs sync`", "no results": "-"}[state]


def _dir_row(d: Path, wv: WarehouseView) -> list[str]:
    """run, status, view, size, steps, pass@1 by role, in db — from the run directory."""
    import json

    cfg = json.loads((d / "config.json").read_text())
    if "data" not in cfg:  # not a training run (e.g. `gensynth solve`): show its results row
        row = _results_row(d)
        return [d.name, row.get("status", "?"), row.get("view", "?"), f"{cfg.get('kind', '?')}: {row.get('size', '?')}",
                "-", "-", _in_db(d, wv)]
    state = _run_state(d)
    scores_file = d / "evals" / cfg["data"]["view"] / "scores.json"
    scores = json.loads(scores_file.read_text())["scores"] if scores_file.exists() else {}
    p1 = ", ".join(f"{r} {sc['pass@1']:.2f}" for r, sc in scores.items() if sc.get("pass@1") is not None)
    size = cfg["model"]["size"] + ("*" if any(cfg["model"].get(k) is not None for k in cfg["model"] if k != "size") else "")
    return [d.name, _display_status(d, state), cfg["data"]["view"], size, str(state.get("steps", "-")), p1 or "-",
            _in_db(d, wv)]


@runs_app.command("list")
def runs_list(
    all_runs: bool = typer.Option(False, "--all", help="Also runs of other universes (other data versions), with their data version."),
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """The runs of the current universe: run directories, and warehouse rows without one."""
    from rich.table import Table

    from gensynth.progress import out_console as console  # a listing: stdout, whole rows in a pipe
    from gensynth.results.ingest import run_dirs, runs_root

    path = _warehouse(warehouse)
    wv = read_warehouse(path)
    dirs = run_dirs(path)
    entries = [(_dir_row(d, wv), run_data_version(d)) for d in dirs]
    have = {d.name for d in dirs}
    for s in (wv.stored or {}).values():  # stored (e.g. carried over by a rebuild) but without a directory here
        if s.run_id not in have:
            entries.append(([s.run_id, s.status, s.view or "?", s.size or "?", "-", "-", "yes (no run directory)"],
                            s.data_version))
    if not entries:
        console.print(f"No runs under {runs_root(path)}. Start one with `gensynth train --view split_NAME`.")
        return
    known = wv.data_version is not None

    def other(version):
        return known and version != wv.data_version

    mine = [row for row, v in entries if not other(v)]
    foreign = [(row, v) for row, v in entries if other(v)]
    table = Table(title=f"runs of {path}" + ("" if not known else f" (universe {wv.data_version[:12]})"))
    for col in ("run", "status", "view", "size", "steps", "pass@1 by role", "in db"):
        table.add_column(col, no_wrap=col in ("run", "status", "view"))
    for row in mine:
        table.add_row(*row)
    console.print(table)
    if foreign and all_runs:
        other_table = Table(title="runs of ANOTHER universe (other data version): kept, never analysed here")
        for col in ("run", "status", "view", "size", "data version"):
            other_table.add_column(col, no_wrap=True)
        for row, v in foreign:
            other_table.add_row(*row[:4], str(v)[:12] if v else "?")
        console.print(other_table)
    elif foreign:
        console.print(f"{len(foreign)} run(s) of another universe (another data version) not shown: they are kept but "
                      f"never analysed here; `gensynth runs list --all` lists them.")
    if wv.note:
        raise GensynthError(f"{wv.note} The table above lists the run directories only; rerun `gensynth runs list` "
                            f"when the warehouse is free.")


@runs_app.command("show")
def runs_show(run: str = typer.Argument(..., help="RUN_ID"), warehouse: Optional[Path] = WarehouseOpt) -> None:
    """One run: configuration, state, scores per view and role, files."""
    import json

    from gensynth.learning.train import run_dir_for
    from gensynth.progress import out_console as console, summary_table
    from gensynth.results.ingest import ingested_marker

    path = _warehouse(warehouse)
    d = run_dir_for(path, run)
    wv = read_warehouse(path)
    universe = run_data_version(d)
    where = [("data version", f"{universe}" + (" (ANOTHER universe: not analysed here)"
                                               if wv.data_version and universe != wv.data_version else ""))]
    state = _run_state(d)
    cfg = json.loads((d / "config.json").read_text())
    if "data" not in cfg:  # not a training run: its results row says what there is to say
        row = _results_row(d)
        rows = [(k, "-" if v is None else str(v)) for k, v in row.items() if k != "config"]
        rows.append(("warehouse", _in_db(d, wv)))
        console.print(summary_table(f"run {d.name} ({cfg.get('kind', '?')})", rows + where + [("directory", str(d))]))
        return
    m = cfg["resolved"]["model"]
    rows: list[tuple[str, object]] = [
        ("status", _display_status(d, state)),
        ("error", state.get("error") or "-"),
        ("view", cfg["data"]["view"]),
        ("roles", ", ".join(f"{r} {n:,}" for r, n in state.get("role_sizes", {}).items())),
        ("model", f"{cfg['model']['size']}: d_model {m['d_model']}, heads {m['n_heads']}, enc {m['n_enc_layers']}, dec {m['n_dec_layers']}, d_ff {m['d_ff']}"),
        ("steps", f"{state.get('steps', '-')} of {cfg['training']['max_steps']}"),
        ("batch size / lr / seed", f"{cfg['data']['batch_size']} / {cfg['training']['lr']} / {cfg['data']['seed']}"),
        ("device", f"{cfg['training']['accelerator']} x{cfg['training']['devices']} ({cfg['training']['precision']})"),
        ("attempts", f"{len(state.get('attempts', []))}"
                     + (f" ({killed} killed, counted to their last write)" if (killed := sum(
                         a.get("ended") == "killed" for a in state.get("attempts", []))) else "")),
        ("wall time (s)", float(state.get("wall_time_s", 0.0))),
        ("checkpoint evaluated", state.get("checkpoint") or "-"),
        ("started / finished", f"{state.get('started_at', '-')} / {state.get('finished_at') or '-'}"),
    ]
    for f in sorted((d / "evals").glob("*/scores.json")):
        s = json.loads(f.read_text())
        for role, sc in s["scores"].items():
            vals = ", ".join(f"{k} {v:.3f}" for k, v in sc.items() if v is not None and not k.startswith("n_"))
            rows.append((f"{s['view']} / {role} (n={int(sc['n_programs']):,})", vals))
    marker = ingested_marker(d)
    in_db = _in_db(d, wv)
    rows.append(("warehouse", in_db + (f" (ingested {marker['ingested_at']})" if in_db == "yes" and marker else "")))
    rows += where + [("directory", str(d))]
    console.print(summary_table(f"run {d.name}", rows))
    if wv.note:
        console.print(f"Note: {wv.note}")


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
