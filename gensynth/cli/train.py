"""CLI commands for training and results: ``gensynth train``, ``gensynth eval``, ``gensynth runs``.

Registered in gensynth/cli.py. Only typer and the standard library load at import time;
torch and Lightning load inside the command bodies, so ``gensynth --help`` stays instant.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Optional

import typer

from gensynth.errors import GensynthError

WAREHOUSE_HELP = "Warehouse file (default: $GENSYNTH_WAREHOUSE, else warehouse/gensynth.duckdb)."
WarehouseOpt = typer.Option(None, "--warehouse", "-w", help=WAREHOUSE_HELP)
def _warehouse(path: Optional[Path]) -> Path:
    from gensynth.warehouse import default_warehouse_path

    return Path(path) if path is not None else default_warehouse_path()


def _int_list(text: Optional[str], flag: str) -> Optional[tuple[int, ...]]:
    if text is None:
        return None
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise GensynthError(f"{flag} takes comma-separated whole numbers, e.g. {flag} 1,5,10; got '{text}'.") from None


def _str_list(text: Optional[str]) -> Optional[tuple[str, ...]]:
    return None if text is None else tuple(x.strip() for x in text.split(",") if x.strip())


def train_cmd(**options) -> None:
    """Train a model on a split's train role, evaluate it on every role, store the results."""
    # The configuration flags come from the run configuration's dataclasses: _train_signature.
    resume, quiet, warehouse = options.pop("resume"), options.pop("quiet"), options.pop("warehouse")
    given = [o.flag for o in _options() if options.get(o.name) is not None]
    path = _warehouse(warehouse)
    from gensynth.learning import train as stage  # torch loads here, not at --help

    if resume is not None:
        if given:
            raise GensynthError(f"--resume continues a run with its recorded configuration; drop {', '.join(given)}.")
        summary = stage.resume(path, resume, quiet=quiet)
    else:
        from gensynth.learning.options import run_config

        summary = stage.train(path, run_config(options), quiet=quiet)
    if summary.status != "ddp-worker":
        _print_summary("gensynth train", summary)


def _options():
    from gensynth.learning.options import train_options

    return train_options()


def _train_signature() -> inspect.Signature:
    """train_cmd's parameters: one typer option per configuration field, then --resume, --quiet, --warehouse.

    Every option defaults to None ("not given"), so --resume can refuse given options and
    computed defaults (k with --samples) apply; the help shows the field's real default.
    """
    params = [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                annotation=Annotated[Optional[o.type], typer.Option(o.flag, help=o.help)])
              for o in _options()]
    params += [
        inspect.Parameter("resume", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
            Optional[str], typer.Option("--resume", help="Continue an unfinished run (RUN_ID) from its last "
                                        "checkpoint; takes no other run options.")]),
        inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
            bool, typer.Option("--quiet", "-q", help="No progress bar.")]),
        inspect.Parameter("warehouse", inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation=Annotated[Optional[Path], typer.Option("--warehouse", "-w", help=WAREHOUSE_HELP)]),
    ]
    return inspect.Signature(params)


train_cmd.__signature__ = _train_signature()


def _eval_settings(a: dict, base):
    """Evaluation settings from eval's options (config names), over ``base`` (the run's, or the defaults)."""
    from gensynth.learning.config import EvalSettings
    from gensynth.learning.options import eval_settings

    return eval_settings({k: v for k, v in a.items() if k in ("eval_roles", "samples", "k", "temperature", "eval_limit")},
                         base if base is not None else EvalSettings())


