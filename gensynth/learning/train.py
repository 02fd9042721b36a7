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
only rank 0 evaluates and writes results.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import secrets
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gensynth.errors import GensynthError
from gensynth.learning.predictions import EvalSettings
from gensynth.version import code_version

DDP_ENV = "GENSYNTH_DDP_RUN_DIR"
PRECISIONS = ("32-true", "32", "64-true", "bf16-mixed", "bf16-true", "16-mixed", "16-true")
MODEL_FLAGS = ("d_model", "n_heads", "n_enc_layers", "n_dec_layers", "d_ff", "dropout")
START_INGEST_TIMEOUT_S = 5.0  # registering 'running' must not hold up training for long
MAX_SEED = 2**32 - 1  # numpy's legacy seeding and Lightning's seed_everything accept [0, 2**32 - 1]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask: fewer than the machine's under taskset or a container)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def finite_number_problems(owner, names: tuple[str, ...]) -> list[str]:
    """'--flag must be a finite number' for each float field of ``owner`` that is NaN or infinite."""
    import math

    out = []
    for name in names:
        v = getattr(owner, name)
        if isinstance(v, float) and not math.isfinite(v):
            out.append(f"--{name.replace('_', '-')} must be a finite number, got {v}")
    return out


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class ModelSpec:
    """Which model: a named size, optionally with some fields overridden."""

    size: str = "micro"
    """A preset of models.SIZES (nano, micro, tiny, small, medium, large)."""
    d_model: int | None = None
    """Override the preset's width (--d-model)."""
    n_heads: int | None = None
    """Override the attention heads (--n-heads)."""
    n_enc_layers: int | None = None
    """Override the encoder depth (--n-enc-layers)."""
    n_dec_layers: int | None = None
    """Override the decoder depth (--n-dec-layers)."""
    d_ff: int | None = None
    """Override the MLP width (--d-ff)."""
    dropout: float | None = None
    """Override the dropout (--dropout)."""

    def __post_init__(self):
        from models.pbe_transformer import SIZES  # noqa: PLC0415 (torch: only when a run is configured)

        bad = finite_number_problems(self, ("dropout",))
        if bad:
            raise GensynthError(f"Invalid model options: {bad[0]}. Pass a dropout in [0, 1).")

        if self.size not in SIZES:
            raise GensynthError(f"Unknown --size '{self.size}'. Known sizes: {', '.join(f'{k} ({_params_hint(k)})' for k in SIZES)}.")

    @property
    def overrides(self) -> dict:
        return {k: getattr(self, k) for k in MODEL_FLAGS if getattr(self, k) is not None}

    @property
    def name(self) -> str:
        """The size name recorded in runs.size: the preset, or 'custom' if any field was overridden."""
        return "custom" if self.overrides else self.size

    def resolve(self, vocab_size: int, n_points: int, max_len: int):
        """The full ModelConfig for a grammar's vocabulary, grid and longest program."""
        from models.pbe_transformer import config_for

        return config_for(self.size, vocab_size=vocab_size, n_points=n_points, max_len=max_len, **self.overrides)


def _params_hint(size: str) -> str:
    hints = {"nano": "34k", "micro": "242k", "tiny": "685k", "small": "1.7M", "medium": "5.4M", "large": "13M"}
    return hints.get(size, "?") + " params"


