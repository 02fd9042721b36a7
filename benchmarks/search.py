"""Search benchmark: ``python -m benchmarks.search [--warehouse W] [--tasks N]``.

Runs the enumerative synthesizer and gplearn (genetic-programming symbolic regression,
the dev/benchmark extra ``pip install gplearn``) on the same tasks with the same
primitives — variables, the grammar's constants as constant input columns, + - * / —
and prints solve rate (exact functional match on the whole grid, checked with gensynth's
exact evaluator) and wall time per task side by side. Tasks: the first N of
``split_support_syntactic`` role ``test_ood`` (hashed order) of a default 4-op warehouse
(built into a temporary directory when --warehouse is not given). Nothing is asserted.
"""

from __future__ import annotations

import re
import tempfile
import time
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from benchmarks.build import machine

GPLEARN_FUNCTIONS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


def gplearn_to_prefix(program: str, feature_tokens: list[str]) -> str:
    """gplearn's 'add(X0, mul(X1, X2))' as gensynth prefix tokens ('+ x * y 1')."""
    tokens = re.findall(r"[A-Za-z_]+\d*|-?\d+\.\d+|-?\d+", program)
    out = []
    for tok in tokens:
        if tok in GPLEARN_FUNCTIONS:
            out.append(GPLEARN_FUNCTIONS[tok])
        elif tok.startswith("X"):
            out.append(feature_tokens[int(tok[1:])])
        else:
            return ""  # an ephemeral constant: not a program of the grammar
    return " ".join(out)


def run_gplearn(points: np.ndarray, target: np.ndarray, feature_tokens: list[str], seed: int,
                population: int, generations: int) -> str:
    from gplearn.genetic import SymbolicRegressor

    finite = np.isfinite(target)
    est = SymbolicRegressor(population_size=population, generations=generations, function_set=tuple(GPLEARN_FUNCTIONS),
                            const_range=None, stopping_criteria=1e-12, parsimony_coefficient=1e-3,
                            random_state=seed, n_jobs=1, metric="mean absolute error")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(points[finite], target[finite])
    return gplearn_to_prefix(str(est._program), feature_tokens)


def main(warehouse: Optional[Path] = typer.Option(None, help="A default-grammar warehouse (max-ops 4 for the issue's numbers)."),
         tasks: int = typer.Option(50, help="Tasks to solve."),
         view: str = typer.Option("split_support_syntactic"), role: str = typer.Option("test_ood"),
         population: int = typer.Option(1000), generations: int = typer.Option(20), seed: int = typer.Option(0)) -> None:
    import duckdb

    from gensynth.pipeline import build_warehouse
    from gensynth.manifolds.embed import EmbedConfig
    from gensynth.universe.grammar import grammar_from_meta, load_grammar
    from gensynth.synthesis.enumerative import Budget, solve_enumerative
    from gensynth.synthesis.solve import SolveConfig, read_tasks
    from gensynth.universe.syntax import ParseError, evaluate_trees, parse_prefix

    for key, value in machine():
        print(f"{key:>14}: {value}")
    with tempfile.TemporaryDirectory() as tmp:
        if warehouse is None:
            warehouse = Path(tmp) / "bench.duckdb"
            t = time.perf_counter()
            build_warehouse(load_grammar(), 4, warehouse, quiet=True, embed=EmbedConfig())
            print(f"built a 4-op warehouse in {time.perf_counter() - t:.0f} s")
        con = duckdb.connect(str(warehouse), read_only=True)
        grammar = grammar_from_meta(con)
        task_list = read_tasks(con, SolveConfig(method="enumerative", view=view, role=role, limit=tasks), grammar)
        con.close()
    grid = np.array([[float(c) for c in p] for p in grammar.grid_points])
    consts = np.array([float(c) for c in grammar.constants])
    features = np.hstack([grid, np.tile(consts, (len(grid), 1))])  # constants as input columns
    feature_tokens = list(grammar.variables) + list(grammar.constant_tokens)
    points = np.arange(grammar.n_points)

    def passes(prefix: str, task) -> bool:
        try:
            tree = parse_prefix(prefix, grammar)
        except ParseError:
            return False
        got = evaluate_trees([tree], grammar)
        return bool((got.num == task.exact.num).all() and (got.den == task.exact.den).all())

    rows = []
    for task in task_list:
        t = time.perf_counter()
        r = solve_enumerative(grammar, points, task.outputs, Budget(candidates=20_000_000, seconds=60))
        enum_s = time.perf_counter() - t
        t = time.perf_counter()
        gp = run_gplearn(features, task.outputs, feature_tokens, seed, population, generations)
        gp_s = time.perf_counter() - t
        rows.append((r.prefix is not None and passes(r.prefix, task), enum_s, passes(gp, task) if gp else False, gp_s))
    enum_ok, enum_s, gp_ok, gp_s = (np.array(c) for c in zip(*rows))
    print(f"\n{len(rows)} tasks: {view} / {role} (all {grammar.n_points} grid points shown)")
    print(f"{'method':<14} {'solve rate':>10} {'median s/task':>14} {'mean s/task':>12}")
    print(f"{'enumerative':<14} {enum_ok.mean():>10.1%} {np.median(enum_s):>14.3f} {enum_s.mean():>12.3f}")
    print(f"{'gplearn':<14} {gp_ok.mean():>10.1%} {np.median(gp_s):>14.3f} {gp_s.mean():>12.3f}")
    print(f"gplearn: population {population}, generations {generations}, seed {seed}, function set + - * /, constants as inputs")
    print(f"speed: enumerative is {np.median(gp_s) / np.median(enum_s):.0f}x faster (median wall time per task)")


if __name__ == "__main__":
    typer.run(main)
