"""Stage: score a trained run's checkpoint on a split's roles (``gensynth eval``, and the end of training).

"Scoring" is the model side: decode each role's tasks and check the answers by execution
(``score_run``, ``score_role``). "Evaluation" of programs on the grid (exact values,
``gensynth.universe.functions.evaluate_programs``) is the universe's, a different thing.

Decoding and the checks by execution are in ``gensynth.learning.predictions``; this
module picks the checkpoint and the roles, writes ``evals/<view>/`` in the run
directory and publishes the run's results.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from gensynth.errors import GensynthError
from gensynth.learning.config import RunConfig
from gensynth.learning.predictions import EvalSettings
from gensynth.learning.records import publish, run_row
from gensynth.learning.rundirs import RunSummary, read_json, write_json, run_dir_for, run_lock

START_INGEST_TIMEOUT_S = 5.0  # registering 'running' must not hold up training for long



def check_eval_roles(requested, available: dict[str, int], view: str) -> list[str]:
    if not requested:
        return sorted(available)
    missing = [r for r in requested if r not in available]
    if missing:
        raise GensynthError(f"--eval-roles {', '.join(missing)}: no such role in '{view}' (roles: {', '.join(sorted(available))}).")
    return list(requested)


# ---------------------------------------------------------------------- evaluation


def score_into(run_dir: Path, config: RunConfig, resolved: dict, ckpt: Path, view: str, snapshot_dir: Path,
                   settings: EvalSettings) -> dict[str, dict[str, float | None]]:
    """Evaluate a checkpoint on a snapshot's roles; write evals/<view>/{predictions.parquet, scores.json}."""
    import torch

    from gensynth.learning.snapshot import Snapshot
    from gensynth.learning.predictions import score_role, write_predictions
    from gensynth.learning.rundirs import load_model

    snapshot = Snapshot.load(snapshot_dir)
    torch.set_num_threads(resolved.get("threads") or config.runtime.resolved_threads(config.training.devices))
    device = torch.device("cuda" if config.training.accelerator == "gpu" and torch.cuda.is_available() else "cpu")
    model, grammar, _ = load_model(run_dir, ckpt, device)
    roles = settings.roles if settings.roles else tuple(sorted(snapshot.roles))
    roles = [r for r in roles if r in snapshot.roles]
    results = [score_role(model, snapshot, r, grammar, settings, config.data.n_examples, config.data.seed,
                             device, run_id=run_dir.name, view=view) for r in roles]
    out = run_dir / "evals" / view
    out.mkdir(parents=True, exist_ok=True)
    write_predictions(results, out / ".predictions.tmp.parquet")
    os.replace(out / ".predictions.tmp.parquet", out / "predictions.parquet")
    scores = {r.role: r.scores for r in results}
    write_json(out / "scores.json", {"view": view, "checkpoint": ckpt.name, "settings": asdict(settings),
                                      "step": read_json(run_dir / "state.json", {}).get("steps", 0), "scores": scores})
    return scores


def check_same_universe(warehouse: Path, run_id: str, state: dict) -> None:
    """Refuse a run of another universe (the warehouse was rebuilt since it trained): its program
    ids may mean other programs here, and ingestion would refuse its evaluation after the work."""
    from gensynth.warehouse import connect_retrying

    con = connect_retrying(warehouse, read_only=True)
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
    finally:
        con.close()
    version = row[0] if row else None
    if version != state.get("data_version"):
        raise GensynthError(
            f"Run {run_id} was trained on warehouse data version {state.get('data_version')}, but '{warehouse}' is now "
            f"version {version} (it was rebuilt): its program ids may mean other programs, so it cannot be evaluated "
            f"here. Evaluate it on a warehouse of its universe (same grammar and --max-ops), or train a new run; "
            f"nothing was changed.")


def score_run(warehouse: Path, run_id: str, view: str | None = None, settings: EvalSettings | None = None,
             quiet: bool = False, replace: bool = False) -> RunSummary:
    """Evaluate a finished run's checkpoint on a split's roles (its own split by default).

    Adds an evaluation: earlier evaluations of the view are kept (``evals/<view>/earlier/``)
    unless ``replace``, which deletes them once the new one is written (a failed evaluation
    loses nothing). On another split than the run's own, each prediction records whether
    the run trained on its program or function
    (``gensynth.results.evaluations.mark_training_overlap``; counts in scores.json).
    """
    from gensynth.results.evaluations import drop_earlier, keep_current, mark_training_overlap, stamp

    from gensynth.learning.snapshot import check_split, read_snapshot
    from gensynth.results.ingest import INGEST_TIMEOUT_S, connect_retrying, sync

    warehouse = Path(warehouse)
    run_dir = run_dir_for(warehouse, run_id)
    state = read_json(run_dir / "state.json", {})
    if "data" not in read_json(run_dir / "config.json", {}):
        raise GensynthError(f"Run {run_id} is not a training run; `gensynth eval` evaluates trained models.")
    if state.get("status") != "finished":
        raise GensynthError(f"Run {run_id} is not finished (status '{state.get('status')}'); "
                            f"finish it first with `gensynth train --resume {run_id}`.")
    cfg = read_json(run_dir / "config.json")
    config = RunConfig.from_json(cfg)
    own_view = view is None or view in (config.data.view, config.data.view.removeprefix("split_"))
    settings = settings or (config.eval if own_view else dataclasses.replace(config.eval, roles=None))
    check_same_universe(warehouse, run_id, state)  # before any work: its results could not be stored
    with run_lock(run_dir):
        if own_view:
            view, snap_dir = config.data.view, run_dir / "snapshot"
            if settings.roles:
                check_eval_roles(settings.roles, {r: 1 for r in read_json(snap_dir / "meta.json")["roles"]}, view)
        else:
            con = connect_retrying(warehouse, read_only=True)
            try:
                split = check_split(con, view, require_train=False)
                check_eval_roles(settings.roles, split.roles, split.view)
                snapshot = read_snapshot(con, split, seq_len=cfg["resolved"]["seq_len"], roles=list(settings.roles) if settings.roles else None)
            finally:
                con.close()
            view = split.view
            snap_dir = run_dir / "evals" / view / "snapshot"
            if snap_dir.exists():
                shutil.rmtree(snap_dir)
            snapshot.write(snap_dir)
        ckpt = run_dir / state["checkpoint_path"]
        view_dir = run_dir / "evals" / view
        keep_current(view_dir)  # the current evaluation moves to earlier/ and stays there until the new one is written
        scores = score_into(run_dir, config, cfg["resolved"], ckpt, view, snap_dir, settings)
        overlap = None if own_view else mark_training_overlap(view_dir / "predictions.parquet", run_dir / "snapshot", snap_dir)
        stamp(view_dir, overlap=overlap)
        if replace:  # --replace: the view's earlier evaluations go, now that the new one is complete
            drop_earlier(view_dir)
        outcome = publish(warehouse, run_dir, timeout=INGEST_TIMEOUT_S)
    sync(warehouse, timeout=START_INGEST_TIMEOUT_S)
    row = run_row(run_dir)
    return RunSummary(run_id, run_dir, "finished", scores, outcome.state, outcome.message, row["n_params"],
                      row["steps"] or 0, row["wall_time_s"], view, row["size"], row["checkpoint"])