@dataclass(frozen=True)
class DataSettings:
    """What the model trains on and how it is batched."""

    view: str
    """The split view (--view split_NAME)."""
    batch_size: int = 256
    """Global batch size (--batch-size): examples per optimizer step over all devices."""
    n_examples: int | None = None
    """Grid points shown per task (--n-examples); None = the whole grid."""
    num_workers: int = 0
    """DataLoader worker processes per device (--num-workers); 0 loads in the training process."""
    seed: int = 0
    """Seeds the model init, the shuffling and the shown points (--seed)."""

    def problems(self) -> list[str]:
        out = []
        if self.batch_size < 1:
            out.append(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.n_examples is not None and self.n_examples < 1:
            out.append(f"--n-examples must be >= 1, got {self.n_examples}")
        if self.num_workers < 0:
            out.append(f"--num-workers must be >= 0, got {self.num_workers}")
        if not 0 <= self.seed <= MAX_SEED:
            out.append(f"--seed must be in [0, {MAX_SEED}] (2**32 - 1, what numpy and Lightning accept), got {self.seed}")
        return out


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation and hardware."""

    max_steps: int = 2000
    """Optimizer steps (--max-steps); a resumed run stops at the same step."""
    lr: float = 1e-3
    """Peak learning rate of AdamW (--lr)."""
    weight_decay: float = 0.01
    """AdamW weight decay on matrices (--weight-decay)."""
    warmup_steps: int | None = None
    """Linear warmup steps (--warmup-steps); None = 5% of max_steps (at most 200)."""
    label_smoothing: float = 0.0
    """Label smoothing of the training loss (--label-smoothing)."""
    min_lr_ratio: float = 0.1
    """Cosine decay ends at lr * min_lr_ratio."""
    accelerator: str = "cpu"
    """'cpu' or 'gpu' (--accelerator)."""
    devices: int = 1
    """Processes / GPUs (--devices); more than one trains with DDP."""
    precision: str = "32-true"
    """Lightning precision (--precision), e.g. '32-true', 'bf16-mixed'."""
    val_every: int | None = None
    """Steps between validations (--val-every); None = max_steps / 10."""
    checkpoint_every: int | None = None
    """Steps between resumable checkpoints (--checkpoint-every); None = max_steps / 10."""
    select: str = "best"
    """Checkpoint evaluated: 'best' (lowest val/loss; 'last' when there is no val role) or 'last'."""
    log_every: int = 10
    """Steps between logged training metrics."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this before each step (--grad-clip); 0 disables. Steps whose gradient
    norm is not finite are skipped, so one overflowing batch cannot turn the weights into NaN."""

    @property
    def resolved_warmup(self) -> int:
        return self.warmup_steps if self.warmup_steps is not None else min(200, max(1, self.max_steps // 20))

    @property
    def resolved_val_every(self) -> int:
        return self.val_every or max(1, self.max_steps // 10)

    @property
    def resolved_checkpoint_every(self) -> int:
        return self.checkpoint_every or max(1, self.max_steps // 10)

    def problems(self) -> list[str]:
        out = finite_number_problems(self, ("lr", "weight_decay", "label_smoothing", "min_lr_ratio", "grad_clip"))
        finite = not out  # range checks below only when every number is finite (else they repeat the problem)
        if self.max_steps < 1:
            out.append(f"--max-steps must be >= 1, got {self.max_steps}")
        if finite and self.lr <= 0:
            out.append(f"--lr must be > 0, got {self.lr}")
        if finite and self.weight_decay < 0:
            out.append(f"--weight-decay must be >= 0, got {self.weight_decay}")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            out.append(f"--warmup-steps must be >= 0, got {self.warmup_steps}")
        if finite and not 0 <= self.label_smoothing < 1:
            out.append(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.accelerator not in ("cpu", "gpu"):
            out.append(f"--accelerator must be 'cpu' or 'gpu', got '{self.accelerator}'")
        if self.devices < 1:
            out.append(f"--devices must be >= 1, got {self.devices}")
        if self.precision not in PRECISIONS:
            out.append(f"--precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")
        elif self.precision.startswith("16") and self.accelerator == "cpu":
            out.append(f"--precision {self.precision} needs --accelerator gpu; on CPU use bf16-mixed or 32-true")
        for name in ("val_every", "checkpoint_every", "log_every"):
            v = getattr(self, name)
            if v is not None and v < 1:
                out.append(f"--{name.replace('_', '-')} must be >= 1, got {v}")
        if self.select not in ("best", "last"):
            out.append(f"--select must be 'best' or 'last', got '{self.select}'")
        if finite and self.grad_clip < 0:
            out.append(f"--grad-clip must be >= 0 (0 disables clipping), got {self.grad_clip}")
        return out


@dataclass(frozen=True)
class RuntimeSettings:
    """How fast a run computes, not what: recorded with the run, left out when sweeps compare configurations."""

    threads: int | None = None
    """Torch threads of each training process (--threads); None = the cores available to the process / --devices."""

    def problems(self) -> list[str]:
        if self.threads is not None and self.threads < 1:
            return [f"--threads must be >= 1, got {self.threads}"]
        return []

    def resolved_threads(self, devices: int = 1) -> int:
        return self.threads if self.threads is not None else max(1, available_cores() // max(1, devices))


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; stored resolved in config.json and runs.config."""

    data: DataSettings
    model: ModelSpec = field(default_factory=ModelSpec)
    training: TrainSettings = field(default_factory=TrainSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)

    def __post_init__(self):
        problems = self.data.problems() + self.training.problems() + self.runtime.problems()
        if self.data.batch_size >= 1 and self.training.devices >= 1 and self.data.batch_size < self.training.devices:
            problems.append(f"--batch-size ({self.data.batch_size}) must be at least --devices ({self.training.devices})")
        if problems:
            raise GensynthError("Invalid training options:\n  - " + "\n  - ".join(problems) + "\nFix them and run again.")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "RunConfig":
        training = dict(d["training"])
        training.setdefault("grad_clip", 0.0)  # runs recorded before clipping existed trained without it
        ev = dict(d["eval"])
        ev["k"] = tuple(ev["k"])
        ev["roles"] = None if ev["roles"] is None else tuple(ev["roles"])
        return cls(data=DataSettings(**d["data"]), model=ModelSpec(**d["model"]),
                   training=TrainSettings(**training), eval=EvalSettings(**ev),
                   runtime=RuntimeSettings(**d.get("runtime", {})))


def check_devices(t: TrainSettings) -> None:
    """Refuse device requests this machine cannot meet (before anything is written)."""
    if t.accelerator == "gpu":
        import torch

        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if have == 0:
            raise GensynthError("--accelerator gpu was requested but no CUDA device is available here. "
                                "Use --accelerator cpu, or run on a machine with a GPU.")
        if t.devices > have:
            raise GensynthError(f"--devices {t.devices} needs {t.devices} GPUs but this machine has {have}. Use --devices {have} or fewer.")
    else:
        cores = os.cpu_count() or 1
        if t.devices > cores:
            raise GensynthError(f"--devices {t.devices} on CPU starts {t.devices} processes but this machine has "
                                f"{cores} core(s). Use --devices {cores} or fewer.")


# --------------------------------------------------------------------- run directory


@dataclass
class RunSummary:
    """What a train or eval command reports."""

    run_id: str
    run_dir: Path
    status: str
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)  # role -> metric -> value
    ingest: str = ""
    ingest_message: str = ""
    n_params: int = 0
    steps: int = 0
    wall_time_s: float = 0.0
    view: str = ""
    size: str = ""
    checkpoint: str = ""


