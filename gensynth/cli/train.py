"""CLI commands for training and results: ``gensynth train``, ``gensynth eval``, ``gensynth runs``.

Registered in gensynth/cli.py. Only typer and the standard library load at import time;
torch and Lightning load inside the command bodies, so ``gensynth --help`` stays instant.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Optional

import typer

from gensynth.cli.options import WAREHOUSE_HELP, WarehouseOpt
from gensynth.errors import GensynthError



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
        _print_summary("gensynth train", summary, path)


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
    replace_: bool = typer.Option(False, "--replace", help="Delete the run's earlier evaluations of this view (default: keep them; the analysis counts the most complete)."),
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """Evaluate a finished run on any split's roles (adds an evaluation; earlier ones are kept unless --replace)."""
    path = _warehouse(warehouse)
    from dataclasses import replace

    from gensynth.learning import train as stage

    from gensynth.learning.rundirs import read_json

    run_dir = stage.run_dir_for(path, run)
    raw = read_json(run_dir / "config.json", {})
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
    summary = stage.score_run(path, run, view=view, settings=settings, replace=replace_)
    _print_summary("gensynth eval", summary, path)


def _print_summary(title: str, s, warehouse: Optional[Path] = None) -> None:
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
        # The views count one evaluation per role (the most complete): say so when it is not this one.
        other = mine is not None and r["eval_id"] not in (None, mine)
        whose = f" (counted evaluation {r['eval_id']}, n={r['n']:,})" if other else ""
        rows.append((f"function pass@1 {r['role']}{whose}", f"{fp}  ({r['n_functions'] or 0:,} functions, each weighted once)"))
        rows.append((f"top prediction share {r['role']}{whose}", "-" if share is None else
                     f"{share:.2f}" + ("  WARNING" if share > TOP_SHARE_WARN else "")))
        if share is not None and share > TOP_SHARE_WARN:
            warnings.append(top_share_warning(r, share, fp))
        if r["n_excluded_trained"]:
            rows.append((f"left out of {r['role']}", f"{r['n_excluded_trained']:,} programs whose function the run trained on"))
        if mine is not None and r["eval_id"] not in (None, mine):
            warnings.append(f"for {r['role']} the analysis counts the more complete evaluation {r['eval_id']}, not this one "
                            f"({mine}); both are kept (`gensynth eval --replace` keeps only the new one).")
    return rows, warnings


def top_share_warning(r: dict, share: float, fp: str) -> str:
    """The warning for a role where one predicted function is most of the answers. pass@1 is
    "dominated" only when that answer also passes somewhere; at pass@1 0 the model repeats
    one wrong answer (a collapse), which is the thing to say."""
    head = f"on {r['role']}, {share:.0%} of the answers are one function (e.g. `{r['top_prediction']}`)"
    if not r["pass_at_1"]:
        return f"{head}, and none passes: the model gives one answer to most tasks (a collapsed decoder), not a solution."
    return (f"{head}: pass@1 there ({r['pass_at_1']:.3f}) may be dominated by that one answer; function pass@1 "
            f"(each function weighted once) is {fp}.")


# ---------------------------------------------------------------------- runs app

from gensynth.cli.runs import runs_app  # noqa: E402,F401 (registered by gensynth.cli.main; typer only)
