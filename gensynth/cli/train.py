"""CLI commands for training and results: ``gensynth train``, ``gensynth eval``, ``gensynth runs``.

Registered in gensynth/cli.py. Only typer and the standard library load at import time;
torch and Lightning load inside the command bodies, so ``gensynth --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gensynth.errors import GensynthError

WarehouseOpt = typer.Option(
    None, "--warehouse", "-w", help="Warehouse file (default: $GENSYNTH_WAREHOUSE, else warehouse/gensynth.duckdb)."
)
_CONFIG_FLAGS = ("view", "size", "d_model", "n_heads", "n_enc_layers", "n_dec_layers", "d_ff", "dropout", "max_steps",
                 "batch_size", "lr", "weight_decay", "warmup_steps", "label_smoothing", "seed", "accelerator", "devices",
                 "precision", "n_examples", "num_workers", "val_every", "checkpoint_every", "select", "eval_roles",
                 "samples", "k", "temperature", "eval_limit", "grad_clip", "threads")


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


def train_cmd(
    view: Optional[str] = typer.Option(None, "--view", help="Split view to train on (split_NAME); its 'train' role is the training set."),
    size: Optional[str] = typer.Option(None, "--size", help="Model size: nano, micro (default), tiny, small, medium, large."),
    d_model: Optional[int] = typer.Option(None, "--d-model", help="Override the size's width."),
    n_heads: Optional[int] = typer.Option(None, "--n-heads", help="Override the attention heads."),
    n_enc_layers: Optional[int] = typer.Option(None, "--n-enc-layers", help="Override the encoder depth."),
    n_dec_layers: Optional[int] = typer.Option(None, "--n-dec-layers", help="Override the decoder depth."),
    d_ff: Optional[int] = typer.Option(None, "--d-ff", help="Override the MLP width."),
    dropout: Optional[float] = typer.Option(None, "--dropout", help="Override the dropout."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps (default: 2000)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Global batch size over all devices (default: 256)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (default: 1e-3)."),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", help="AdamW weight decay (default: 0.01)."),
    warmup_steps: Optional[int] = typer.Option(None, "--warmup-steps", help="Warmup steps (default: 5% of max steps, <= 200)."),
    label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing", help="Label smoothing (default: 0)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of init, shuffling and shown points (default: 0)."),
    accelerator: Optional[str] = typer.Option(None, "--accelerator", help="cpu (default) or gpu."),
    devices: Optional[int] = typer.Option(None, "--devices", help="Devices; > 1 trains with DDP (default: 1)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="Lightning precision: 32-true (default), bf16-mixed, 16-mixed (gpu), ..."),
    n_examples: Optional[int] = typer.Option(None, "--n-examples", help="Grid points shown per task (random, fixed per task and seed) (default: all)."),
    num_workers: Optional[int] = typer.Option(None, "--num-workers", help="DataLoader workers per device (default: 0)."),
    val_every: Optional[int] = typer.Option(None, "--val-every", help="Steps between validations (default: max steps / 10)."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", help="Steps between resumable checkpoints (default: max steps / 10)."),
    select: Optional[str] = typer.Option(None, "--select", help="Checkpoint to evaluate: best (lowest val/loss; default) or last."),
    grad_clip: Optional[float] = typer.Option(None, "--grad-clip", help="Clip the gradient norm to this; 0 disables (default: 1.0)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads per training process (default: the cores available to it / --devices)."),
    eval_roles: Optional[str] = typer.Option(None, "--eval-roles", help="Comma-separated roles to evaluate (default: all roles)."),
    samples: Optional[int] = typer.Option(None, "--samples", help="Sampled programs per task for pass@k (default: 0, greedy only)."),
    k: Optional[str] = typer.Option(None, "--k", help="Comma-separated k for sampled pass@k, each <= --samples (default: 1)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Sampling temperature (default: 1.0)."),
    eval_limit: Optional[int] = typer.Option(None, "--eval-limit", help="Evaluate at most this many programs per role (seeded subset)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue an unfinished run (RUN_ID) from its last checkpoint; takes no other run options."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """Train a transformer on a split's train role, evaluate it on every role, store the results."""
    args = locals()
    given = [f"--{f.replace('_', '-')}" for f in _CONFIG_FLAGS if args[f] is not None]
    path = _warehouse(warehouse)
    from gensynth.learning import train as stage  # torch loads here, not at --help

    if resume is not None:
        if given:
            raise GensynthError(f"--resume continues a run with its recorded configuration; drop {', '.join(given)}.")
        summary = stage.resume(path, resume, quiet=quiet)
    else:
        if view is None:
            raise GensynthError("Missing --view: name the split to train on, e.g. --view split_random (or --resume RUN_ID).")
        config = _run_config(args)
        summary = stage.train(path, config, quiet=quiet)
    if summary.status != "ddp-worker":
        _print_summary("gensynth train", summary)


def _run_config(a: dict):
    from dataclasses import fields

    from gensynth.learning.train import DataSettings, ModelSpec, RunConfig, RuntimeSettings, TrainSettings

    def pick(cls, **extra):
        kw = {f.name: a[f.name] for f in fields(cls) if f.name in a and a[f.name] is not None}
        kw.update({k: v for k, v in extra.items() if v is not None})
        return cls(**kw)

    return RunConfig(
        data=pick(DataSettings),
        model=pick(ModelSpec),
        training=pick(TrainSettings),
        eval=_eval_settings(a, None),
        runtime=pick(RuntimeSettings),
    )


def _eval_settings(a: dict, base):
    from dataclasses import replace

    from gensynth.learning.predictions import EvalSettings

    kw = {"roles": _str_list(a.get("eval_roles")), "samples": a.get("samples"), "k": _int_list(a.get("k"), "--k"),
          "temperature": a.get("temperature"), "limit": a.get("eval_limit")}
    kw = {k: v for k, v in kw.items() if v is not None}
    if kw.get("samples") and "k" not in kw:
        kw["k"] = tuple(sorted({1, min(10, kw["samples"]), kw["samples"]}))
    return replace(base, **kw) if base is not None else EvalSettings(**kw)


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
        rows += [("model", f"{s.size} ({s.n_params:,} params)"), ("steps", s.steps), ("wall time (s)", s.wall_time_s)]
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