def new_run_id() -> str:
    """Sortable and unique: UTC start time plus random hex."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def run_dir_for(warehouse: Path, run_id: str) -> Path:
    from gensynth.results.ingest import run_dirs, runs_root

    d = runs_root(warehouse) / run_id
    if not (d / "config.json").is_file():
        known = [p.name for p in run_dirs(warehouse)]
        import difflib

        close = difflib.get_close_matches(run_id, known, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise GensynthError(f"No run '{run_id}' under '{runs_root(warehouse)}'.{hint} List runs with `gensynth runs list`.")
    return d


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Exclusive ownership of a run directory by this process (released when it exits or dies)."""
    fd = os.open(run_dir / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise GensynthError(f"Run {run_dir.name} is in use by another gensynth process (training or evaluating). "
                                    f"Wait for it to finish.") from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def run_is_active(run_dir: Path) -> bool:
    """Whether some process holds the run's lock (it is training or evaluating now)."""
    path = Path(run_dir) / "run.lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _read_json(path: Path, default=None):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return default


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# --------------------------------------------------------------------------- train


def train(warehouse: Path, config: RunConfig, quiet: bool = False) -> RunSummary:
    """Start a new run (see the module docstring). Returns its summary."""
    child = _ddp_child_dir()
    if child is not None:
        return _fit_only(child)
    from gensynth.learning.snapshot import check_split, grammar_from_meta, max_program_tokens, read_snapshot, require_embeddings
    from gensynth.results.ingest import connect_retrying

    check_devices(config.training)
    warehouse = Path(warehouse)
    con = connect_retrying(warehouse, read_only=True)
    try:
        require_embeddings(con, warehouse)
        split = check_split(con, config.data.view)
        grammar = grammar_from_meta(con)
        seq_len = max_program_tokens(con) + 2
        model_config = config.model.resolve(3 + len(grammar.symbols), grammar.n_points, seq_len)
        _eval_roles(config.eval.roles, split.roles, split.view)  # None in the config: every role of the view
        if split.roles["train"] < config.training.devices:
            raise GensynthError(f"The train role of '{split.view}' has {split.roles['train']} program(s), fewer than "
                                f"--devices {config.training.devices}; use fewer devices.")
        snapshot = read_snapshot(con, split, seq_len=seq_len)
    finally:
        con.close()
    if config.data.view != split.view:  # 'x' given for 'split_x': record the view name
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, view=split.view))

    from gensynth.results.ingest import runs_root

    root = runs_root(warehouse)
    root.mkdir(parents=True, exist_ok=True)
    while True:
        run_id = new_run_id()
        run_dir = root / run_id
        try:
            run_dir.mkdir()
            break
        except FileExistsError:
            continue
    try:
        snapshot.write(run_dir / "snapshot")
        (run_dir / "grammar.toml").write_text(grammar.source_text)
        _write_json(run_dir / "config.json", {"run_id": run_id, **config.to_json(), "resolved": {
            "model": asdict(model_config), "vocab": ["<pad>", "<bos>", "<eos>", *grammar.symbols],
            "warmup_steps": config.training.resolved_warmup, "val_every": config.training.resolved_val_every,
            "checkpoint_every": config.training.resolved_checkpoint_every, "world_size": config.training.devices,
            "threads": config.runtime.resolved_threads(config.training.devices),
            "seq_len": seq_len, "n_points": grammar.n_points, "grammar_hash": snapshot.meta["grammar_hash"]}})
        _write_json(run_dir / "state.json", {"status": "running", "started_at": _now().isoformat(), "attempts": [],
                                              "wall_time_s": 0.0, "data_version": snapshot.meta["data_version"],
                                              "role_sizes": {r: snapshot.role_size(r) for r in snapshot.roles}})
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # nothing half-made stays behind
        raise
    return _run(warehouse, run_dir, quiet)