def eval_cmd(
    run: str = typer.Option(..., "--run", help="The run to evaluate (a RUN_ID from `gensynth runs list`)."),
    view: Optional[str] = typer.Option(None, "--view", help="Split view whose roles to evaluate (default: the run's own)."),
    k: Optional[str] = typer.Option(None, "--k", help="Comma-separated k for sampled pass@k (needs --samples)."),
    samples: Optional[int] = typer.Option(None, "--samples", help="Sampled programs per task (default: as in training)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Sampling temperature."),
    eval_roles: Optional[str] = typer.Option(None, "--eval-roles", help="Comma-separated roles (default: all roles of the view)."),
    eval_limit: Optional[int] = typer.Option(None, "--eval-limit", help="At most this many programs per role."),
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """Evaluate a finished run on any split's roles (replaces that view's earlier predictions of the run)."""
    path = _warehouse(warehouse)
    from dataclasses import replace

    from gensynth.learning import train as stage

    run_dir = stage.run_dir_for(path, run)
    raw = stage._read_json(run_dir / "config.json")
    if "data" not in raw:
        raise GensynthError(f"Run {run} is not a training run; `gensynth eval` evaluates trained models.")
    config = stage.RunConfig.from_json(raw)
    base = config.eval
    if view is not None and view not in (config.data.view, config.data.view.removeprefix("split_")):
        base = replace(base, roles=None)
    if samples is not None and k is None:
        base = replace(base, k=(1,))
    settings = _eval_settings({"eval_roles": eval_roles, "samples": samples, "k": k, "temperature": temperature,
                               "eval_limit": eval_limit}, base)
    summary = stage.evaluate(path, run, view=view, settings=settings)
    _print_summary("gensynth eval", summary)


def _print_summary(title: str, s) -> None:
    from gensynth.progress import console, summary_table

    rows: list[tuple[str, object]] = [("run", s.run_id), ("view", s.view), ("status", s.status)]
    if title.endswith("train"):
        rows += [("model", f"{s.arch} {s.size} ({s.n_params:,} params)".strip()), ("steps", s.steps),
                 ("wall time (s)", s.wall_time_s)]
    rows.append(("checkpoint evaluated", s.checkpoint))
    for role, sc in s.scores.items():
        p = sc.get("pass@1")
        extra = ", ".join(f"{k} {v:.3f}" for k, v in sc.items() if k.startswith("sample_pass@") and v is not None)
        rows.append((f"pass@1 {role}", ("-" if p is None else f"{p:.3f}") + f"  (n={int(sc['n_programs']):,}" + (f"; {extra})" if extra else ")")))
    rows.append(("results", {"ingested": "in the warehouse",
                             "pending": "PENDING: warehouse locked; run `gensynth runs sync` later",
                             "refused": "NOT ingested: " + s.ingest_message}.get(s.ingest, s.ingest)))
    rows.append(("run directory", str(s.run_dir)))
    console.print(summary_table(title, rows))


# ---------------------------------------------------------------------- runs app

runs_app = typer.Typer(help="List, inspect and sync training runs (run directories and their warehouse rows).",
                       no_args_is_help=True, add_completion=False)


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


@runs_app.command("list")
def runs_list(warehouse: Optional[Path] = WarehouseOpt) -> None:
    """Every run of the warehouse, from its run directory (works while the warehouse is locked)."""
    import json

    from rich.table import Table

    from gensynth.progress import console
    from gensynth.results.ingest import is_pending, run_dirs, runs_root

    path = _warehouse(warehouse)
    dirs = run_dirs(path)
    if not dirs:
        console.print(f"No runs under {runs_root(path)}. Start one with `gensynth train --view split_NAME`.")
        return
    table = Table(title=f"runs of {path}")
    for col in ("run", "status", "view", "size", "steps", "pass@1 by role", "in db"):
        table.add_column(col, no_wrap=col in ("run", "status", "view"))
    for d in dirs:
        cfg = json.loads((d / "config.json").read_text())
        if "data" not in cfg:  # not a training run (e.g. `gensynth solve`): show its results row
            row = _results_row(d)
            table.add_row(d.name, row.get("status", "?"), row.get("view", "?"), f"{cfg.get('kind', '?')}: {row.get('size', '?')}",
                          "-", "-", "pending" if is_pending(d) else "yes")
            continue
        state = _run_state(d)
        scores_file = d / "evals" / cfg["data"]["view"] / "scores.json"
        scores = json.loads(scores_file.read_text())["scores"] if scores_file.exists() else {}
        p1 = ", ".join(f"{r} {sc['pass@1']:.2f}" for r, sc in scores.items() if sc.get("pass@1") is not None)
        size = cfg["model"]["size"] + ("*" if any(cfg["model"].get(k) is not None for k in cfg["model"] if k != "size") else "")
        table.add_row(d.name, _display_status(d, state), cfg["data"]["view"], size, str(state.get("steps", "-")),
                      p1 or "-", "pending" if is_pending(d) else "yes")
    console.print(table)


@runs_app.command("show")
def runs_show(run: str = typer.Argument(..., help="RUN_ID"), warehouse: Optional[Path] = WarehouseOpt) -> None:
    """One run: configuration, state, scores per view and role, files."""
    import json

    from gensynth.progress import console, summary_table
    from gensynth.results.ingest import ingested_marker, is_pending
    from gensynth.learning.train import run_dir_for

    d = run_dir_for(_warehouse(warehouse), run)
    state = _run_state(d)
    cfg = json.loads((d / "config.json").read_text())
    if "data" not in cfg:  # not a training run: its results row says what there is to say
        row = _results_row(d)
        rows = [(k, "-" if v is None else str(v)) for k, v in row.items() if k != "config"]
        rows.append(("warehouse", "pending (run `gensynth runs sync`)" if is_pending(d) else "ingested"))
        console.print(summary_table(f"run {d.name} ({cfg.get('kind', '?')})", rows + [("directory", str(d))]))
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
        ("attempts", len(state.get("attempts", []))),
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
    rows.append(("warehouse", "pending (run `gensynth runs sync`)" if is_pending(d) else f"ingested {marker['ingested_at'] if marker else ''}"))
    rows.append(("directory", str(d)))
    console.print(summary_table(f"run {d.name}", rows))


@runs_app.command("sync")
def runs_sync(
    all_runs: bool = typer.Option(False, "--all", help="Re-ingest every run directory, not only pending ones (e.g. after a rebuild)."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for a locked warehouse."),
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """Ingest run results still pending in run directories (the warehouse was locked when they finished)."""
    from rich.table import Table

    from gensynth.progress import console
    from gensynth.results.ingest import sync

    path = _warehouse(warehouse)
    outcomes = sync(path, timeout=timeout, everything=all_runs)
    if not outcomes:
        console.print("Nothing pending: every run's results are in the warehouse.")
        return
    table = Table(title="gensynth runs sync")
    for col in ("run", "result", "detail"):
        table.add_column(col)
    for o in outcomes:
        table.add_row(o.run_id, o.state, o.message)
    console.print(table)
    if any(o.state == "pending" for o in outcomes):
        raise GensynthError("Some results are still pending: the warehouse stayed locked. Close other programs using it and rerun `gensynth runs sync`.")
