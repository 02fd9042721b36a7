"""Search benchmark: ``python -m benchmarks.search COMMAND [options]`` (prints numbers, asserts nothing).

Tasks come from ``gensynth beyond --ops N`` (``gensynth.synthesis.tasks.draw_beyond``):
uniformly drawn programs of N operators, defined on the whole 8x8 grid and
function-disjoint from a default max-ops 3 warehouse (built in a temporary directory
unless --warehouse is given). All 64 grid points are shown; a pass is an exact match on
the whole grid, checked with gensynth's exact evaluator. Every method is charged by the
one accounting of ``gensynth.synthesis.budget`` (candidates and seconds from the task's
start).

* ``floors``   — enumerative on --tasks tasks at each of --ops (default 100 at 5, 6, 7, 8),
  --seconds per task (default 60): solve rate, median/mean seconds, candidates, share
  proven smallest, peak memory; ``--baseline K`` also runs today's search (commit
  464b3ba, /work/baseline with its own venv) on the first K tasks of each size.
* ``peers``    — gplearn (the ``bench`` extra) on the first --tasks tasks of each size,
  3 seeds, population/generations stated, the same primitives (variables, the grammar's
  constants as input columns, + - * /), next to enumerative on the same tasks.
* ``hybrid``   — hybrid (a trained run's model, --run) against enumerative on the same
  tasks: solve rate against a candidate budget and against a seconds budget, from one
  large-budget run each (under one accounting, a run with budget c solves exactly the
  tasks that it solved within c).

Results are written as JSON to --out (default reports/search/) for the write-up.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from benchmarks.build import machine

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
ROOT = Path(__file__).resolve().parents[1]
BASELINE = Path("/work/baseline")
GPLEARN_FUNCTIONS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


def _ops(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def warehouse_tasks(warehouse: Optional[Path], ops: list[int], n: int, seed: int, tmp: str):
    """The grammar, and {N: [(prefix, exact Values)]} drawn beyond a max-ops 3 warehouse."""
    import duckdb

    from gensynth.manifolds.embed import EmbedConfig
    from gensynth.pipeline import build_warehouse
    from gensynth.synthesis.tasks import draw_beyond
    from gensynth.universe.grammar import grammar_from_meta, load_grammar
    from gensynth.universe.syntax import evaluate_trees, parse_prefix

    if warehouse is None:
        warehouse = Path(tmp) / "bench.duckdb"
        build_warehouse(load_grammar(), 3, warehouse, quiet=True, embed=EmbedConfig())
    con = duckdb.connect(str(warehouse), read_only=True)
    grammar = grammar_from_meta(con)
    known = con.execute("SELECT value_hash FROM functions").fetchnumpy()["value_hash"]
    max_ops = int(con.execute("SELECT value FROM meta WHERE key = 'max_ops'").fetchone()[0])
    con.close()
    tasks = {}
    for k in ops:
        prefixes, _, _ = draw_beyond(grammar, k, n, np.asarray(known, np.int64), seed)
        values = evaluate_trees([parse_prefix(p, grammar) for p in prefixes], grammar)
        tasks[k] = [(p, values.take(np.array([i]))) for i, p in enumerate(prefixes)]
    return grammar, tasks, max_ops, warehouse


def run_method(method, grammar, tasks, seconds: float, candidates: int, charged: float = 0.0) -> list[dict]:
    """One Outcome per task through gensynth.synthesis.solve.solve_task (one Meter per task)."""
    from gensynth.synthesis.budget import Budget
    from gensynth.synthesis.solve import Task, problem_of, solve_task
    from gensynth.universe.syntax import evaluate_trees

    points = np.arange(grammar.n_points)
    out = []
    for i, (prefix, exact) in enumerate(tasks):
        o = solve_task(method, problem_of(Task(i, prefix, exact), grammar, points), Budget(candidates, seconds, 10), charged)
        ok = False
        if o.tree is not None:
            v = evaluate_trees([o.tree], grammar)
            ok = bool((v.num == exact.num).all() and (v.den == exact.den).all())
        out.append({"prefix": prefix, "solved": ok, "candidates": o.candidates, "seconds": o.seconds, "status": o.status,
                    "how": o.how, "n_ops": _size(o.tree), "exact_up_to": o.exact_up_to})
    return out


def _size(tree) -> int | None:
    if tree is None:
        return None
    return 0 if len(tree) == 1 else 1 + sum(_size(c) for c in tree[1:])


def summary(rows: list[dict]) -> dict:
    solved = [r for r in rows if r["solved"]]
    proven = [r for r in solved if r.get("exact_up_to") is not None and r["n_ops"] <= r["exact_up_to"] + 1]
    sec = np.array([r["seconds"] for r in rows])
    return {"tasks": len(rows), "solve_rate": len(solved) / max(len(rows), 1),
            "median_s_solved": float(np.median([r["seconds"] for r in solved])) if solved else None,
            "mean_s": float(sec.mean()) if len(sec) else None,
            "median_candidates_solved": float(np.median([r["candidates"] for r in solved])) if solved else None,
            "proven_smallest": len(proven) / max(len(solved), 1)}


def _print_table(title: str, rows: list[tuple]) -> None:
    print(f"\n{title}")
    for r in rows:
        print("  " + " | ".join(str(x) for x in r))


def _header(out: Path) -> dict:
    info = dict(machine())
    for k, v in info.items():
        print(f"{k:>26}: {v}")
    out.mkdir(parents=True, exist_ok=True)
    return info


@app.command()
def floors(warehouse: Optional[Path] = None, ops: str = "5,6,7,8", tasks: int = 100, seconds: float = 60.0,
           seed: int = 0, baseline: int = 0, baseline_seconds: float = 30.0, out: Path = ROOT / "reports" / "search") -> None:
    """Enumerative search on tasks beyond the universe: the issue's floors, and today's search beside it."""
    from gensynth.synthesis.enumerative import Enumerative
    from gensynth.synthesis.methods import SolveContext
    from gensynth.synthesis.solve import SolveConfig

    info = _header(out)
    with tempfile.TemporaryDirectory() as tmp:
        grammar, by_n, max_ops, _ = warehouse_tasks(warehouse, _ops(ops), tasks, seed, tmp)
        method = Enumerative(SolveContext(SolveConfig(method="enumerative", view="tasks_beyond"), grammar))
        result = {"machine": info, "max_ops_warehouse": max_ops, "seconds": seconds, "sizes": {}}
        for k, task_list in by_n.items():
            t = time.perf_counter()
            rows = run_method(method, grammar, task_list, seconds, 10**12)
            entry = {"enumerative": rows, "enumerative_summary": summary(rows), "wall_s": time.perf_counter() - t}
            if baseline:
                entry["baseline"] = run_baseline(task_list[:baseline], baseline_seconds, tmp)
                entry["baseline_summary"] = summary(entry["baseline"])
            result["sizes"][k] = entry
            print(f"N={k}: {json.dumps(entry['enumerative_summary'])}" +
                  (f"  baseline: {json.dumps(entry['baseline_summary'])}" if baseline else ""), flush=True)
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"peak RSS of the benchmark process (every search in it): {result['peak_rss_gb']:.2f} GB")
    (out / "floors.json").write_text(json.dumps(result, indent=1))


def run_baseline(task_list, seconds: float, tmp: str) -> list[dict]:
    """Today's search (commit 464b3ba, /work/baseline and its venv) on the same tasks, in a subprocess."""
    src, dst = Path(tmp) / "baseline_tasks.json", Path(tmp) / "baseline_out.json"
    src.write_text(json.dumps([{"prefix": p} for p, _ in task_list]))
    subprocess.run([str(BASELINE / ".venv" / "bin" / "python"), str(ROOT / "benchmarks" / "search_baseline.py"),
                    str(src), str(dst), str(seconds)], cwd=BASELINE, check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(BASELINE)})
    rows = json.loads(dst.read_text())
    for (p, _), r in zip(task_list, rows):
        r["prefix"] = p
    return rows