def resume(warehouse: Path, run_id: str, quiet: bool = False) -> RunSummary:
    """Continue an unfinished run from its last checkpoint to its configured final step."""
    child = _ddp_child_dir()
    if child is not None:
        return _fit_only(child)
    run_dir = run_dir_for(warehouse, run_id)
    state = _read_json(run_dir / "state.json", {})
    if "data" not in _read_json(run_dir / "config.json", {}):
        raise GensynthError(f"Run {run_id} is not a training run; only `gensynth train` runs can be resumed.")
    if state.get("status") == "finished":
        raise GensynthError(f"Run {run_id} already finished; evaluate it again with `gensynth eval --run {run_id}`.")
    config = RunConfig.from_json(_read_json(run_dir / "config.json"))
    check_devices(config.training)
    return _run(Path(warehouse), run_dir, quiet)


def _eval_roles(requested, available: dict[str, int], view: str) -> list[str]:
    if not requested:
        return sorted(available)
    missing = [r for r in requested if r not in available]
    if missing:
        raise GensynthError(f"--eval-roles {', '.join(missing)}: no such role in '{view}' (roles: {', '.join(sorted(available))}).")
    return list(requested)


def _ddp_child_dir() -> Path | None:
    """The run directory when this process is a DDP worker started by Lightning for rank > 0."""
    d = os.environ.get(DDP_ENV)
    if d and int(os.environ.get("LOCAL_RANK", "0") or 0) > 0:
        return Path(d)
    return None


def _fit_only(run_dir: Path) -> RunSummary:
    """DDP worker: train alongside rank 0 and exit; rank 0 evaluates and writes results."""
    cfg = _read_json(run_dir / "config.json")
    _fit(run_dir, RunConfig.from_json(cfg), cfg["resolved"], quiet=True)
    return RunSummary(cfg["run_id"], run_dir, "ddp-worker")


