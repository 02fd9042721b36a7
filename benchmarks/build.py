"""Benchmarks of the pipeline's stages: ``python -m benchmarks.build <stage>``.

``build`` builds the full default universe (max-ops 4: 11,404,105 programs) into a
temporary directory and prints wall time per stage, programs/s and peak RSS, then times
two naive per-program evaluators on a random sample of the same programs:

* ``fraction``: plain Python recursion over each program's tree with ``Fraction``
  arithmetic (exact, like the build; undefined on division by an exact zero) -- the
  honest naive baseline for the evaluation stage;
* ``numpy-float``: the same recursion with one float64 numpy call per node over the
  whole grid (fast but inexact: the answer the build refuses to give).

Numbers are printed, never asserted by tests; the floors from issue 2 are shown next to
them. Other stages add a command to ``app`` (``embed``, ``splits``, ...).
"""

from __future__ import annotations

import os
import platform
import resource
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="gensynth benchmarks: one command per pipeline stage.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)



@app.callback()
def main() -> None:
    """Each command benchmarks one stage and prints its numbers (nothing is asserted)."""


# Floors from issue 2, on a 2-core machine.
BUILD_WALL_FLOOR_S = 30.0
BUILD_RSS_FLOOR_GB = 4.0
EVAL_SPEEDUP_FLOOR = 50.0


# --- machine and memory -------------------------------------------------------------


def machine() -> list[tuple[str, str]]:
    """nproc, CPU model, RAM, load and library versions, for the report's header."""
    import duckdb
    import numpy as np

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return [("nproc", str(nproc)), ("cpu", cpu), ("ram", ram), ("load average (1/5/15 min)", load),
            ("python", platform.python_version()), ("numpy", np.__version__), ("duckdb", duckdb.__version__)]


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far (ru_maxrss, KiB on Linux), in GB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def current_rss_gb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return float("nan")


# --- naive evaluators ---------------------------------------------------------------


def parse_prefix_tokens(prefix: str, arity: dict[str, int]) -> tuple:
    """Prefix text to a tree of tokens ``(token, child, ...)``."""
    tokens = prefix.split()
    pos = 0

    def node() -> tuple:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        return (tok, *[node() for _ in range(arity.get(tok, 0))])

    return node()


def fraction_evaluator(grammar):
    """``evaluate(tree) -> list`` of Fractions (None where undefined), one per grid point."""
    points = grammar.grid_points
    env = {v: [p[i] for p in points] for i, v in enumerate(grammar.variables)}
    env |= {t: [c] * len(points) for t, c in zip(grammar.constant_tokens, grammar.constants)}
    binary = {"add": lambda a, b: a + b, "subtract": lambda a, b: a - b, "multiply": lambda a, b: a * b,
              "divide": lambda a, b: None if b == 0 else a / b}
    unary = {"negative": lambda a: -a}
    fns = {op.token: (binary if op.arity == 2 else unary)[op.numpy] for op in grammar.operators}

    def evaluate(tree: tuple) -> list:
        tok = tree[0]
        if len(tree) == 1:
            return env[tok]
        fn = fns[tok]
        args = [evaluate(k) for k in tree[1:]]
        return [None if None in vals else fn(*vals) for vals in zip(*args)]

    return evaluate


def numpy_float_evaluator(grammar):
    """``evaluate(tree) -> (G,) float64`` with one numpy ufunc call per node."""
    import numpy as np

    pts = np.array([[float(c) for c in p] for p in grammar.grid_points])
    env = {v: pts[:, i].copy() for i, v in enumerate(grammar.variables)}
    env |= {t: np.full(len(pts), float(c)) for t, c in zip(grammar.constant_tokens, grammar.constants)}
    ufuncs = {op.token: op.ufunc for op in grammar.operators}

    def evaluate(tree: tuple):
        if len(tree) == 1:
            return env[tree[0]]
        return ufuncs[tree[0]](*[evaluate(k) for k in tree[1:]])

    def evaluate_quietly(tree: tuple):
        with np.errstate(all="ignore"):  # division by zero gives inf/NaN, as a float evaluator does
            return evaluate(tree)

    return evaluate_quietly


def time_evaluator(evaluate, trees: list[tuple], budget_s: float) -> tuple[int, float, list]:
    """Evaluate trees in order until done or ``budget_s`` is spent: (count, seconds, results)."""
    results = []
    start = time.perf_counter()
    deadline = start + budget_s
    for i, tree in enumerate(trees):
        results.append(evaluate(tree))
        if (i & 255) == 255 and time.perf_counter() > deadline:
            break
    return len(results), time.perf_counter() - start, results


# --- build ----------------------------------------------------------------------------


