"""The `gensynth` command line. Heavy libraries are imported inside the commands that
need them so that ``gensynth --help`` stays instant."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Optional

import typer

from gensynth.errors import GensynthError

app = typer.Typer(
    help="gensynth: a laboratory for how program-synthesis models generalise.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
state = {"debug": False}

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
) -> None:
    """Enumerate, evaluate and store a program universe in a new warehouse (atomic replace)."""
    from gensynth.build import build_warehouse
    from gensynth.grammar import load_grammar
    from gensynth.progress import console, summary_table
    from gensynth.warehouse import check_writable_location

    path = warehouse_path(warehouse)
    g = load_grammar(grammar)
    check_writable_location(path)
    summary = build_warehouse(g, max_ops, path)
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
def shell(warehouse: Optional[Path] = WarehouseOpt) -> None:
    """Open the stock DuckDB shell (duckdb-cli) on the warehouse."""
    from gensynth.warehouse import open_warehouse

    path = warehouse_path(warehouse)
    open_warehouse(path).close()  # checks existence and schema version first
    exe = shutil.which("duckdb") or str(Path(sys.executable).with_name("duckdb"))
    if not Path(exe).exists():
        raise GensynthError("The `duckdb` shell is not installed. Install it with `pip install duckdb-cli==1.5.6`.")
    os.execv(exe, [exe, str(path)])


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
