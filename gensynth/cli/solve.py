"""CLI commands of the synthesis stage: ``gensynth solve`` and ``gensynth beyond``.

Flags, defaults and help of ``solve`` come from ``gensynth.synthesis.solve.SolveConfig``
(one source: a field's docstring is its help). Only typer, numpy and the standard
library load at import time, so ``gensynth --help`` stays instant.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Optional

import typer

from gensynth.synthesis.solve import SolveConfig

from gensynth.cli.options import Warehouse, finite_float, seed_range, warehouse_path


@lru_cache(maxsize=None)
def _field_docs(cls) -> dict[str, str]:
    """Attribute docstrings of a dataclass (the string literal after each field)."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(SolveConfig)}


def _opt(name: str, *flags: str, callback=None) -> typer.models.OptionInfo:
    """A typer option for SolveConfig field ``name``, its help from the field's docstring."""
    return typer.Option(*(flags or (f"--{name.replace('_', '-')}",)), help=_field_docs(SolveConfig)[name], callback=callback)


def solve_cmd(
    method: Annotated[str, _opt("method", "--method", "-m")],
    view: Annotated[Optional[str], _opt("view")] = None,
    role: Annotated[str, _opt("role")] = _DEFAULTS["role"],
    limit: Annotated[int, _opt("limit")] = _DEFAULTS["limit"],
    budget_candidates: Annotated[int, _opt("budget_candidates")] = _DEFAULTS["budget_candidates"],
    budget_seconds: Annotated[float, _opt("budget_seconds", callback=finite_float(0, low_open=True))] = _DEFAULTS["budget_seconds"],
    max_ops: Annotated[int, _opt("max_ops")] = _DEFAULTS["max_ops"],
    run: Annotated[Optional[str], _opt("parent_run", "--run")] = None,
    samples: Annotated[int, _opt("samples")] = _DEFAULTS["samples"],
    temperature: Annotated[float, _opt("temperature", callback=finite_float(0))] = _DEFAULTS["temperature"],
    bank_ops: Annotated[int, _opt("bank_ops")] = _DEFAULTS["bank_ops"],
    n_examples: Annotated[Optional[int], _opt("n_examples")] = None,
    seed: Annotated[int, typer.Option("--seed", callback=seed_range, help=_field_docs(SolveConfig)["seed"])] = _DEFAULTS["seed"],
    tasks: Annotated[Optional[Path], _opt("tasks_file", "--tasks")] = None,
    memory_gb: Annotated[float, _opt("memory_gb", callback=finite_float(0, low_open=True))] = _DEFAULTS["memory_gb"],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    warehouse: Warehouse = None,
) -> None:
    """Run a synthesizer on a split's tasks (or tasks_beyond); results land in runs/predictions."""
    from gensynth.errors import GensynthError
    from gensynth.progress import console, summary_table
    from gensynth.synthesis.solve import solve

    from gensynth.synthesis.tasks import USER_VIEW

    if tasks is not None and view not in (None, USER_VIEW):
        raise GensynthError(f"--tasks FILE solves the file's targets (view '{USER_VIEW}'); drop --view {view}, or drop --tasks.")
    if view is None and tasks is None:
        raise GensynthError("Say which tasks to solve: --view split_NAME (with --role), --view tasks_beyond, "
                            "--tasks FILE (targets of your own), or --view tasks (those stored before).")
    config = SolveConfig(method=method, view=USER_VIEW if tasks is not None else view, role=role, limit=limit,
                         budget_candidates=budget_candidates, budget_seconds=budget_seconds, max_ops=max_ops,
                         samples=samples, temperature=temperature, bank_ops=bank_ops, parent_run=run,
                         n_examples=n_examples, seed=seed, tasks_file=str(tasks) if tasks is not None else None,
                         memory_gb=memory_gb)
    out = solve(warehouse_path(warehouse), config, quiet=quiet)
    console.print(summary_table(f"gensynth solve ({method})", [
        ("run", out["run_id"]), ("tasks", out["tasks"]), ("solved", out["solved"]),
        ("solve rate", out["solve_rate"]), ("proven smallest", out["proven_smallest"]),
        ("median seconds / task", out["median_seconds"]), ("median candidates / task", out["median_candidates"]),
        ("results", f"{out['ingest']} {out['ingest_message']}")]))


def beyond_cmd(
    tasks: Annotated[int, typer.Option("--tasks", help="Number of tasks to draw.")] = 200,
    ops: Annotated[Optional[int], typer.Option("--ops", help="Operators per drawn program, up to 10 (default: the warehouse's max-ops + 1).")] = None,
    seed: Annotated[int, typer.Option("--seed", callback=seed_range, help="Seed of the draw.")] = 0,
    warehouse: Warehouse = None,
) -> None:
    """(Re)draw `tasks_beyond`: programs of N operators beyond the warehouse, function-disjoint from it."""
    from gensynth.progress import console
    from gensynth.synthesis.tasks import check_task_count, make_beyond_tasks
    from gensynth.universe.grammar import grammar_from_meta
    from gensynth.warehouse import connect_retrying

    check_task_count(tasks)  # the cap, before any work
    con = connect_retrying(warehouse_path(warehouse), read_only=False)  # a short writer: waits visibly for a lock
    try:
        con.execute("BEGIN TRANSACTION")
        n = make_beyond_tasks(con, grammar_from_meta(con), tasks, seed, n_ops=ops)
        con.execute("COMMIT")
    finally:
        con.close()
    console.print(f"tasks_beyond: {n} tasks")