# --- gplearn ------------------------------------------------------------------------------

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


@app.command()
def peers(warehouse: Optional[Path] = None, ops: str = "5,6,7,8", tasks: int = 20, seeds: int = 3,
          population: int = 1000, generations: int = 20, seconds: float = 60.0, seed: int = 0,
          out: Path = ROOT / "reports" / "search") -> None:
    """gplearn (3 seeds) and enumerative on the same tasks beyond the universe."""
    from gensynth.synthesis.enumerative import Enumerative
    from gensynth.synthesis.methods import SolveContext
    from gensynth.synthesis.solve import SolveConfig
    from gensynth.universe.syntax import ParseError, evaluate_trees, parse_prefix

    info = _header(out)
    with tempfile.TemporaryDirectory() as tmp:
        grammar, by_n, _, _ = warehouse_tasks(warehouse, _ops(ops), tasks, seed, tmp)
    grid = np.array([[float(c) for c in p] for p in grammar.grid_points])
    consts = np.array([float(c) for c in grammar.constants])
    features = np.hstack([grid, np.tile(consts, (len(grid), 1))])  # constants as input columns
    feature_tokens = list(grammar.variables) + list(grammar.constant_tokens)
    method = Enumerative(SolveContext(SolveConfig(method="enumerative", view="tasks_beyond"), grammar))
    result = {"machine": info, "population": population, "generations": generations, "seeds": seeds, "sizes": {}}
    for k, task_list in by_n.items():
        gp = []
        for prefix, exact in task_list:
            for s in range(seeds):
                t = time.perf_counter()
                found = run_gplearn(features, exact.flt[0], feature_tokens, s, population, generations)
                took = time.perf_counter() - t
                ok = False
                if found:
                    try:
                        v = evaluate_trees([parse_prefix(found, grammar)], grammar)
                        ok = bool((v.num == exact.num).all() and (v.den == exact.den).all())
                    except ParseError:
                        ok = False
                gp.append({"prefix": prefix, "seed": s, "solved": ok, "seconds": took, "found": found})
        enum = run_method(method, grammar, task_list, seconds, 10**12)
        gp_rate = float(np.mean([r["solved"] for r in gp]))
        any_seed = float(np.mean([any(r["solved"] for r in gp if r["prefix"] == p) for p, _ in task_list]))
        entry = {"gplearn": gp, "enumerative": enum, "gplearn_solve_rate_per_run": gp_rate, "gplearn_any_seed": any_seed,
                 "gplearn_median_s": float(np.median([r["seconds"] for r in gp])), "enumerative_summary": summary(enum)}
        result["sizes"][k] = entry
        print(f"N={k}: gplearn {gp_rate:.1%} per run ({any_seed:.1%} any of {seeds} seeds), median "
              f"{entry['gplearn_median_s']:.2f} s/run; enumerative {json.dumps(summary(enum))}", flush=True)
    (out / "peers.json").write_text(json.dumps(result, indent=1))


