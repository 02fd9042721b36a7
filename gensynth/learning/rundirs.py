"""Run directories: ids, ownership locks, JSON state files and the run's grammar.

A run lives in ``runs/<run_id>/`` next to the warehouse (``gensynth.results.ingest.runs_root``):
``config.json`` (what defines it), ``state.json`` (status, attempts, wall time), the
split's snapshot, checkpoints, logs, evaluations and the results folder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from gensynth.errors import GensynthError



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
    arch: str = ""


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


def read_json(path: Path, default=None):
    """A JSON file's content, or ``default`` when the file does not exist."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return default


def write_json(path: Path, data) -> None:
    """Write JSON atomically (a temporary file renamed over the target)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def grammar_of(run_dir: Path):
    """The run's grammar: grammar.toml, the warehouse's grammar source copied at the start."""
    import tomllib

    from gensynth.universe.grammar import parse_grammar

    src = run_dir / "grammar.toml"
    if not src.exists():
        raise GensynthError(f"Run directory '{run_dir}' has no grammar.toml; it was written by an older gensynth.")
    text = src.read_text()
    return parse_grammar(tomllib.loads(text), text, str(src))




def load_model(run_dir: Path, checkpoint: Path | None = None, device="cpu"):
    """A trained run's model (eval mode, on ``device``), its grammar and its arity table.

    ``checkpoint`` defaults to the one the run evaluated (state.json ``checkpoint_path``,
    set when training finished). Returns ``(model, grammar, arity)``: the model has the
    registry interface (``forward``, ``encode``, ``generate``; ``models.registry``),
    ``arity`` is the (V,) long tensor constrained decoding takes (-1 for the special
    tokens, then each grammar symbol's arity).
    """
    import torch

    from models.blocks import N_SPECIAL
    from models.lit import PBELitModule

    run_dir = Path(run_dir)
    if checkpoint is None:
        state = read_json(run_dir / "state.json", {})
        if state.get("status") != "finished" or not state.get("checkpoint_path"):
            raise GensynthError(f"Run {run_dir.name} is not a finished training run (status '{state.get('status')}'); "
                                f"pick one from `gensynth runs list`.")
        checkpoint = run_dir / state["checkpoint_path"]
    grammar = grammar_of(run_dir)
    try:
        module = PBELitModule.load_from_checkpoint(checkpoint, map_location=torch.device(device))
    except Exception as exc:  # a truncated or foreign file: torch and Lightning raise many kinds
        raise GensynthError(f"The checkpoint '{checkpoint}' of run {run_dir.name} cannot be read ({type(exc).__name__}: "
                            f"{str(exc)[:200]}). Restore it from a copy, or train the run again; nothing was changed.") from None
    model = module.model.to(device).eval()
    arity = torch.tensor([-1] * N_SPECIAL + list(grammar.arities), dtype=torch.long)
    return model, grammar, arity