def _run(warehouse: Path, run_dir: Path, quiet: bool) -> RunSummary:
    """Train (or continue), evaluate and record a run whose directory exists."""
    from gensynth.results.ingest import INGEST_TIMEOUT_S, sync

    cfg = _read_json(run_dir / "config.json")
    config, resolved = RunConfig.from_json(cfg), cfg["resolved"]
    with run_lock(run_dir):
        state = _read_json(run_dir / "state.json")
        state["status"] = "running"
        state.pop("error", None)
        attempt_start = time.monotonic()
        state["attempts"].append({"started_at": _now().isoformat(), "start_step": _checkpoint_step(run_dir)})
        _write_json(run_dir / "state.json", state)
        publish(warehouse, run_dir, timeout=START_INGEST_TIMEOUT_S)
        try:
            trainer_step = _fit(run_dir, config, resolved, quiet)
            state["steps"] = trainer_step
            ckpt, which = _choose_checkpoint(run_dir, config)
            state["checkpoint"], state["checkpoint_path"] = which, str(ckpt.relative_to(run_dir))
            _write_json(run_dir / "state.json", state)
            summary_scores = _evaluate_into(run_dir, config, resolved, ckpt, view=config.data.view,
                                            snapshot_dir=run_dir / "snapshot", settings=config.eval)
            state["status"], state["finished_at"] = "finished", _now().isoformat()
        except BaseException as exc:
            state["status"], state["finished_at"] = "failed", _now().isoformat()
            # Lightning turns Ctrl-C during fit into SystemExit(1) after a graceful shutdown.
            interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
            state["error"] = "interrupted (Ctrl-C)" if interrupted else f"{type(exc).__name__}: {exc}"
            raise
        finally:
            state["wall_time_s"] = state.get("wall_time_s", 0.0) + (time.monotonic() - attempt_start)
            _write_json(run_dir / "state.json", state)
            outcome = publish(warehouse, run_dir, timeout=INGEST_TIMEOUT_S)
    sync(warehouse, timeout=START_INGEST_TIMEOUT_S)  # leftovers of earlier runs, if any
    row = run_row(run_dir)
    return RunSummary(run_dir.name, run_dir, state["status"], summary_scores, outcome.state, outcome.message,
                      row["n_params"], row["steps"] or 0, row["wall_time_s"], config.data.view, row["size"], row["checkpoint"])


def _checkpoint_step(run_dir: Path) -> int:
    """Global step of the run's last checkpoint (0 when there is none)."""
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.exists():
        return 0
    import torch

    return int(torch.load(last, map_location="cpu", weights_only=False).get("global_step", 0))


# ------------------------------------------------------------------------ fitting


def _quiet_lightning() -> None:
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    for pattern in (".*does not have many workers.*", ".*sync_dist=True.*", ".*resuming from a checkpoint that ended before the epoch ended.*",
                    ".*Checkpoint directory .* exists and is not empty.*", ".*The number of training batches.*",
                    ".*isinstance\\(treespec, LeafSpec\\).*", ".*LeafSpec.*"):
        warnings.filterwarnings("ignore", message=pattern)


def _fit(run_dir: Path, config: RunConfig, resolved: dict, quiet: bool) -> int:
    """Train to max_steps (from last.ckpt if there is one); returns the final global step."""
    import lightning as L
    from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from gensynth.learning.snapshot import SplitDataModule, Snapshot
    from models.lit import PBELitModule

    _quiet_lightning()
    t, d = config.training, config.data
    snapshot = Snapshot.load(run_dir / "snapshot")
    has_val = snapshot.role_size("val") > 0
    L.seed_everything(d.seed, workers=True, verbose=False)
    import torch

    torch.set_num_threads(resolved.get("threads") or config.runtime.resolved_threads(t.devices))
    module = PBELitModule(resolved["model"], lr=t.lr, weight_decay=t.weight_decay, warmup_steps=t.resolved_warmup,
                          max_steps=t.max_steps, label_smoothing=t.label_smoothing, min_lr_ratio=t.min_lr_ratio,
                          grad_clip=t.grad_clip)
    dm = SplitDataModule(run_dir / "snapshot", batch_size=d.batch_size, seed=d.seed, n_examples=d.n_examples,
                         num_workers=d.num_workers, pin_memory=t.accelerator == "gpu")
    ckpt_dir = run_dir / "checkpoints"

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
    attempt = len(_read_json(run_dir / "state.json", {}).get("attempts", [])) or 1
    trainer = L.Trainer(
        max_steps=t.max_steps,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy="ddp" if t.devices > 1 else "auto",
        precision=t.precision,
        logger=CSVLogger(save_dir=run_dir / "logs", name="", version=f"attempt-{attempt}", flush_logs_every_n_steps=t.log_every * 5),
        callbacks=callbacks,
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
    last = ckpt_dir / "last.ckpt"
    if t.devices > 1:
        os.environ[DDP_ENV] = str(run_dir)  # the workers Lightning starts find this run through it
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=last if last.exists() else None)
    finally:
        os.environ.pop(DDP_ENV, None)
    return int(trainer.global_step)


