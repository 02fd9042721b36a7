"""Runs "today's" enumerative search (a checkout of commit 464b3ba and its venv) on given tasks.

``/work/baseline/.venv/bin/python benchmarks/search_baseline.py TASKS.json OUT.json SECONDS``
(run from /work/baseline so that its own gensynth is imported). TASKS.json is a list of
{"prefix": ...}; OUT.json gets one {"solved", "candidates", "seconds", "n_ops"} per task.
Used by ``python -m benchmarks.search`` for the before/after columns; asserts nothing.
"""

import json
import sys
import time

import numpy as np


def main() -> None:
    from gensynth.grammar import load_grammar
    from gensynth.search import Budget, solve_enumerative
    from gensynth.syntax import evaluate_trees, parse_prefix

    tasks = json.loads(open(sys.argv[1]).read())
    seconds = float(sys.argv[3])
    g = load_grammar()
    points = np.arange(g.n_points)
    out = []
    for task in tasks:
        target = evaluate_trees([parse_prefix(task["prefix"], g)], g).flt[0]
        t = time.perf_counter()
        r = solve_enumerative(g, points, target, Budget(candidates=10**12, seconds=seconds, max_ops=10))
        out.append({"solved": r.prefix is not None, "candidates": int(r.candidates), "seconds": time.perf_counter() - t,
                    "n_ops": r.n_ops, "status": r.status})
        print(json.dumps(out[-1]), flush=True)
    open(sys.argv[2], "w").write(json.dumps(out))


if __name__ == "__main__":
    main()
