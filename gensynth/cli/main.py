"""The `gensynth` command line. Heavy libraries are imported inside the commands that
need them so that ``gensynth --help`` stays instant."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Optional

import typer

from gensynth.cli.split import split_app
from gensynth.errors import GensynthError

app = typer.Typer(
    help="gensynth: a laboratory for how program-synthesis models generalise.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
state = {"debug": False}
app.add_typer(split_app, name="split")

# One --warehouse option for every command (gensynth/cli/options.py).
from gensynth.cli.options import WarehouseOpt, seed_range, warehouse_path  # noqa: E402


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")) -> None:
    """gensynth: enumerate a program universe, map it, split it in SQL, train and search on it."""
    state["debug"] = debug


@app.command()
def build(
    grammar: Optional[Path] = typer.Option(None, "--grammar", "-g", help="Grammar TOML file (default: the shipped arithmetic grammar)."),
    max_ops: int = typer.Option(3, "--max-ops", "-n", help="Enumerate every program with at most this many operators (4 = the full 11.4M-program universe)."),
    warehouse: Optional[Path] = WarehouseOpt,
    skip_embed: bool = typer.Option(False, "--skip-embed", help="Stop after programs and functions (no manifolds, no splits)."),
    p: int = typer.Option(2, "--p", help="pq-gram stem length."),
    q: int = typer.Option(3, "--q", help="pq-gram base length."),
    k_syn: Optional[int] = typer.Option(None, "--k-syn", help="Syntactic manifold dimensions [default: 32, grown to the end of its group of equal eigenvalues (34 at max-ops 3), or the rank available if smaller]."),
    k_sem: Optional[int] = typer.Option(None, "--k-sem", help="Semantic manifold dimensions [default: 16, or the rank available if smaller]."),
    seed: int = typer.Option(0, "--seed", callback=seed_range, help="Seed of the SVD fitting sample."),
    weighting: str = typer.Option("l2", "--weighting", help="pq-gram row weighting: counts, l2 or tfidf."),
    force: bool = typer.Option(False, "--force", help="Replace a DuckDB file that is not a gensynth warehouse (its tables are lost)."),
) -> None:
    """Build a warehouse: enumerate, evaluate, embed and split a program universe (atomic replace)."""
    from gensynth.pipeline import build_warehouse
    from gensynth.manifolds.embed import EmbedConfig
    from gensynth.universe.grammar import load_grammar
    from gensynth.progress import console, summary_table
    from gensynth.warehouse import check_writable_location

    path = warehouse_path(warehouse)
    g = load_grammar(grammar)
    embed_config = None if skip_embed else EmbedConfig(p=p, q=q, k_syn=k_syn, k_sem=k_sem, seed=seed, weighting=weighting)
    check_writable_location(path, force=force)  # before any work: a foreign, locked or immutable file is refused
    summary = build_warehouse(g, max_ops, path, embed=embed_config, force=force)
    rows = [
        ("warehouse", str(path)),
        ("grammar", f"{g.name} ({g.hash[:12]})"),
        ("max ops", max_ops),
        ("programs", summary.programs),
        ("functions", summary.functions),
        ("non-finite functions", summary.nonfinite_functions),
        ("distinct evaluations", summary.distinct_evaluations),
    ]
    from gensynth.splits import CarryReport

    splits = CarryReport(summary.splits_carried, summary.splits_registered, summary.splits_stale, summary.splits_empty_tests)
    rows += [("runs carried over", summary.carried_runs)] + split_rows(splits, "user splits carried")
    rows += [("user tasks carried", summary.tasks_carried)]
    rows += [(f"{name} (s)", seconds) for name, seconds in summary.timings.items()]
    rows.append(("total (s)", sum(summary.timings.values())))
    console.print(summary_table("gensynth build", rows))
    print_split_outcomes(console, summary.splits_stale, summary.splits_empty_tests)


@app.command()
def embed(
    warehouse: Optional[Path] = WarehouseOpt,
    p: int = typer.Option(2, "--p", help="pq-gram stem length (anchor and p-1 ancestors)."),
    q: int = typer.Option(3, "--q", help="pq-gram base length (consecutive children)."),
    k_syn: Optional[int] = typer.Option(None, "--k-syn", help="Syntactic manifold dimensions [default: 32, grown to the end of its group of equal eigenvalues (34 at max-ops 3), or the rank available if smaller]."),
    k_sem: Optional[int] = typer.Option(None, "--k-sem", help="Semantic manifold dimensions [default: 16, or the rank available if smaller]."),
    seed: int = typer.Option(0, "--seed", callback=seed_range, help="Seed of the SVD fitting sample."),
    weighting: str = typer.Option("l2", "--weighting", help="pq-gram row weighting: counts, l2 or tfidf."),
) -> None:
    """(Re)compute pq-grams and both manifolds on an existing warehouse, in one transaction;
    then re-register the built-in splits and re-validate the user splits on the new manifolds."""
    from gensynth.pipeline import reembed
    from gensynth.manifolds.embed import EmbedConfig
    from gensynth.universe.grammar import grammar_from_meta
    from gensynth.progress import Stages, console, summary_table
    from gensynth.warehouse import open_warehouse, read_meta

    config = EmbedConfig(p=p, q=q, k_syn=k_syn, k_sem=k_sem, seed=seed, weighting=weighting)
    config.validate()
    path = warehouse_path(warehouse)
    con = open_warehouse(path, read_only=False)
    try:
        grammar = grammar_from_meta(con)
        with Stages() as stages:
            splits = reembed(con, grammar, config, stages)
        meta = read_meta(con)
    finally:
        con.close()
    rows = [("warehouse", str(path)), ("pq-gram vocabulary", int(meta["embed.pqgram_vocab"])),
            ("pq-gram rows", int(meta["embed.pqgram_rows"])),
            ("syn explained (sum)", sum(json.loads(meta["embed.syn_explained"]))),
            ("sem explained (sum)", sum(json.loads(meta["embed.sem_explained"]))),
            ("functions excluded from sem", int(meta["embed.sem_excluded_functions"]))]
    rows += split_rows(splits, "user splits re-validated")
    rows += [(f"{k} (s)", v) for k, v in stages.timings.items()]
    console.print(summary_table("gensynth embed", rows))
    print_split_outcomes(console, splits.stale, splits.empty_tests)


def split_rows(report, found: str) -> list[tuple[str, int]]:
    """Summary rows of what a rebuild or embed did with the user splits (a CarryReport)."""
    return [(found, report.carried), ("  re-registered", len(report.registered)),
            ("    with an empty test role", len(report.empty_tests)),
            ("  stale (see `gensynth split list`)", len(report.stale))]


def print_split_outcomes(console, stale: dict[str, str], empty_tests: dict[str, list[str]]) -> None:
    """One line per stale user split (why) and per re-registered one whose test roles became empty."""
    for name, reason in stale.items():
        console.print(f"[yellow]stale split {name}:[/yellow] {reason}")
    for name, roles in empty_tests.items():
        console.print(f"[yellow]split {name} re-registered, but empty on this universe:[/yellow] {', '.join(roles)} "
                      f"(nothing to test there; `gensynth split show {name}` shows its roles).")


@app.command()
def shell(warehouse: Optional[Path] = WarehouseOpt) -> None:
    """Open the stock DuckDB shell (duckdb-cli) on the warehouse."""
    from gensynth.warehouse import open_warehouse

    path = warehouse_path(warehouse)
    open_warehouse(path).close()  # checks existence and schema version first
    exe = shutil.which("duckdb") or str(Path(sys.executable).with_name("duckdb"))
    if not Path(exe).exists():
        raise GensynthError("The `duckdb` shell is not installed. Install it with `pip install duckdb-cli==1.5.6`.")
    os.execv(exe, [exe, str(path)])


from gensynth.cli.train import eval_cmd, runs_app, train_cmd  # noqa: E402 (light: typer only)

app.command("train")(train_cmd)
app.command("eval")(eval_cmd)
app.add_typer(runs_app, name="runs")

from gensynth.cli.solve import beyond_cmd, solve_cmd  # noqa: E402 (light: typer and numpy only)

app.command("solve")(solve_cmd)
app.command("beyond")(beyond_cmd)

from gensynth.cli.analysis import proximity_cmd, report_cmd, sweep_cmd  # noqa: E402 (light: typer only)

app.command("sweep")(sweep_cmd)
app.command("proximity")(proximity_cmd)
app.command("report")(report_cmd)

from gensynth.cli.demo import demo_cmd  # noqa: E402 (light: typer only)

app.command("demo")(demo_cmd)


def run() -> None:
    """Console-script entry point: runs the app and turns every failure into one paragraph.

    ``GensynthError`` is the user's to fix: ``Error: <message>``, exit 1. An ``OSError``
    (disk full, permissions) is the environment's: ``Error:`` with the path, exit 1.
    Anything else, a DuckDB error from gensynth's own SQL included, is a bug in gensynth:
    it is said to be one, with the hint to rerun with ``--debug`` for the traceback, exit 2.
    ``--debug`` shows every traceback.
    """
    try:
        app()
    except KeyboardInterrupt:
        print("Interrupted; the warehouse was left as it was.", file=sys.stderr)
        sys.exit(130)
    except SystemExit as exc:
        if exc.code == 130:  # typer turns Ctrl-C inside a command into exit 130, silently
            print("Interrupted; the warehouse was left as it was.", file=sys.stderr)
        raise
    except Exception as exc:  # one place turns every failure into a message
        if _interrupted(exc):  # Ctrl-C that reached DuckDB mid-query
            print("Interrupted; the warehouse was left as it was.", file=sys.stderr)
            sys.exit(130)
        # --debug is read from argv too: a failure while typer builds a command comes before the callback runs.
        if state["debug"] or "--debug" in sys.argv[1:]:
            raise
        print(describe_failure(exc), file=sys.stderr)
        sys.exit(1 if isinstance(exc, (GensynthError, OSError)) else 2)


def _interrupted(exc: Exception) -> bool:
    import duckdb

    return isinstance(exc, duckdb.InterruptException) or (type(exc) is RuntimeError and "query interrupted" in str(exc).lower())


def describe_failure(exc: Exception) -> str:
    """The paragraph ``run`` prints for a failure (see ``run``)."""
    if isinstance(exc, GensynthError):
        return f"Error: {exc}"
    if isinstance(exc, OSError) and exc.strerror:
        where = f" '{exc.filename}'" if exc.filename else ""
        return (f"Error: cannot use{where}: {exc.strerror}. Check that the path exists, is writable by you and that "
                f"the disk has space, then retry (--debug shows where it happened).")
    first = " ".join(str(exc).strip().splitlines()[:3]) or "(no message)"
    return (f"Internal error: {type(exc).__module__.split('.')[0].lstrip('_')}.{type(exc).__name__}: {first}\n"
            f"This is a bug in gensynth, not a problem with your input: its own code or SQL failed. Rerun the same "
            f"command with --debug (gensynth --debug ...) to see the traceback, and report it with that output.")


if __name__ == "__main__":
    run()