def _choose_checkpoint(run_dir: Path, config: RunConfig) -> tuple[Path, str]:
    best = run_dir / "checkpoints" / "best.ckpt"
    if config.training.select == "best" and best.exists():
        return best, "best"
    return run_dir / "checkpoints" / "last.ckpt", "last"


# ---------------------------------------------------------------------- evaluation


def _evaluate_into(run_dir: Path, config: RunConfig, resolved: dict, ckpt: Path, view: str, snapshot_dir: Path,
                   settings: EvalSettings) -> dict[str, dict[str, float | None]]:
    """Evaluate a checkpoint on a snapshot's roles; write evals/<view>/{predictions.parquet, scores.json}."""
    import torch

    from gensynth.learning.snapshot import Snapshot
    from gensynth.learning.predictions import evaluate_role, write_predictions
    from models.lit import PBELitModule

    snapshot = Snapshot.load(snapshot_dir)
    torch.set_num_threads(resolved.get("threads") or config.runtime.resolved_threads(config.training.devices))
    device = torch.device("cuda" if config.training.accelerator == "gpu" and torch.cuda.is_available() else "cpu")
    model = PBELitModule.load_from_checkpoint(ckpt, map_location=device).model.to(device).eval()
    grammar = _grammar_of(run_dir)
    roles = settings.roles if settings.roles else tuple(sorted(snapshot.roles))
    roles = [r for r in roles if r in snapshot.roles]
    results = [evaluate_role(model, snapshot, r, grammar, settings, config.data.n_examples, config.data.seed,
                             device, run_id=run_dir.name, view=view) for r in roles]
    out = run_dir / "evals" / view
    out.mkdir(parents=True, exist_ok=True)
    write_predictions(results, out / ".predictions.tmp.parquet")
    os.replace(out / ".predictions.tmp.parquet", out / "predictions.parquet")
    scores = {r.role: r.scores for r in results}
    _write_json(out / "scores.json", {"view": view, "checkpoint": ckpt.name, "settings": asdict(settings),
                                      "step": _read_json(run_dir / "state.json", {}).get("steps", 0), "scores": scores})
    return scores


def _grammar_of(run_dir: Path):
    """The run's grammar: grammar.toml, the warehouse's grammar source copied at the start."""
    import tomllib

    from gensynth.universe.grammar import parse_grammar

    src = run_dir / "grammar.toml"
    if not src.exists():
        raise GensynthError(f"Run directory '{run_dir}' has no grammar.toml; it was written by an older gensynth.")
    text = src.read_text()
    return parse_grammar(tomllib.loads(text), text, str(src))


def evaluate(warehouse: Path, run_id: str, view: str | None = None, settings: EvalSettings | None = None,
             quiet: bool = False) -> RunSummary:
    """Evaluate a finished run's checkpoint on a split's roles (its own split by default)."""
    from gensynth.learning.snapshot import check_split, read_snapshot
    from gensynth.results.ingest import INGEST_TIMEOUT_S, connect_retrying, sync

    warehouse = Path(warehouse)
    run_dir = run_dir_for(warehouse, run_id)
    state = _read_json(run_dir / "state.json", {})
    if "data" not in _read_json(run_dir / "config.json", {}):
        raise GensynthError(f"Run {run_id} is not a training run; `gensynth eval` evaluates trained models.")
    if state.get("status") != "finished":
        raise GensynthError(f"Run {run_id} is not finished (status '{state.get('status')}'); "
                            f"finish it first with `gensynth train --resume {run_id}`.")
    cfg = _read_json(run_dir / "config.json")
    config = RunConfig.from_json(cfg)
    own_view = view is None or view in (config.data.view, config.data.view.removeprefix("split_"))
    settings = settings or (config.eval if own_view else dataclasses.replace(config.eval, roles=None))
    with run_lock(run_dir):
        if own_view:
            view, snap_dir = config.data.view, run_dir / "snapshot"
            if settings.roles:
                _eval_roles(settings.roles, {r: 1 for r in _read_json(snap_dir / "meta.json")["roles"]}, view)
        else:
            con = connect_retrying(warehouse, read_only=True)
            try:
                split = check_split(con, view, require_train=False)
                version = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0]
                if version != state.get("data_version"):
                    raise GensynthError(f"Run {run_id} was trained on warehouse data version {state.get('data_version')}, "
                                        f"but '{warehouse}' is now version {version}: its program ids may mean other programs.")
                _eval_roles(settings.roles, split.roles, split.view)
                snapshot = read_snapshot(con, split, seq_len=cfg["resolved"]["seq_len"], roles=list(settings.roles) if settings.roles else None)
            finally:
                con.close()
            view = split.view
            snap_dir = run_dir / "evals" / view / "snapshot"
            if snap_dir.exists():
                shutil.rmtree(snap_dir)
            snapshot.write(snap_dir)
        ckpt = run_dir / state["checkpoint_path"]
        scores = _evaluate_into(run_dir, config, cfg["resolved"], ckpt, view, snap_dir, settings)
        outcome = publish(warehouse, run_dir, timeout=INGEST_TIMEOUT_S)
    sync(warehouse, timeout=START_INGEST_TIMEOUT_S)
    row = run_row(run_dir)
    return RunSummary(run_id, run_dir, "finished", scores, outcome.state, outcome.message, row["n_params"],
                      row["steps"] or 0, row["wall_time_s"], view, row["size"], row["checkpoint"])