@app.command()
def hybrid(run: str = typer.Option(..., help="A finished training run of the warehouse (its model guides the hybrid)."),
           warehouse: Path = typer.Option(..., help="The warehouse the run was trained on (max-ops 3)."),
           control: Optional[str] = typer.Option(None, help="A run whose model is untrained (e.g. 1 step): the same hybrid "
                                                           "guided by a model that knows nothing, as a control."),
           ops: str = "5,6,7,8", tasks: int = 25, seconds: float = 60.0, candidates: int = 50_000_000,
           samples: int = 32, seed: int = 0, out: Path = ROOT / "reports" / "search") -> None:
    """Hybrid vs enumerative at equal budgets (one accounting) on the same tasks."""
    import torch

    from gensynth.results.ingest import runs_root
    from gensynth.synthesis.enumerative import Enumerative
    from gensynth.synthesis.hybrid import Hybrid
    from gensynth.synthesis.methods import SolveContext
    from gensynth.synthesis.neural import load_proposer
    from gensynth.synthesis.solve import SolveConfig

    torch.set_num_threads(1)
    info = _header(out)
    with tempfile.TemporaryDirectory() as tmp:
        grammar, by_n, _, _ = warehouse_tasks(warehouse, _ops(ops), tasks, seed, tmp)
    import models.lit  # noqa: F401 - import torch and Lightning before timing the loads: shared by both models

    config = SolveConfig(method="hybrid", view="tasks_beyond", samples=samples, parent_run=run)
    methods, load = {"enumerative": Enumerative(SolveContext(config, grammar))}, {}
    for name, run_id in (("hybrid", run), ("hybrid_control", control)):
        if run_id:
            t = time.perf_counter()
            model = load_proposer(runs_root(warehouse), run_id, seed, 1.0)
            load[name] = time.perf_counter() - t
            methods[name] = Hybrid(SolveContext(config, grammar, model))
    result = {"machine": info, "run": run, "control": control, "load_seconds": load, "samples": samples, "sizes": {},
              "models": {n: {"size": m.model.size, "n_params": m.model.n_params} for n, m in methods.items() if n != "enumerative"}}
    for k, task_list in by_n.items():
        entry = {}
        for name, method in methods.items():
            share = load.get(name, 0.0) / (len(task_list) * len(by_n))  # model loading, in equal shares
            entry[name] = run_method(method, grammar, task_list, seconds, candidates, share)
            entry[name + "_summary"] = summary(entry[name])
        result["sizes"][k] = entry
        print(f"N={k}: " + "; ".join(f"{m} {json.dumps(entry[m + '_summary'])}" for m in methods), flush=True)
    (out / "hybrid.json").write_text(json.dumps(result, indent=1))


