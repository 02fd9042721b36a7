"""Writes a solve run: its ``runs`` row, ``metrics``, ``predictions`` and ``search.parquet``.

Every answer is checked here, not by the method: parsed, and its exact values on the
whole grid equal the task's (every cell's state compared, not a hash); off the grid
against the task's formula where it has one.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np


def check_answers(tasks, outcomes, grammar, offgrid_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """passed (exact on the whole grid) and offgrid_passed per task."""
    from gensynth.learning.predictions import agree
    from gensynth.universe.syntax import evaluate_float, evaluate_trees

    passed = np.zeros(len(tasks), bool)
    offgrid = np.zeros(len(tasks), bool)
    found = [i for i, o in enumerate(outcomes) if o.tree is not None]
    if not found:
        return passed, offgrid
    got = evaluate_trees([outcomes[i].tree for i in found], grammar)
    for row, i in enumerate(found):
        t = tasks[i].exact
        passed[i] = bool((got.num[row] == t.num[0]).all() and (got.den[row] == t.den[0]).all())
        if tasks[i].offgrid is not None:
            mine = evaluate_float(outcomes[i].tree, grammar, offgrid_points)
            offgrid[i] = passed[i] and bool(agree(mine[None, :], tasks[i].offgrid[None, :])[0])
    return passed, offgrid


def store_run(warehouse: Path, config, grammar, tasks, outcomes, data_version: str, started: dt.datetime,
              model, shared_seconds: float) -> dict:
    """Write the run directory and ingest it; the summary `gensynth solve` prints."""
    from gensynth.learning.predictions import offgrid_points
    from gensynth.learning.train import new_run_id
    from gensynth.results.ingest import INGEST_TIMEOUT_S, ingest_run, runs_root, write_results
    from gensynth.synthesis.tasks import offgrid_values, role_of
    from gensynth.universe.syntax import to_prefix
    from gensynth.version import code_version

    run_id = new_run_id()
    run_dir = runs_root(warehouse) / run_id
    run_dir.mkdir(parents=True)
    offgrid = offgrid_points(grammar, 32, config.seed)
    offgrid_values(tasks, grammar, offgrid)
    passed, off_ok = check_answers(tasks, outcomes, grammar, offgrid)
    texts = [to_prefix(o.tree, grammar) if o.tree is not None else "" for o in outcomes]
    n = len(tasks)
    role = role_of(config)
    predictions = {
        "run_id": [run_id] * n, "view": [config.view] * n, "role": [role] * n,
        "program_id": np.array([t.program_id for t in tasks], np.int32), "decoding": ["search"] * n,
        "sample_index": np.zeros(n, np.int32), "predicted": texts, "parsed": np.array([t != "" for t in texts]),
        "passed": passed, "exact_match": np.array([x == t.prefix and x != "" for x, t in zip(texts, tasks)]),
        "offgrid_passed": off_ok, "logprob": np.full(n, np.nan),
        "candidates": np.array([o.candidates for o in outcomes], np.int64),
        "search_seconds": np.array([o.seconds for o in outcomes], np.float64),
    }
    pred_file = run_dir / "predictions.parquet"
    write_parquet(predictions, pred_file)
    write_parquet({
        "program_id": predictions["program_id"], "status": [o.status for o in outcomes], "how": [o.how for o in outcomes],
        "n_ops": np.array([_size(o.tree) for o in outcomes], np.int32),
        "exact_up_to": np.array([-1 if o.exact_up_to is None else o.exact_up_to for o in outcomes], np.int32),
        "passed": passed, "candidates": predictions["candidates"], "search_seconds": predictions["search_seconds"],
    }, run_dir / "search.parquet")
    finished = dt.datetime.now(dt.timezone.utc)
    (run_dir / "config.json").write_text(json.dumps({"kind": "solve", "config": asdict(config)}, indent=2))
    solve_rate = float(passed.mean())
    row = {
        "run_id": run_id, "view": config.view, "split_sql_hash": None, "role_sizes": {role: n},
        "config": {"method": config.method, **asdict(config), "budget": effective_budget(config),
                   "accounting": accounting(config, shared_seconds, n),
                   "parent_config": model.config if model is not None else None},
        "size": model.size if model is not None else config.method,
        "n_params": model.n_params if model is not None else 0, "training_flops": None,
        "examples_seen": None, "tokens_seen": None, "steps": None,
        "wall_time_s": round((finished - started).total_seconds() + shared_seconds, 3), "device": "cpu x1",
        "code_version": code_version(), "data_version": data_version, "checkpoint": None,
        "status": "finished", "error": None, "started_at": started, "finished_at": finished,
    }
    proven = np.array([o.exact_up_to is not None and o.tree is not None and _size(o.tree) <= o.exact_up_to + 1
                       for o in outcomes])
    metrics = [(0, f"eval/{config.view}/{role}/pass@1", solve_rate),
               (0, f"search/{role}/median_seconds", float(np.median(predictions["search_seconds"]))),
               (0, f"search/{role}/median_candidates", float(np.median(predictions["candidates"]))),
               (0, f"search/{role}/proven_smallest", float(proven.mean()))]
    write_results(run_dir, row, metrics, [pred_file])
    outcome = ingest_run(warehouse, run_dir, timeout=INGEST_TIMEOUT_S)
    return {"run_id": run_id, "tasks": n, "solved": int(passed.sum()), "solve_rate": solve_rate,
            "median_seconds": float(np.median(predictions["search_seconds"])),
            "median_candidates": float(np.median(predictions["candidates"])), "proven_smallest": int(proven.sum()),
            "ingest": outcome.state, "ingest_message": outcome.message, "how": [o.how for o in outcomes],
            "statuses": [o.status for o in outcomes]}


def _size(tree) -> int:
    if tree is None:
        return -1
    return 0 if len(tree) == 1 else 1 + sum(_size(c) for c in tree[1:])


def write_parquet(columns: dict, path: Path) -> None:
    """Write columns (numpy arrays or lists of text) to parquet through an in-memory DuckDB."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("cols", {k: (np.array(v, dtype=str) if isinstance(v, list) else v) for k, v in columns.items()})
        path_s = str(path).replace("'", "''")
        con.execute(f"COPY (SELECT * FROM cols) TO '{path_s}' (FORMAT parquet)")
    finally:
        con.close()


def effective_budget(config: SolveConfig) -> int:
    """The most candidates any task of the run could be charged (runs.config.budget).

    --budget-candidates, or less for a method that declares ``max_candidates(config)``
    (sample_verify evaluates at most --samples candidates).
    """
    from gensynth.synthesis.methods import get_method

    cap = getattr(get_method(config.method), "max_candidates", None)
    return min(config.budget_candidates, int(cap(config))) if cap is not None else config.budget_candidates


def accounting(config: SolveConfig, shared_seconds: float, n_tasks: int) -> dict:
    """How candidates and seconds were counted (runs.config.accounting), the same for every method."""
    return {
        "candidates": "every candidate evaluated on the examples counts once (model samples included, duplicates "
                      "included); a batch is charged up to its first hit",
        "seconds": "wall time from the task's start, model sampling and search included, plus an equal share of "
                   "the run's shared work",
        "shared_seconds": round(shared_seconds, 4),
        "shared_seconds_per_task": round(shared_seconds / max(n_tasks, 1), 6),
        "shared_work": "loading the parent model" if config.parent_run else "none",
    }