# ------------------------------------------------------------------ results rows


def run_row(run_dir: Path) -> dict:
    """The run's `runs` row, from its config.json and state.json."""
    from gensynth.learning.snapshot import Snapshot, examples_and_tokens_seen
    from models.flops import training_flops
    from models.pbe_transformer import ModelConfig

    cfg = _read_json(run_dir / "config.json")
    state = _read_json(run_dir / "state.json")
    config = RunConfig.from_json(cfg)
    mc = ModelConfig(**cfg["resolved"]["model"])
    steps = int(state.get("steps") or 0)
    snapshot = Snapshot.load(run_dir / "snapshot")
    examples, tokens = examples_and_tokens_seen(snapshot, config.data.batch_size, config.data.seed, steps)
    flops = training_flops(mc, examples, dec_len=snapshot.seq_len - 1, enc_len=mc.n_points)
    t = config.training
    return {
        "run_id": run_dir.name,
        "view": config.data.view,
        "split_sql_hash": snapshot.meta.get("split_sql_hash"),
        "role_sizes": state["role_sizes"],
        "config": cfg,
        "size": config.model.name,
        "n_params": _n_params(mc),
        "training_flops": float(flops),
        "examples_seen": examples,
        "tokens_seen": tokens,
        "steps": steps,
        "wall_time_s": round(float(state.get("wall_time_s", 0.0)), 3),
        "device": _device_name(t),
        "code_version": code_version(),
        "data_version": state["data_version"],
        "checkpoint": state.get("checkpoint"),
        "status": state["status"],
        "error": state.get("error"),
        "started_at": state["started_at"],
        "finished_at": state.get("finished_at") if state["status"] != "running" else None,
    }


def _n_params(mc) -> int:
    """Parameter count of a config, computed once per config (building a model is cheap here)."""
    from models.pbe_transformer import PBETransformer

    key = json.dumps(asdict(mc), sort_keys=True)
    if key not in _N_PARAMS:
        _N_PARAMS[key] = PBETransformer(mc).num_params()
    return _N_PARAMS[key]


_N_PARAMS: dict[str, int] = {}


def _device_name(t: TrainSettings) -> str:
    if t.accelerator == "gpu":
        import torch

        name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "gpu"
    else:
        name = "cpu"
    return f"{name} x{t.devices}" + (" (ddp)" if t.devices > 1 else "")


def metric_rows(run_dir: Path) -> list[tuple[int, str, float | None]]:
    """Training curves (CSV logs of every attempt, later attempts replacing the steps they redid) and eval scores."""
    state = _read_json(run_dir / "state.json", {})
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
        s = _read_json(scores_file)
        for role, metrics in s["scores"].items():
            for name, value in metrics.items():
                rows[(int(s.get("step") or 0), f"eval/{s['view']}/{role}/{name}")] = value
    return [(step, name, value) for (step, name), value in sorted(rows.items())]


def publish(warehouse: Path, run_dir: Path, timeout: float):
    """Write the run's results folder from its directory and try to ingest it."""
    from gensynth.results.ingest import ingest_run, write_results

    preds = sorted((run_dir / "evals").glob("*/predictions.parquet"))
    write_results(run_dir, run_row(run_dir), metric_rows(run_dir), preds)
    return ingest_run(warehouse, run_dir, timeout=timeout)
