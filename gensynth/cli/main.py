"""The `gensynth` command line. Heavy libraries are imported inside the commands that
need them so that ``gensynth --help`` stays instant."""

from __future__ import annotations

import contextlib
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

WarehouseOpt = typer.Option(
    None, "--warehouse", "-w", help="Warehouse file (default: $GENSYNTH_WAREHOUSE, else warehouse/gensynth.duckdb)."
)


def warehouse_path(path: Optional[Path]) -> Path:
    """The warehouse a command works on: the flag, else $GENSYNTH_WAREHOUSE, else the default."""
    from gensynth.warehouse import default_warehouse_path

    return Path(path) if path is not None else default_warehouse_path()


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
    k_syn: Optional[int] = typer.Option(None, "--k-syn", help="Syntactic manifold dimensions [default: 16, or the rank available if smaller]."),
    k_sem: Optional[int] = typer.Option(None, "--k-sem", help="Semantic manifold dimensions [default: 16, or the rank available if smaller]."),
    seed: int = typer.Option(0, "--seed", help="Seed of the SVD fitting sample."),
    weighting: str = typer.Option("l2", "--weighting", help="pq-gram row weighting: counts, l2 or tfidf."),
) -> None:
    """Build a warehouse: enumerate, evaluate, embed and split a program universe (atomic replace)."""
    from gensynth.pipeline import build_warehouse
    from gensynth.manifolds.embed import EmbedConfig
    from gensynth.universe.grammar import load_grammar
    from gensynth.progress import console, summary_table
    from gensynth.warehouse import check_writable_location

    path = warehouse_path(warehouse)
    g = load_grammar(grammar)
    check_writable_location(path)
    embed_config = None if skip_embed else EmbedConfig(p=p, q=q, k_syn=k_syn, k_sem=k_sem, seed=seed, weighting=weighting)
    summary = build_warehouse(g, max_ops, path, embed=embed_config)
    rows = [
        ("warehouse", str(path)),
        ("grammar", f"{g.name} ({g.hash[:12]})"),
        ("max ops", max_ops),
        ("programs", summary.programs),
        ("functions", summary.functions),
        ("non-finite functions", summary.nonfinite_functions),
        ("distinct evaluations", summary.distinct_evaluations),
    ]
    rows += [(f"{name} (s)", seconds) for name, seconds in summary.timings.items()]
    rows.append(("total (s)", sum(summary.timings.values())))
    console.print(summary_table("gensynth build", rows))


@app.command()
def embed(
    warehouse: Optional[Path] = WarehouseOpt,
    p: int = typer.Option(2, "--p", help="pq-gram stem length (anchor and p-1 ancestors)."),
    q: int = typer.Option(3, "--q", help="pq-gram base length (consecutive children)."),
    k_syn: Optional[int] = typer.Option(None, "--k-syn", help="Syntactic manifold dimensions [default: 16, or the rank available if smaller]."),
    k_sem: Optional[int] = typer.Option(None, "--k-sem", help="Semantic manifold dimensions [default: 16, or the rank available if smaller]."),
    seed: int = typer.Option(0, "--seed", help="Seed of the SVD fitting sample."),
    weighting: str = typer.Option("l2", "--weighting", help="pq-gram row weighting: counts, l2 or tfidf."),
) -> None:
    """(Re)compute pq-grams and both manifolds on an existing warehouse, in one transaction."""
    from gensynth.pipeline import run_manifold_stages, run_split_stage
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
            con.execute("BEGIN TRANSACTION")
            run_manifold_stages(con, grammar, config, stages)
            con.execute("COMMIT")
            # Split views are SQL over `manifold`: re-registering refreshes their records.
            run_split_stage(con, stages)
        meta = read_meta(con)
    except BaseException:
        with contextlib.suppress(Exception):  # nothing committed: the previous tables stay
            con.execute("ROLLBACK")
        raise
    finally:
        con.close()
    rows = [("warehouse", str(path)), ("pq-gram vocabulary", int(meta["embed.pqgram_vocab"])),
            ("pq-gram rows", int(meta["embed.pqgram_rows"])),
            ("syn explained (sum)", sum(json.loads(meta["embed.syn_explained"]))),
            ("sem explained (sum)", sum(json.loads(meta["embed.sem_explained"]))),
            ("functions excluded from sem", int(meta["embed.sem_excluded_functions"]))]
    rows += [(f"{k} (s)", v) for k, v in stages.timings.items()]
    console.print(summary_table("gensynth embed", rows))


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


def run() -> None:
    """Console-script entry point: runs the app and turns known failures into clean errors."""
    try:
        app()
    except KeyboardInterrupt:
        print("Interrupted; the warehouse was left as it was.", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # one place turns every known failure into a message
        if state["debug"] or not _is_user_error(exc):
            raise
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(1)


def _is_user_error(exc: Exception) -> bool:
    if isinstance(exc, GensynthError):
        return True
    import duckdb

    mod = type(exc).__module__ or ""
    return isinstance(exc, duckdb.Error) or mod.startswith("sqlglot")


if __name__ == "__main__":
    run()