@app.command()
def build(
    max_ops: int = typer.Option(4, "--max-ops", help="Universe size (4 = the full 11.4M-program default universe)."),
    sample: int = typer.Option(200_000, "--sample", help="Random programs timed with the naive evaluators."),
    budget_s: float = typer.Option(30.0, "--budget-s", help="Time limit per naive evaluator; it reports how many it finished."),
    seed: int = typer.Option(0, "--seed", help="Seed of the program sample."),
    workdir: Optional[Path] = typer.Option(None, "--workdir", help="Directory for the temporary warehouse (default: the system temp dir)."),
) -> None:
    """Full default universe: stage times, programs/s, peak RSS, and the naive-evaluator ratio."""
    import duckdb
    import numpy as np

    from gensynth.pipeline import build_warehouse
    from gensynth.universe.grammar import load_grammar

    grammar = load_grammar()
    print("gensynth bench build")
    _print_rows("machine", machine())
    rss_before = current_rss_gb()
    with tempfile.TemporaryDirectory(prefix="gensynth-bench-", dir=workdir) as tmp:
        path = Path(tmp) / "bench.duckdb"
        start = time.perf_counter()
        summary = build_warehouse(grammar, max_ops, path, quiet=True)
        wall = time.perf_counter() - start
        peak = peak_rss_gb()
        n = summary.programs
        con = duckdb.connect(str(path), read_only=True)
        overflow = con.execute("SELECT value FROM meta WHERE key = 'overflow_cells'").fetchone()[0]
        size_gb = path.stat().st_size / 1e9
        rows = [(stage, f"{sec:8.2f} s   {n / sec:>14,.0f} programs/s") for stage, sec in summary.timings.items()]
        rows.append(("total (build_warehouse wall)", f"{wall:8.2f} s   {n / wall:>14,.0f} programs/s"))
        _print_rows(f"build: max-ops {max_ops}, {n:,} programs, {summary.functions:,} functions "
                    f"({summary.nonfinite_functions:,} non-finite), {summary.distinct_evaluations:,} distinct "
                    f"evaluations, {overflow} int64-overflow cells, file {size_gb:.2f} GB", rows)
        _print_rows("memory", [
            ("RSS before build (imports)", f"{rss_before:.2f} GB"),
            ("peak RSS (ru_maxrss: whole process peak, includes the imports)", f"{peak:.2f} GB"),
        ])

        # A random sample of programs with their stored outputs, for the naive evaluators.
        ids = np.sort(np.random.default_rng(seed).choice(n, min(sample, n), replace=False)).astype(np.int32)
        con.register("sample_ids", {"program_id": ids})
        got = con.execute("""
            SELECT p.prefix, f.outputs FROM sample_ids s JOIN programs p USING (program_id)
            JOIN functions f USING (function_id) ORDER BY s.program_id""").fetchall()
        con.close()
    arity = {op.token: op.arity for op in grammar.operators}
    trees = [parse_prefix_tokens(prefix, arity) for prefix, _ in got]
    stored = np.array([o for _, o in got], dtype=np.float64)

    eval_s = summary.timings.get("evaluate", float("nan"))
    stage_rate = n / eval_s
    naive = []
    for name, make in [("fraction (exact, per-program recursion)", fraction_evaluator),
                       ("numpy-float (float64, one ufunc call per node)", numpy_float_evaluator)]:
        done, sec, results = time_evaluator(make(grammar), trees, budget_s)
        rate = done / sec
        if name.startswith("fraction"):
            values = np.array([[np.nan if v is None else float(v) for v in r] for r in results])
            same = np.array_equal(values, stored[:done], equal_nan=True)
            check = f"outputs equal the warehouse's for all {done:,}" if same else "OUTPUTS DIFFER FROM THE WAREHOUSE"
        else:
            values, exact = np.array(results), stored[:done]
            undefined = np.isnan(exact)
            wrong_domain = (undefined != ~np.isfinite(values)).any(axis=1)  # defined where exact is not, or vice versa
            inexact = (~undefined & np.isfinite(values) & (values != exact)).any(axis=1)
            check = (f"{wrong_domain.mean():.2%} of programs wrong about where they are defined, "
                     f"{inexact.mean():.1%} off in the last bits somewhere")
        timed = f"{done:,} of {len(trees):,} sampled" + ("" if done == len(trees) else f" (stopped at the {budget_s:.0f} s budget)")
        naive.append((name, done, sec, rate, timed, check))
    _print_rows(f"naive evaluators on a random sample of {len(trees):,} programs (seed {seed})", [
        (name, f"{timed}: {sec:.2f} s, {rate:,.0f} programs/s; {check}") for name, done, sec, rate, timed, check in naive])

    ratio_fraction = stage_rate / naive[0][3]
    ratio_float = stage_rate / naive[1][3]
    total_floor = sum(summary.timings.values())
    _print_rows("evaluation stage vs naive", [
        ("evaluate stage", f"{stage_rate:,.0f} programs/s ({n:,} programs in {eval_s:.2f} s)"),
        ("speed-up vs fraction (the baseline)", f"{ratio_fraction:,.0f}x"),
        ("speed-up vs numpy-float", f"{ratio_float:,.1f}x"),
    ])
    if max_ops == 4:
        _print_rows("floors (issue 2, 2-core machine)", [
            ("full 4-op build <= 30 s wall", _verdict(wall <= BUILD_WALL_FLOOR_S, f"{wall:.1f} s (stages {total_floor:.1f} s)")),
            ("peak RSS <= 4 GB", _verdict(peak <= BUILD_RSS_FLOOR_GB, f"{peak:.2f} GB")),
            ("evaluate >= 50x naive (fraction)", _verdict(ratio_fraction >= EVAL_SPEEDUP_FLOOR, f"{ratio_fraction:,.0f}x")),
        ])


def _verdict(ok: bool, value: str) -> str:
    return f"{value}  {'ok' if ok else 'BELOW FLOOR'}"


def _print_rows(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{title}")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


if __name__ == "__main__":
    app()
