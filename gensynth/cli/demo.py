"""CLI command ``gensynth demo``: the main job in one command (gensynth/experiments/demo.py does the work).

Only typer loads at import time, so ``gensynth --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gensynth.cli.options import WarehouseOpt, output_dir, warehouse_path


def demo_cmd(
    out: Optional[Path] = typer.Option(None, "--out", "-o", callback=output_dir, help="Directory of the report: figures, report.md, index.html [default: report/ beside the warehouse, e.g. warehouse/report/]."),
    max_steps: int = typer.Option(1000, "--max-steps", help="Training budget in optimizer steps."),
    max_time: Optional[float] = typer.Option(None, "--max-time", help="Training budget in minutes as well, whichever comes first (default: none, so the run is reproducible)."),
    threads: int = typer.Option(1, "--threads", help="Torch threads of the training run (one: on a shared 2-core machine two threads ran 8x slower)."),
    eval_limit: int = typer.Option(500, "--eval-limit", help="Programs evaluated per role of the trained model (a seeded subset)."),
    tasks: int = typer.Option(100, "--tasks", help="Search tasks per test role and method."),
    budget_seconds: float = typer.Option(1.0, "--budget-seconds", help="Search seconds per task, at most."),
    grammar: Optional[Path] = typer.Option(None, "--grammar", "-g", help="Grammar TOML of the universe (default: the shipped arithmetic grammar)."),
    max_ops: int = typer.Option(3, "--max-ops", "-n", help="Programs of at most this many operators."),
    seed: int = typer.Option(0, "--seed", help="Seed of the training run and of the searches."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """The main job in one command: build (or reuse) a 3-op universe, train on split_support_syntactic,
    enumerative and hybrid search on its test roles, proximity, the report; then a five-line summary."""
    from gensynth.experiments.demo import DemoConfig, run_demo
    from gensynth.progress import console

    config = DemoConfig(warehouse=warehouse_path(warehouse), out=out, grammar=grammar, max_ops=max_ops,
                        max_steps=max_steps, max_time=max_time, threads=threads, eval_limit=eval_limit, tasks=tasks,
                        budget_seconds=budget_seconds, seed=seed)
    result = run_demo(config, quiet=quiet, say=console.print)
    console.print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in result.seconds.items()), highlight=False)
    # The result on stdout (notes and progress go to stderr): the report's path, then the five lines.
    typer.echo(f"report: {result.report_html or result.report_md} (Markdown: {result.report_md})")
    for line in result.summary_lines():
        typer.echo(line)
