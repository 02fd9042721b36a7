"""CLI commands for experiments and analysis: ``gensynth sweep``, ``gensynth proximity``, ``gensynth report``.

Registered in gensynth/cli.py. Only typer loads at import time; numpy, scipy,
matplotlib and torch load inside the command bodies, so ``gensynth --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from gensynth.cli.options import WarehouseOpt, output_dir
from gensynth.errors import GensynthError



def _warehouse(path: Optional[Path]) -> Path:
    from gensynth.warehouse import default_warehouse_path

    return Path(path) if path is not None else default_warehouse_path()


def _install_views(path: Path) -> None:
    """Install (or refresh) the analysis views: one short write transaction, waiting a while for a lock."""
    from gensynth.analysis.views import install_analysis_views
    from gensynth.warehouse import connect_retrying

    con = connect_retrying(path, read_only=False)
    try:
        install_analysis_views(con)
    finally:
        con.close()


def sweep_cmd(
    sweep: str = typer.Argument(..., help="Sweep TOML file, or a shipped sweep: density, support, scaling."),
    parallel: int = typer.Option(1, "--parallel", "-j", help="Runs at a time (each a `gensynth train` process); "
                                 "each gets the cores / N as torch threads (a sweep key `threads` wins)."),
    executor: str = typer.Option("local", "--executor", help="Where runs execute: local (subprocesses here) or ray "
                                 "(tasks on a Ray cluster; pip install 'gensynth\\[cluster]')."),
    address: Optional[str] = typer.Option(None, "--address", help="--executor ray: the cluster to join (e.g. auto, "
                                          "ray://head:10001); default: start a local Ray instance."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a key: KEY=VALUE (a,b,c makes a grid list); repeatable."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would run, skip or resume; run nothing."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-run lines."),
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """Run an experiment grid (splits x sizes x seeds x steps), skipping finished runs, resuming killed ones."""
    from rich.table import Table

    from gensynth.progress import console
    from gensynth.experiments.sweep import load_sweep, run_sweep

    path = _warehouse(warehouse)
    spec = load_sweep(sweep, set_ or [])
    plan = run_sweep(path, spec, parallel=parallel, quiet=quiet, dry_run=dry_run, executor=executor, address=address)
    table = Table(title=f"gensynth sweep {spec.name}" + (" (dry run)" if dry_run else ""))
    for col in ("#", "run", "action", "status", "run id", "s", "note"):
        table.add_column(col, no_wrap=col in ("run id", "status", "action"))
    for p in plan:
        table.add_row(str(p.run.index), p.run.label(), p.action, p.status, p.run_id or "-",
                      f"{p.seconds:.0f}" if p.seconds else "-", p.note)
    console.print(table)
    counts = {s: sum(p.status == s for p in plan) for s in ("finished", "skipped", "busy", "failed", "not run")}
    console.print(", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" of {len(plan)} runs.")
    if counts["failed"]:
        raise GensynthError(f"{counts['failed']} run(s) of sweep '{spec.name}' failed; their logs are named above. "
                            f"Fix the cause and run the same command again: finished runs are skipped.")


def proximity_cmd(
    view: Optional[List[str]] = typer.Option(None, "--view", help="Split to compute for (repeatable; default: every split a finished run trained on)."),
    force: bool = typer.Option(False, "--force", help="Recompute rows that are already there."),
    pqgram_budget: float = typer.Option(4e9, "--pqgram-budget", help="Multiply-adds allowed per split for exact pq-gram distances (test programs x train pq-gram rows); beyond it a hashed sample of test programs."),
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """Distances from each evaluated test program to its nearest training program (table nearest_train)."""
    from gensynth.analysis.proximity import update_proximity_at
    from gensynth.progress import Stages, console, summary_table

    path = _warehouse(warehouse)
    _install_views(path)
    with Stages() as stages:  # reads, computes without holding the warehouse, writes per split in one transaction
        with stages.stage("nearest neighbours", total=1) as advance:
            results = update_proximity_at(path, views=view or None, force=force, pqgram_budget=pqgram_budget,
                                          progress=advance)
    if not results:
        console.print("No finished runs yet, so no splits to compute for. Name one with --view split_NAME.")
        return
    rows = []
    for r in results:
        rows.append((r.view, f"train {r.train:,} · test {r.test:,} · computed now {r.computed:,} "
                             f"(pq-gram {r.pqgram:,}){' · recomputed' if r.recomputed_all else ''} · {r.seconds:.1f} s"))
    console.print(summary_table("gensynth proximity", rows))


def report_cmd(
    out: Path = typer.Option(Path("reports") / "latest", "--out", "-o", callback=output_dir, help="Directory for the figures, report.md and index.html."),
    split: Optional[str] = typer.Option(None, "--split", help="Split drawn on the manifolds (figure 1); default: the one with most runs."),
    no_proximity: bool = typer.Option(False, "--no-proximity", help="Do not compute missing nearest-neighbour distances first."),
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """Write PNG figures, report.md and a self-contained index.html (tables from the sql/analysis views) into --out."""
    from gensynth.analysis.proximity import update_proximity_at
    from gensynth.analysis.report import choose_split, gather, render_report
    from gensynth.analysis.report_data import views_of
    from gensynth.progress import Stages, console, summary_table
    from gensynth.warehouse import connect_retrying

    path = _warehouse(warehouse)
    _install_views(path)
    con = connect_retrying(path, read_only=True)
    try:
        choose_split(con, split)  # a bad --split fails before any work
        has_manifold = "manifold" in views_of(con)
    finally:
        con.close()
    with Stages() as stages:
        if not no_proximity and has_manifold:
            with stages.stage("nearest neighbours") as advance:
                update_proximity_at(path, progress=advance)
        with stages.stage("read the analysis views"):  # one short read; nothing is held while drawing
            con = connect_retrying(path, read_only=True)
            try:
                data = gather(con, split)
            finally:
                con.close()
        with stages.stage("figures and tables"):
            summary = render_report(data, out, path)
    rows = [("report (open in a browser)", str(summary.html)), ("report (Markdown)", str(summary.markdown))]
    rows += [(name, str(p)) for name, p in summary.figures.items()]
    rows += [("split drawn", summary.split or "-")] + [("no data", n) for n in summary.notes]
    console.print(summary_table("gensynth report", rows))