BUDGETS = (300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 10_000_000)
SECONDS = (0.03, 0.1, 0.3, 1, 3, 10, 60)


def _curve(rows: list[dict], key: str, limits) -> list[str]:
    """Solve rate within each limit (a task counts where it was solved with at most that much spent)."""
    spent = [r[key] for r in rows if r["solved"]]
    return [f"{sum(x <= b for x in spent) / max(len(rows), 1):.0%}" for b in limits]


@app.command()
def report(out: Path = ROOT / "reports" / "search") -> None:
    """Markdown tables from the JSON files of floors, peers and hybrid."""
    lines = []
    if (out / "floors.json").exists():
        d = json.loads((out / "floors.json").read_text())
        lines += ["| operators (as drawn) | tasks | enumerative solved | median s (solved) | mean s | median candidates |"
                  " proven smallest | today (464b3ba): solved, median s |", "|" + " --- |" * 8]
        for k, e in d["sizes"].items():
            s, b = e["enumerative_summary"], e.get("baseline_summary")
            base = f"{b['solve_rate']:.0%} of {b['tasks']} ({b['median_s_solved'] or 0:.2f} s)" if b else "–"
            lines.append(f"| {k} | {s['tasks']} | {s['solve_rate']:.0%} | {s['median_s_solved']:.3f} | {s['mean_s']:.3f} | "
                         f"{s['median_candidates_solved']:,.0f} | {s['proven_smallest']:.0%} | {base} |")
        lines.append(f"\npeak RSS {d['peak_rss_gb']:.2f} GB; {d['seconds']:.0f} s per task; load {d['machine'].get('load average (1/5/15 min)')}\n")
    if (out / "peers.json").exists():
        d = json.loads((out / "peers.json").read_text())
        lines += [f"| operators | tasks | gplearn solved per run ({d['seeds']} seeds) | any seed | median s/run | "
                  "enumerative solved | enumerative median s |", "|" + " --- |" * 7]
        for k, e in d["sizes"].items():
            s = e["enumerative_summary"]
            lines.append(f"| {k} | {s['tasks']} | {e['gplearn_solve_rate_per_run']:.0%} | {e['gplearn_any_seed']:.0%} | "
                         f"{e['gplearn_median_s']:.2f} | {s['solve_rate']:.0%} | {s['median_s_solved']:.3f} |")
        lines.append(f"\ngplearn: population {d['population']}, generations {d['generations']}\n")
    if (out / "hybrid.json").exists():
        d = json.loads((out / "hybrid.json").read_text())
        names = [m for m in ("enumerative", "hybrid", "hybrid_control") if m in next(iter(d["sizes"].values()))]
        for key, limits, unit in (("candidates", BUDGETS, "candidates"), ("seconds", SECONDS, "seconds")):
            lines += [f"| operators | method | " + " | ".join(f"≤ {b:,} {unit}" for b in limits) + " |",
                      "|" + " --- |" * (len(limits) + 2)]
            for k, e in d["sizes"].items():
                for m in names:
                    lines.append(f"| {k} | {m} | " + " | ".join(_curve(e[m], key, limits)) + " |")
            lines.append("")
    print("\n".join(lines))
    (out / "tables.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.setrecursionlimit(10000)
    app()
