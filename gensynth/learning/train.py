"""Stage: train a PBE transformer on a split's train role; write runs, metrics, predictions.

One run, start to finish (``train``):

1. check everything that can be checked before writing anything (devices, the split,
   the model config): bad input fails here with a clear error and leaves no trace;
2. snapshot the split through one short read-only connection (``gensynth.learning.snapshot``) into a
   new run directory ``runs/<run_id>/`` next to the warehouse, with ``config.json``;
3. register the run as 'running' (results folder + a short ingest attempt);
4. fit with Lightning: checkpoints every ``checkpoint_every`` steps (``last.ckpt``) and
   on the best val/loss (``best.ckpt``), CSV logs per attempt under ``logs/``;
5. evaluate the chosen checkpoint on every role of the split (``gensynth.learning.predictions``);
6. write the results folder ('finished') and ingest it (``gensynth.results.ingest``); ingest
   any other pending runs.

A failure in 4-6 records the run as 'failed' with its error. A run killed outright stays
'running' in the warehouse, is never counted, and ``resume`` continues it from its last
checkpoint to the same final step (its rows are then replaced, never duplicated).

With ``devices > 1`` Lightning starts the other DDP processes by re-running the same
command line; they find this run through ``$GENSYNTH_DDP_RUN_DIR``, train, and exit:
only rank 0 evaluates and writes results. With ``--num-nodes`` (torchrun, SLURM) every
rank runs the command and ranks > 0 find the run as ``gensynth.learning.distributed`` says.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
import warnings
from dataclasses import asdict
from pathlib import Path

from gensynth.errors import GensynthError
from gensynth.learning.distributed import announce, withdraw, worker_run_dir
from gensynth.learning.config import (  # noqa: F401 (re-exported: the run configuration)
    MAX_SEED, MODEL_FLAGS, PRECISIONS, DataSettings, ModelSpec, RunConfig, RuntimeSettings, TrainSettings,
    available_cores, check_devices, finite_number_problems)
from gensynth.learning.scoring import START_INGEST_TIMEOUT_S, check_eval_roles, score_into, score_run  # noqa: F401
from gensynth.learning.predictions import EvalSettings  # noqa: F401 (re-exported)
from gensynth.learning.records import metric_rows, publish, run_row  # noqa: F401 (re-exported)
from gensynth.learning.rundirs import (  # noqa: F401 (re-exported: run directories)
    RunSummary, grammar_of, read_json, utc_now, write_json, new_run_id, run_dir_for, run_is_active, run_lock)

DDP_ENV = "GENSYNTH_DDP_RUN_DIR"



# --------------------------------------------------------------------------- train


def train(warehouse: Path, config: RunConfig, quiet: bool = False) -> RunSummary:
    """Start a new run (see the module docstring). Returns its summary."""
    child = _ddp_child_dir(warehouse)
    if child is not None:
        return _fit_only(child)
    from gensynth.learning.snapshot import check_split, grammar_from_meta, max_program_tokens, read_snapshot, require_embeddings
    from gensynth.results.ingest import connect_retrying, runs_root

    check_devices(config.training)
    warehouse = Path(warehouse)
    con = connect_retrying(warehouse, read_only=True)
    try:
        require_embeddings(con, warehouse)
        split = check_split(con, config.data.view)
        grammar = grammar_from_meta(con)
        seq_len = max_program_tokens(con) + 2
        grid = tuple(tuple(float(c) for c in point) for point in grammar.grid_points)
        model_config = config.model.resolve(3 + len(grammar.symbols), grammar.n_points, seq_len, grid=grid)
        check_eval_roles(config.eval.roles, split.roles, split.view)  # None in the config: every role of the view
        if split.roles["train"] < config.training.devices:
            raise GensynthError(f"The train role of '{split.view}' has {split.roles['train']} program(s), fewer than "
                                f"--devices {config.training.devices}; use fewer devices.")
        snapshot = read_snapshot(con, split, seq_len=seq_len)
    finally:
        con.close()
    if config.data.view != split.view:  # 'x' given for 'split_x': record the view name
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, view=split.view))
    run_dir = _new_run_dir(runs_root(warehouse))
    try:
        snapshot.write(run_dir / "snapshot")
        (run_dir / "grammar.toml").write_text(grammar.source_text)
        t = config.training
        write_json(run_dir / "config.json", {"run_id": run_dir.name, **config.to_json(), "resolved": {
            "arch": config.model.arch, "model": asdict(model_config), "vocab": ["<pad>", "<bos>", "<eos>", *grammar.symbols],
            "max_steps": t.resolved_max_steps, "warmup_steps": t.resolved_warmup, "val_every": t.resolved_val_every,
            "checkpoint_every": t.resolved_checkpoint_every, "world_size": t.world_size,
            "threads": config.runtime.resolved_threads(t.devices),
            "seq_len": seq_len, "n_points": grammar.n_points, "grammar_hash": snapshot.meta["grammar_hash"]}})
        write_json(run_dir / "state.json", {"status": "running", "started_at": utc_now().isoformat(), "attempts": [],
                                              "wall_time_s": 0.0, "data_version": snapshot.meta["data_version"],
                                              "role_sizes": {r: snapshot.role_size(r) for r in snapshot.roles}})
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # nothing half-made stays behind
        raise
    return _run(warehouse, run_dir, quiet)


def _new_run_dir(root: Path) -> Path:
    """Create runs/<new run id>/ (a fresh id if another process took the same one)."""
    root.mkdir(parents=True, exist_ok=True)
    while True:
        run_dir = root / new_run_id()
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue


def resume(warehouse: Path, run_id: str, quiet: bool = False) -> RunSummary:
    """Continue an unfinished run from its last checkpoint to its configured final step."""
    child = _ddp_child_dir(warehouse)
    if child is not None:
        return _fit_only(child)
    run_dir = run_dir_for(warehouse, run_id)
    state = read_json(run_dir / "state.json", {})
    if "data" not in read_json(run_dir / "config.json", {}):
        raise GensynthError(f"Run {run_id} is not a training run; only `gensynth train` runs can be resumed.")
    if state.get("status") == "finished":
        raise GensynthError(f"Run {run_id} already finished; evaluate it again with `gensynth eval --run {run_id}`.")
    config = RunConfig.from_json(read_json(run_dir / "config.json"))
    check_devices(config.training)
    return _run(Path(warehouse), run_dir, quiet)


def _ddp_child_dir(warehouse: Path) -> Path | None:
    """The run directory when this process is a DDP rank > 0 (started by Lightning, torchrun or SLURM)."""
    from gensynth.results.ingest import runs_root

    return worker_run_dir(DDP_ENV, runs_root(Path(warehouse)))


def _fit_only(run_dir: Path) -> RunSummary:
    """DDP worker: train alongside rank 0 and exit; rank 0 evaluates and writes results."""
    cfg = read_json(run_dir / "config.json")
    _fit(run_dir, RunConfig.from_json(cfg), cfg["resolved"], quiet=True)
    return RunSummary(cfg["run_id"], run_dir, "ddp-worker")


def _run(warehouse: Path, run_dir: Path, quiet: bool) -> RunSummary:
    """Train (or continue), evaluate and record a run whose directory exists."""
    from gensynth.results.ingest import INGEST_TIMEOUT_S, sync
    from gensynth.results.rundirs import account_killed_attempt

    cfg = read_json(run_dir / "config.json")
    config, resolved = RunConfig.from_json(cfg), cfg["resolved"]
    with run_lock(run_dir):
        state = read_json(run_dir / "state.json")
        account_killed_attempt(run_dir, state)  # a killed previous attempt still counts in wall_time_s
        state["status"] = "running"
        state.pop("error", None)
        attempt_start = time.monotonic()
        start_step, timer_offset = _checkpoint_progress(run_dir)
        state["attempts"].append({"started_at": utc_now().isoformat(), "start_step": start_step,
                                  "train_time_offset_s": timer_offset})
        write_json(run_dir / "state.json", state)
        publish(warehouse, run_dir, timeout=START_INGEST_TIMEOUT_S)
        try:
            cpu_start = time.process_time()
            trainer_step, train_time = _fit(run_dir, config, resolved, quiet)
            state["steps"], state["train_time_s"] = trainer_step, round(train_time, 3)
            # Process CPU seconds of training (all threads), summed over attempts: what a busy machine gave the run.
            state["train_cpu_s"] = round(state.get("train_cpu_s", 0.0) + time.process_time() - cpu_start, 3)
            ckpt, which = _choose_checkpoint(run_dir, config)
            state["checkpoint"], state["checkpoint_path"] = which, str(ckpt.relative_to(run_dir))
            write_json(run_dir / "state.json", state)
            summary_scores = score_into(run_dir, config, resolved, ckpt, view=config.data.view,
                                            snapshot_dir=run_dir / "snapshot", settings=config.eval)
            state["status"], state["finished_at"] = "finished", utc_now().isoformat()
        except BaseException as exc:
            state["status"], state["finished_at"] = "failed", utc_now().isoformat()
            # Lightning turns Ctrl-C during fit into SystemExit(1) after a graceful shutdown.
            interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
            state["error"] = "interrupted (Ctrl-C)" if interrupted else f"{type(exc).__name__}: {exc}"
            raise
        finally:
            elapsed = time.monotonic() - attempt_start
            state["attempts"][-1].update(seconds=round(elapsed, 3), ended=state["status"])
            state["wall_time_s"] = state.get("wall_time_s", 0.0) + elapsed
            write_json(run_dir / "state.json", state)
            outcome = publish(warehouse, run_dir, timeout=INGEST_TIMEOUT_S)
    sync(warehouse, timeout=START_INGEST_TIMEOUT_S)  # leftovers of earlier runs, if any
    row = run_row(run_dir)
    return RunSummary(run_dir.name, run_dir, state["status"], summary_scores, outcome.state, outcome.message,
                      row["n_params"], row["steps"] or 0, row["wall_time_s"], config.data.view, row["size"], row["checkpoint"],
                      row.get("arch", ""))


def _checkpoint_progress(run_dir: Path) -> tuple[int, float]:
    """Global step and training seconds (the Timer's, validation included) of the run's last checkpoint; (0, 0) if none."""
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.exists():
        return 0, 0.0
    import torch

    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    seconds = next((float(v["time_elapsed"].get("train", 0.0)) for v in ckpt.get("callbacks", {}).values()
                    if isinstance(v, dict) and "time_elapsed" in v), 0.0)
    return int(ckpt.get("global_step", 0)), seconds


# ------------------------------------------------------------------------ fitting


def _quiet_lightning() -> None:
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    for pattern in (".*does not have many workers.*", ".*sync_dist=True.*", ".*resuming from a checkpoint that ended before the epoch ended.*",
                    ".*Checkpoint directory .* exists and is not empty.*", ".*The number of training batches.*",
                    ".*isinstance\\(treespec, LeafSpec\\).*", ".*LeafSpec.*"):
        warnings.filterwarnings("ignore", message=pattern)


def _fit(run_dir: Path, config: RunConfig, resolved: dict, quiet: bool) -> tuple[int, float]:
    """Train to the step or time budget (from last.ckpt if there is one): (final global step, training seconds)."""
    import datetime as dt

    import lightning as L
    import torch
    from gensynth.learning.progress import StepProgressBar, run_loggers
    from gensynth.learning.snapshot import SplitDataModule, Snapshot
    from models.lit import PBELitModule

    from lightning.pytorch.callbacks import Timer

    _quiet_lightning()
    t, d = config.training, config.data
    max_steps = resolved.get("max_steps", t.max_steps)  # runs recorded before --max-time: their max_steps
    has_val = Snapshot.load(run_dir / "snapshot").role_size("val") > 0
    L.seed_everything(d.seed, workers=True, verbose=False)
    torch.set_num_threads(resolved.get("threads") or config.runtime.resolved_threads(t.devices))
    module = PBELitModule(resolved["model"], arch=resolved.get("arch", "grid64"), lr=t.lr, weight_decay=t.weight_decay,
                          warmup_steps=t.resolved_warmup, max_steps=max_steps, label_smoothing=t.label_smoothing,
                          min_lr_ratio=t.min_lr_ratio, grad_clip=t.grad_clip, schedule=t.schedule,
                          max_time_s=None if t.max_time is None else 60.0 * t.max_time)
    dm = SplitDataModule(run_dir / "snapshot", batch_size=d.batch_size, seed=d.seed, n_examples=d.n_examples,
                         num_workers=d.num_workers, pin_memory=t.accelerator == "gpu", targets=d.targets,
                         val_size=t.val_size)
    attempt = len(read_json(run_dir / "state.json", {}).get("attempts", [])) or 1
    trainer = L.Trainer(
        max_steps=-1 if max_steps is None else max_steps,
        max_epochs=-1 if max_steps is None else None,
        max_time=dt.timedelta(minutes=t.max_time) if t.max_time is not None else None,
        **t.lightning_args(),  # accelerator, devices, num_nodes, strategy
        precision=t.precision,
        logger=run_loggers(run_dir / "logs", attempt, flush_every=t.log_every * 5),  # CSV (-> metrics); TensorBoard if installed
        # Without --max-time a Timer with no limit still measures (and checkpoints) the training time.
        callbacks=_callbacks(run_dir / "checkpoints", t, has_val) + ([] if t.max_time is not None else [Timer(None)])
        + ([] if quiet else [StepProgressBar()]),  # 'step N/M', not Lightning's 'Epoch 3/-2'
        val_check_interval=t.resolved_val_every if has_val else None,
        check_val_every_n_epoch=None if has_val else 1,
        limit_val_batches=None if has_val else 0,
        num_sanity_val_steps=0,
        log_every_n_steps=t.log_every,
        enable_progress_bar=not quiet,
        enable_model_summary=False,
        use_distributed_sampler=False,  # EpochBatchSampler shards itself (no repeats, no drops)
        default_root_dir=run_dir,
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    announce(run_dir, DDP_ENV, t.num_nodes)  # the other ranks find this run through it (gensynth.learning.distributed)
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=last if last.exists() else None)
    finally:
        withdraw(run_dir, DDP_ENV, t.num_nodes)
    timer = next(c for c in trainer.callbacks if isinstance(c, Timer))
    return int(trainer.global_step), float(timer.time_elapsed("train"))


def _callbacks(ckpt_dir: Path, t, has_val: bool) -> list:
    """Periodic and final last.ckpt, best.ckpt on val/loss, the lr in the logs."""
    from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint

    class FinalCheckpoint(Callback):
        """Save last.ckpt when training ends (on every rank: saving is collective under DDP)."""

        def on_train_end(self, trainer, pl_module):
            trainer.save_checkpoint(ckpt_dir / "last.ckpt")

    callbacks = [
        ModelCheckpoint(dirpath=ckpt_dir, filename="periodic", save_last=True, save_top_k=0,
                        every_n_train_steps=t.resolved_checkpoint_every),
        FinalCheckpoint(),
        LearningRateMonitor(logging_interval="step"),
    ]
    if has_val:
        callbacks.append(ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val/loss", mode="min",
                                         save_top_k=1, enable_version_counter=False))
    return callbacks


def _choose_checkpoint(run_dir: Path, config: RunConfig) -> tuple[Path, str]:
    best = run_dir / "checkpoints" / "best.ckpt"
    if config.training.select == "best" and best.exists():
        return best, "best"
    return run_dir / "checkpoints" / "last.ckpt", "last"
