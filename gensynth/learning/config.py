"""Run configuration: what defines a training run, as small frozen dataclasses.

``RunConfig`` groups the data, model, training, evaluation and runtime settings; it is
stored resolved in the run's ``config.json`` and in ``runs.config``. Every field has a
docstring; ``gensynth.learning.options`` turns the fields into the flags of
``gensynth train`` (their help is the docstring, their default the field's), so this
file is the one source of the options, their defaults and their checks. Every problem
names its flag. Importing this module loads no torch.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import asdict, dataclass, field

from gensynth.errors import GensynthError

PRECISIONS = ("32-true", "32", "64-true", "bf16-mixed", "bf16-true", "16-mixed", "16-true")
MODEL_FLAGS = ("d_model", "n_heads", "n_enc_layers", "n_dec_layers", "d_ff", "dropout")
MAX_SEED = 2**32 - 1  # numpy's legacy seeding and Lightning's seed_everything accept [0, 2**32 - 1]
DEFAULT_ARCH = "lines"  # chosen by pass@1 at equal CPU time (README, Training)
SCHEDULES = ("cosine", "linear", "constant")
TARGETS = ("programs", "canonical")
DEFAULT_STEPS = 2000  # --max-steps when neither it nor --max-time is given


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask: fewer than the machine's under taskset or a container)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def finite_number_problems(owner, names: tuple[str, ...], flags: dict[str, str] | None = None) -> list[str]:
    """'--flag must be a finite number' for each float field of ``owner`` that is NaN or infinite."""
    out = []
    for name in names:
        v = getattr(owner, name)
        if isinstance(v, float) and not math.isfinite(v):
            flag = (flags or {}).get(name, name.replace("_", "-"))
            out.append(f"--{flag} must be a finite number, got {v}")
    return out


# ------------------------------------------------------------------------- model


@dataclass(frozen=True)
class ModelSpec:
    """Which model: an architecture of models/, a named size, optionally some fields overridden."""

    arch: str = DEFAULT_ARCH
    """Architecture, a name registered in models/ (models.registry): grid64 (the paper's transformer, one
    encoder position per grid point) or lines (one position per grid row and column, coordinates as inputs)."""
    size: str | None = None
    """Size preset of the architecture (default: the architecture's: grid64 micro, lines micro); grid64: nano,
    micro, tiny, small, medium, large; lines: nano, micro, tiny, small, medium, large, xl."""
    d_model: int | None = None
    """Override the preset's width."""
    n_heads: int | None = None
    """Override the attention heads."""
    n_enc_layers: int | None = None
    """Override the encoder depth."""
    n_dec_layers: int | None = None
    """Override the decoder depth."""
    d_ff: int | None = None
    """Override the MLP width."""
    dropout: float | None = None
    """Override the dropout (in [0, 1))."""

    def __post_init__(self):
        bad = finite_number_problems(self, ("dropout",))
        if bad:
            raise GensynthError(f"Invalid model options: {bad[0]}. Pass a dropout in [0, 1).")
        arch = self.architecture()
        if self.size is None:
            object.__setattr__(self, "size", arch.default_size)  # recorded resolved
        if self.size not in arch.sizes:
            raise GensynthError(f"Unknown --size '{self.size}' for --arch {arch.name}. Known sizes: "
                                f"{', '.join(arch.sizes)} (default {arch.default_size}).")

    def architecture(self):
        """The models.registry entry (imports torch: only when a run is configured)."""
        from models.errors import ModelError
        from models.registry import get

        try:
            return get(self.arch)
        except ModelError as exc:
            raise GensynthError(f"Unknown --arch '{self.arch}': {exc}.") from None

    @property
    def overrides(self) -> dict:
        return {k: getattr(self, k) for k in MODEL_FLAGS if getattr(self, k) is not None}

    @property
    def name(self) -> str:
        """The size name recorded in runs.size: the preset, or 'custom' if any field was overridden."""
        return "custom" if self.overrides else self.size

    def resolve(self, vocab_size: int, n_points: int, max_len: int, grid: tuple | None = None):
        """The architecture's full config for a grammar's vocabulary, grid and longest program."""
        from models.errors import ModelError

        arch = self.architecture()
        extra = {"grid": grid} if arch.grid_input else {}
        try:
            return arch.config(self.size, vocab_size=vocab_size, n_points=n_points, max_len=max_len,
                               **extra, **self.overrides)
        except ModelError as exc:
            raise GensynthError(f"Invalid model options for --arch {self.arch} --size {self.size}: {exc}. "
                                f"Change the overriding flags (--d-model, --n-heads, ...).") from None


# -------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DataSettings:
    """What the model trains on and how it is batched."""

    view: str
    """The split view to train on (split_NAME); its 'train' role is the training set."""
    batch_size: int = 256
    """Global batch size: examples per optimizer step over all devices."""
    n_examples: int | None = None
    """Grid points shown per task (random, fixed per task and seed) (default: the whole grid)."""
    num_workers: int = 0
    """DataLoader worker processes per device; 0 loads in the training process."""
    seed: int = 0
    """Seeds the model init, the shuffling and the shown points."""
    targets: str = "programs"
    """Training targets: 'programs' (every program of the train role, the paper's setting) or 'canonical'
    (each function's smallest program, once per train program of the function: an ablation)."""

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
        if self.targets not in TARGETS:
            out.append(f"--targets must be one of {', '.join(TARGETS)}, got '{self.targets}'")
        return out


# ---------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation and hardware."""

    max_steps: int | None = None
    """Optimizer steps; a resumed run stops at the same step (default: 2000, or no limit with --max-time)."""
    max_time: float | None = None
    """Minutes of training wall-clock (validation included): stop, checkpoint, then evaluate; a resumed run
    continues to the same budget. With --max-steps too, whichever comes first (default: no limit)."""
    lr: float | None = None
    """Peak learning rate of AdamW (default: the architecture's: lines 3e-3, grid64 1e-3)."""
    schedule: str = "cosine"
    """Learning-rate schedule after the warmup, over the run's budget (steps, or time with --max-time):
    cosine (to lr * min_lr_ratio), linear (to lr * min_lr_ratio) or constant."""
    weight_decay: float = 0.01
    """AdamW weight decay on matrices."""
    warmup_steps: int | None = None
    """Linear warmup steps (default: 5% of --max-steps, at most 200; 100 with --max-time alone)."""
    label_smoothing: float = 0.0
    """Label smoothing of the training loss."""
    min_lr_ratio: float = 0.1
    """The schedule ends at lr * min_lr_ratio."""
    grad_clip: float = 1.0
    """Clip the gradient norm to this; 0 disables. Steps whose gradient is not finite are skipped."""
    accelerator: str = "cpu"
    """cpu or gpu."""
    devices: int = 1
    """Devices (processes or GPUs) per node; more than one trains with DDP."""
    num_nodes: int = 1
    """Machines of a multi-node DDP job (Lightning's num_nodes), each with --devices: start the same command on
    every node with torchrun or SLURM's srun, which set the ranks; 1 = this machine only."""
    precision: str = "32-true"
    """Lightning precision: 32-true, bf16-mixed, 16-mixed (gpu), ..."""
    val_every: int | None = None
    """Steps between validations (default: --max-steps / 10; 250 with --max-time alone)."""
    val_size: int = 1000
    """Validate on a fixed seeded subsample of this many val programs; 0 = the whole val role."""
    checkpoint_every: int | None = None
    """Steps between resumable checkpoints (default: --max-steps / 10; 500 with --max-time alone)."""
    select: str = "best"
    """Checkpoint to evaluate: best (lowest val/loss; last when there is no val role) or last."""
    log_every: int = 10
    """Steps between logged training metrics."""

    @property
    def world_size(self) -> int:
        """Training processes in all: --devices on each of --num-nodes machines."""
        return self.devices * self.num_nodes

    def lightning_args(self) -> dict:
        """The hardware arguments of Lightning's Trainer: accelerator, devices, num_nodes, strategy (DDP past one process)."""
        return {"accelerator": self.accelerator, "devices": self.devices, "num_nodes": self.num_nodes,
                "strategy": "ddp" if self.world_size > 1 else "auto"}

    @property
    def resolved_max_steps(self) -> int | None:
        """The step limit (None: only the time budget stops the run)."""
        if self.max_steps is not None:
            return self.max_steps
        return None if self.max_time is not None else DEFAULT_STEPS

    @property
    def resolved_warmup(self) -> int:
        if self.warmup_steps is not None:
            return self.warmup_steps
        steps = self.resolved_max_steps
        return 100 if steps is None else min(200, max(1, steps // 20))

    @property
    def resolved_val_every(self) -> int:
        steps = self.resolved_max_steps
        return self.val_every or (250 if steps is None else max(1, steps // 10))

    @property
    def resolved_checkpoint_every(self) -> int:
        steps = self.resolved_max_steps
        return self.checkpoint_every or (500 if steps is None else max(1, steps // 10))

    def problems(self) -> list[str]:
        out = finite_number_problems(self, ("lr", "weight_decay", "label_smoothing", "min_lr_ratio", "grad_clip",
                                            "max_time"))
        finite = not out  # range checks below only when every number is finite (else they repeat the problem)
        if self.max_steps is not None and self.max_steps < 1:
            out.append(f"--max-steps must be >= 1, got {self.max_steps}")
        if finite and self.max_time is not None and self.max_time <= 0:
            out.append(f"--max-time must be > 0 minutes, got {self.max_time}")
        if finite and self.lr is not None and self.lr <= 0:
            out.append(f"--lr must be > 0, got {self.lr}")
        if self.schedule not in SCHEDULES:
            out.append(f"--schedule must be one of {', '.join(SCHEDULES)}, got '{self.schedule}'")
        if finite and self.weight_decay < 0:
            out.append(f"--weight-decay must be >= 0, got {self.weight_decay}")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            out.append(f"--warmup-steps must be >= 0, got {self.warmup_steps}")
        if finite and not 0 <= self.label_smoothing < 1:
            out.append(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if finite and not 0 <= self.min_lr_ratio <= 1:
            out.append(f"--min-lr-ratio must be in [0, 1], got {self.min_lr_ratio}")
        if finite and self.grad_clip < 0:
            out.append(f"--grad-clip must be >= 0 (0 disables clipping), got {self.grad_clip}")
        if self.accelerator not in ("cpu", "gpu"):
            out.append(f"--accelerator must be 'cpu' or 'gpu', got '{self.accelerator}'")
        if self.devices < 1:
            out.append(f"--devices must be >= 1, got {self.devices}")
        if self.num_nodes < 1:
            out.append(f"--num-nodes must be >= 1, got {self.num_nodes}")
        if self.precision not in PRECISIONS:
            out.append(f"--precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")
        elif self.precision.startswith("16") and self.accelerator == "cpu":
            out.append(f"--precision {self.precision} needs --accelerator gpu; on CPU use bf16-mixed or 32-true")
        for name in ("val_every", "checkpoint_every", "log_every"):
            v = getattr(self, name)
            if v is not None and v < 1:
                out.append(f"--{name.replace('_', '-')} must be >= 1, got {v}")
        if self.val_size < 0:
            out.append(f"--val-size must be >= 0 (0 = the whole val role), got {self.val_size}")
        if self.select not in ("best", "last"):
            out.append(f"--select must be 'best' or 'last', got '{self.select}'")
        return out


# -------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class EvalSettings:
    """How a trained model is evaluated (recorded in the run's config)."""

    roles: tuple[str, ...] | None = None
    """Roles to evaluate, comma-separated (default: every role of the view)."""
    samples: int = 0
    """Sampled programs per task (0 = greedy only). Needed for pass@k with k > 1."""
    k: tuple[int, ...] = (1,)
    """k values for sampled pass@k, comma-separated, each <= --samples; greedy always gives pass@1
    (default: 1; with --samples N: 1, min(10, N), N)."""
    temperature: float = 1.0
    """Sampling temperature (> 0)."""
    offgrid_points: int = 32
    """Random points off the grid for the aliasing check."""
    seed: int = 0
    """Seeds the samples and the off-grid points."""
    batch_size: int = 256
    """Functions decoded at once."""
    limit: int | None = None
    """Evaluate at most this many programs per role (a seeded random subset) (default: all)."""
    beam: int = 0
    """Beam search with this many beams per task as well (0 = off): beam_pass@1 (the best beam) and
    beam_pass@W (any of the W beams)."""

    def __post_init__(self):
        problems = []
        if self.samples < 0:
            problems.append(f"--samples must be >= 0, got {self.samples}")
        if any(k < 1 for k in self.k):
            problems.append(f"--k values must be >= 1, got {list(self.k)}")
        elif self.samples and max(self.k) > self.samples:
            problems.append(f"--k {max(self.k)} needs at least that many --samples (got {self.samples})")
        elif not self.samples and any(k > 1 for k in self.k):
            problems.append(f"--k {max(self.k)} needs --samples N with N >= {max(self.k)} (greedy decoding gives pass@1 only)")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            problems.append(f"--temperature must be a finite number > 0, got {self.temperature}")
        if not 0 <= self.seed <= MAX_SEED:
            problems.append(f"--eval-seed must be in [0, 2**32 - 1], got {self.seed}")
        if self.offgrid_points < 1:
            problems.append(f"--offgrid-points must be >= 1, got {self.offgrid_points}")
        if self.batch_size < 1:
            problems.append(f"--eval-batch-size must be >= 1, got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            problems.append(f"--eval-limit must be >= 1, got {self.limit}")
        if self.beam < 0:
            problems.append(f"--beam must be >= 0 (0 = no beam search), got {self.beam}")
        if problems:
            raise GensynthError("Invalid evaluation settings: " + "; ".join(problems) + ".")


# ----------------------------------------------------------------------- runtime


@dataclass(frozen=True)
class RuntimeSettings:
    """How fast a run computes, not what: recorded with the run, left out when sweeps compare configurations."""

    threads: int | None = None
    """Torch threads of each training process (default: the cores available to the process / --devices)."""

    def problems(self) -> list[str]:
        if self.threads is not None and self.threads < 1:
            return [f"--threads must be >= 1, got {self.threads}"]
        return []

    def resolved_threads(self, devices: int = 1) -> int:
        return self.threads if self.threads is not None else max(1, available_cores() // max(1, devices))


# -------------------------------------------------------------------------- run


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; stored resolved in config.json and runs.config."""

    data: DataSettings
    model: ModelSpec = field(default_factory=ModelSpec)
    training: TrainSettings = field(default_factory=TrainSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)

    def __post_init__(self):
        if self.training.lr is None:  # recorded resolved: the architecture's measured default
            lr = self.model.architecture().default_lr
            object.__setattr__(self, "training", dataclasses.replace(self.training, lr=lr))
        problems = self.data.problems() + self.training.problems() + self.runtime.problems()
        t = self.training
        if self.data.batch_size >= 1 and t.devices >= 1 and t.num_nodes >= 1 and self.data.batch_size < t.world_size:
            problems.append(f"--batch-size ({self.data.batch_size}) must be at least --devices ({t.devices})"
                            + (f" x --num-nodes ({t.num_nodes})" if t.num_nodes > 1 else ""))
        if problems:
            raise GensynthError("Invalid training options:\n  - " + "\n  - ".join(problems) + "\nFix them and run again.")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "RunConfig":
        """The config recorded in a run's config.json, including runs recorded by earlier versions."""
        model = {"arch": "grid64", **d["model"]}  # runs recorded before the registry are grid64
        training = dict(d["training"])
        training.setdefault("grad_clip", 0.0)  # runs recorded before clipping existed trained without it
        training.setdefault("val_size", 0)  # ... and validated on the whole val role
        ev = dict(d["eval"])
        ev["k"] = tuple(ev["k"])
        ev["roles"] = None if ev["roles"] is None else tuple(ev["roles"])
        return cls(data=DataSettings(**d["data"]), model=ModelSpec(**model),
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
