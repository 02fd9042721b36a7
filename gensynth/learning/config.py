"""Run configuration: what defines a training run, as small frozen dataclasses.

``RunConfig`` groups the data, model, training, evaluation and runtime settings; it is
stored resolved in the run's ``config.json`` and in ``runs.config``. Every field has a
docstring and every problem names its flag.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from gensynth.errors import GensynthError
from gensynth.learning.predictions import EvalSettings

PRECISIONS = ("32-true", "32", "64-true", "bf16-mixed", "bf16-true", "16-mixed", "16-true")
MODEL_FLAGS = ("d_model", "n_heads", "n_enc_layers", "n_dec_layers", "d_ff", "dropout")
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
