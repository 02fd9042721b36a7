"""The run's rows for the results tables: its ``runs`` row and its ``metrics``, and publishing them.

``publish`` writes the run directory's results folder (``gensynth.results.ingest.write_results``)
and tries to ingest it into the warehouse.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

from gensynth.learning.config import RunConfig, TrainSettings
from gensynth.learning.rundirs import read_json
from gensynth.version import code_version



# ------------------------------------------------------------------ results rows


def run_row(run_dir: Path) -> dict:
    """The run's `runs` row, from its config.json and state.json."""
    from gensynth.learning.snapshot import Snapshot, examples_and_tokens_seen
    from models.flops import training_flops

    cfg = read_json(run_dir / "config.json")
    state = read_json(run_dir / "state.json")
    config = RunConfig.from_json(cfg)
    mc = model_config_of(cfg)
    steps = int(state.get("steps") or 0)
    snapshot = Snapshot.load(run_dir / "snapshot")
    examples, tokens = examples_and_tokens_seen(snapshot, config.data.batch_size, config.data.seed, steps,
                                                targets=config.data.targets)
    flops = training_flops(mc, examples, dec_len=snapshot.seq_len - 1, enc_len=mc.n_points)
    t = config.training
    return {
        "run_id": run_dir.name,
        "view": config.data.view,
        "split_sql_hash": snapshot.meta.get("split_sql_hash"),
        "role_sizes": state["role_sizes"],
        "config": cfg,
        "arch": config.model.arch,
        "size": config.model.name,
        "n_params": _n_params(mc),
        "training_flops": float(flops),
        "examples_seen": examples,
        "tokens_seen": tokens,
        "steps": steps,
        "wall_time_s": round(float(state.get("wall_time_s", 0.0)), 3),
        "attempts": len(state.get("attempts", [])),
        "killed_attempts": sum(a.get("ended") == "killed" for a in state.get("attempts", [])),
        "device": _device_name(t),
        "code_version": code_version(),
        "data_version": state["data_version"],
        "checkpoint": state.get("checkpoint"),
        "status": state["status"],
        "error": state.get("error"),
        "started_at": state["started_at"],
        "finished_at": state.get("finished_at") if state["status"] != "running" else None,
    }


def model_config_of(cfg: dict):
    """The resolved model config recorded in a run's config.json, as its architecture's config dataclass."""
    from models.registry import get

    return get(cfg["resolved"].get("arch", "grid64")).config_class(**cfg["resolved"]["model"])


def _n_params(mc) -> int:
    """Parameter count of a config, computed once per config (building a model is cheap here)."""
    from models.registry import of_config

    key = type(mc).__name__ + json.dumps(asdict(mc), sort_keys=True)
    if key not in _N_PARAMS:
        _N_PARAMS[key] = of_config(mc).build(mc).num_params()
    return _N_PARAMS[key]


_N_PARAMS: dict[str, int] = {}


def _device_name(t: TrainSettings) -> str:
    if t.accelerator == "gpu":
        import torch

        name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "gpu"
    else:
        name = "cpu"
    nodes = t.num_nodes
    return f"{name} x{t.devices}" + (f" x {nodes} nodes" if nodes > 1 else "") + (" (ddp)" if t.devices * nodes > 1 else "")


def metric_rows(run_dir: Path) -> list[tuple[int, str, float | None]]:
    """Training curves (CSV logs of every attempt, later attempts replacing the steps they redid) and eval scores."""
    state = read_json(run_dir / "state.json", {})
    attempts = state.get("attempts", [])
    rows: dict[tuple[int, str], float | None] = {}
    for i, _a in enumerate(attempts, start=1):
        path = run_dir / "logs" / f"attempt-{i}" / "metrics.csv"
        if not path.exists():
            continue
        until = attempts[i]["start_step"] if i < len(attempts) else None
        with open(path, newline="") as fh:
            for rec in csv.DictReader(fh):
                step = int(float(rec.get("step") or 0))
                if until is not None and step > until:
                    continue
                for name, value in rec.items():
                    if name in ("step", "epoch") or value in ("", None):
                        continue
                    rows[(step, "lr" if name.startswith("lr-") else name)] = float(value)
    for scores_file in sorted((run_dir / "evals").glob("*/scores.json")):
        s = read_json(scores_file)
        for role, metrics in s["scores"].items():
            for name, value in metrics.items():
                rows[(int(s.get("step") or 0), f"eval/{s['view']}/{role}/{name}")] = value
    return [(step, name, value) for (step, name), value in sorted(rows.items())]


def publish(warehouse: Path, run_dir: Path, timeout: float):
    """Write the run's results folder from its directory and try to ingest it."""
    from gensynth.results.evaluations import evaluation_dirs, stamp
    from gensynth.results.ingest import ingest_run, write_results

    evals = evaluation_dirs(run_dir)  # every evaluation, earlier ones included: evaluations add
    for d in evals:
        stamp(d)
    write_results(run_dir, run_row(run_dir), metric_rows(run_dir), [], evaluations=evals)
    return ingest_run(warehouse, run_dir, timeout=timeout)
