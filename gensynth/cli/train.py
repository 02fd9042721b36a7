"""CLI commands for training and results: ``gensynth train``, ``gensynth eval``, ``gensynth runs``.

Registered in gensynth/cli.py. Only typer and the standard library load at import time;
torch and Lightning load inside the command bodies, so ``gensynth --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gensynth.cli.options import WarehouseOpt
from gensynth.errors import GensynthError

_CONFIG_FLAGS = ("view", "size", "d_model", "n_heads", "n_enc_layers", "n_dec_layers", "d_ff", "dropout", "max_steps",
                 "batch_size", "lr", "weight_decay", "warmup_steps", "label_smoothing", "seed", "accelerator", "devices",
                 "precision", "n_examples", "num_workers", "val_every", "checkpoint_every", "select", "eval_roles",
                 "samples", "k", "temperature", "eval_limit")


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
        _print_summary("gensynth train", summary, path)


def _run_config(a: dict):
    from dataclasses import fields

    from gensynth.learning.train import DataSettings, ModelSpec, RunConfig, TrainSettings

    def pick(cls, **extra):
        kw = {f.name: a[f.name] for f in fields(cls) if f.name in a and a[f.name] is not None}
        kw.update({k: v for k, v in extra.items() if v is not None})
        return cls(**kw)

    return RunConfig(
        data=pick(DataSettings),
        model=pick(ModelSpec),
        training=pick(TrainSettings),
        eval=_eval_settings(a, None),
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
    replace_: bool = typer.Option(False, "--replace", help="Delete the run's earlier evaluations of this view (default: keep them; the analysis counts the most complete)."),
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """Evaluate a finished run on any split's roles (adds an evaluation; earlier ones are kept unless --replace)."""
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
    summary = stage.evaluate(path, run, view=view, settings=settings, replace=replace_)
    _print_summary("gensynth eval", summary, path)


def _print_summary(title: str, s, warehouse: Optional[Path] = None) -> None:
    from gensynth.progress import console, summary_table

    rows: list[tuple[str, object]] = [("run", s.run_id), ("view", s.view), ("status", s.status)]
    if title.endswith("train"):
        rows += [("model", f"{s.size} ({s.n_params:,} params)"), ("steps", s.steps), ("wall time (s)", s.wall_time_s)]
    rows.append(("checkpoint evaluated", s.checkpoint))
    for role, sc in s.scores.items():
        p = sc.get("pass@1")
        extra = ", ".join(f"{k} {v:.3f}" for k, v in sc.items() if k.startswith("sample_pass@") and v is not None)
        rows.append((f"pass@1 {role}", ("-" if p is None else f"{p:.3f}") + f"  (n={int(sc['n_programs']):,}" + (f"; {extra})" if extra else ")")))
    overlap = _overlap(s)
    if overlap:
        rows.append(("in the run's training set", f"{overlap['train_programs']:,} of {overlap['evaluated_programs']:,} programs; "
                     f"{overlap['train_functions']:,} by function ({overlap['distinct_train_functions']:,} of "
                     f"{overlap['evaluated_functions']:,} functions): left out of test roles by the analysis views"))
    warnings = []
    if s.ingest == "ingested" and warehouse is not None:
        rows, warnings = _analysis_rows(rows, s, warehouse)
    rows.append(("results", {"ingested": "in the warehouse",
                             "pending": "PENDING: warehouse locked; run `gensynth runs sync` later",
                             "refused": "NOT ingested: " + s.ingest_message}.get(s.ingest, s.ingest)))
    rows.append(("run directory", str(s.run_dir)))
    console.print(summary_table(title, rows))
    for w in warnings:
        console.print(f"[bold yellow]Warning:[/] {w}")


def _overlap(s) -> dict | None:
    import json

    try:
        return json.loads((Path(s.run_dir) / "evals" / s.view / "scores.json").read_text()).get("training_overlap")
    except (OSError, ValueError):
        return None


def _analysis_rows(rows: list, s, warehouse: Path) -> tuple[list, list[str]]:
    """Add the analysis views' function-weighted pass@1 and top-prediction share per role (pass_at_k)."""
    import json

    from gensynth.analysis.views import TOP_SHARE_WARN, run_role_scores

    try:
        got = run_role_scores(warehouse, s.run_id, s.view)
    except GensynthError as exc:
        return rows + [("function pass@1", f"not shown: {exc}")], []
    if got is None:
        return rows + [("function pass@1", "not read: the warehouse is busy (see pass_at_k later)")], []
    try:
        mine = json.loads((Path(s.run_dir) / "evals" / s.view / "scores.json").read_text()).get("eval_id")
    except (OSError, ValueError):
        mine = None
    warnings = []
    for r in got:
        share = r["top_prediction_share"]
        fp = "-" if r["function_pass_at_1"] is None else f"{r['function_pass_at_1']:.3f}"
        rows.append((f"function pass@1 {r['role']}", f"{fp}  ({r['n_functions'] or 0:,} functions, each weighted once)"))
        rows.append((f"top prediction share {r['role']}", "-" if share is None else
                     f"{share:.2f}" + ("  WARNING" if share > TOP_SHARE_WARN else "")))
        if share is not None and share > TOP_SHARE_WARN:
            warnings.append(f"on {r['role']}, {share:.0%} of the answers are one function (e.g. `{r['top_prediction']}`): "
                            f"pass@1 there ({r['pass_at_1']:.3f}) is dominated by that one answer; function pass@1 "
                            f"(each function weighted once) is {fp}.")
        if r["n_excluded_trained"]:
            rows.append((f"left out of {r['role']}", f"{r['n_excluded_trained']:,} programs whose function the run trained on"))
        if mine is not None and r["eval_id"] not in (None, mine):
            warnings.append(f"for {r['role']} the analysis counts the more complete evaluation {r['eval_id']}, not this one "
                            f"({mine}); both are kept (`gensynth eval --replace` keeps only the new one).")
    return rows, warnings


# ---------------------------------------------------------------------- runs app

from gensynth.cli.runs import runs_app  # noqa: E402,F401 (registered by gensynth.cli.main; typer only)
