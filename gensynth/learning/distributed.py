"""One run across several processes or machines: how every DDP rank finds the run's directory.

``gensynth train --devices N`` on one machine: Lightning starts ranks 1..N-1 by re-running
the command line; they inherit ``$GENSYNTH_DDP_RUN_DIR`` (set by rank 0 before fitting).

``--num-nodes N`` (or any launcher that starts every rank itself: torchrun, SLURM's srun,
or Lightning's own multi-node mode with ``MASTER_ADDR``/``NODE_RANK`` set by hand) runs the
same ``gensynth train`` command line in every process. Only global rank 0 makes the run
(reads the split, writes the run directory, evaluates, ingests); before fitting it
*announces* the run directory in ``runs/.ddp/<job>.json`` in the shared warehouse
directory, where ``<job>`` names the launch (SLURM job and step, or the rendezvous address
and torchrun run id), and every other rank waits for that file, then trains alongside
rank 0 and exits. The warehouse directory must be on a filesystem every node mounts at
the same path. Nothing here imports torch.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from gensynth.errors import GensynthError

ANNOUNCE_DIR = ".ddp"
WAIT_S = 3600.0  # how long a rank > 0 waits for rank 0 to announce the run (rank 0 reads the split first)
STALE_MARGIN_S = 60.0  # an announcement written this long before this process started is an earlier launch's
_STARTED = time.time()


def _int_env(*names: str) -> int | None:
    for name in names:
        raw = os.environ.get(name, "")
        if raw.strip().lstrip("-").isdigit():
            return int(raw)
    return None


def launched_rank() -> tuple[int, int | None] | None:
    """(global rank, world size) of a process that a multi-process launcher started; None for a plain process.

    torchrun sets RANK and WORLD_SIZE; SLURM's srun sets SLURM_PROCID and SLURM_NTASKS; in
    Lightning's multi-node mode the person sets NODE_RANK on each machine (then the rank is
    some rank > 0 on nodes > 0 and the world size unknown until Lightning starts).
    """
    world = _int_env("WORLD_SIZE")
    rank = _int_env("RANK")
    if rank is not None and world is not None and world > 1:
        return rank, world
    procid, ntasks = _int_env("SLURM_PROCID"), _int_env("SLURM_NTASKS")
    if procid is not None and ntasks is not None and ntasks > 1:
        return procid, ntasks
    node = _int_env("NODE_RANK", "GROUP_RANK")
    if node is not None and node > 0:
        return node, world
    return None


def job_name() -> str:
    """A file name for this launch, the same in every one of its processes."""
    if os.environ.get("SLURM_JOB_ID"):
        raw = f"slurm-{os.environ['SLURM_JOB_ID']}-{os.environ.get('SLURM_STEP_ID', '0')}"
    else:
        raw = "-".join(os.environ.get(v, "") for v in ("MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"))
        raw = f"ddp-{raw}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", raw)[:200]


def announcement(runs_root: Path) -> Path:
    return Path(runs_root) / ANNOUNCE_DIR / f"{job_name()}.json"


def _is_announcer(num_nodes: int) -> bool:
    ranked = launched_rank()
    return ranked[0] == 0 if ranked is not None else num_nodes > 1


def announce(run_dir: Path, env_var: str, num_nodes: int = 1) -> None:
    """Rank 0, before fitting: tell the other ranks where the run is (env for Lightning's children, a file for the rest)."""
    os.environ[env_var] = str(run_dir)
    if not _is_announcer(num_nodes):
        return
    ranked = launched_rank()
    path = announcement(run_dir.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"run_dir": str(run_dir), "written_at": time.time(), "world_size": ranked[1] if ranked else None}))
    os.replace(tmp, path)


def withdraw(run_dir: Path, env_var: str, num_nodes: int = 1) -> None:
    """Rank 0, after fitting (every rank has joined by then): remove the announcement."""
    os.environ.pop(env_var, None)
    if _is_announcer(num_nodes):
        announcement(run_dir.parent).unlink(missing_ok=True)


def worker_run_dir(env_var: str, runs_root: Path | None) -> Path | None:
    """The run directory when this process is a DDP rank > 0 (it trains and exits); None for rank 0 or a plain run."""
    d = os.environ.get(env_var)
    if d and (_int_env("LOCAL_RANK") or 0) > 0:  # started by Lightning on this machine
        return Path(d)
    ranked = launched_rank()
    if ranked is None or ranked[0] == 0 or runs_root is None:
        return None
    return wait_for_announcement(Path(runs_root), ranked)


def wait_for_announcement(runs_root: Path, ranked: tuple[int, int], wait_s: float = WAIT_S) -> Path:
    path = announcement(runs_root)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            note = json.loads(path.read_text())
            if note["written_at"] >= _STARTED - STALE_MARGIN_S and Path(note["run_dir"]).is_dir():
                return Path(note["run_dir"])
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(1.0)
    raise GensynthError(f"Rank {ranked[0]} of {ranked[1] or 'the job'} waited {wait_s:.0f} s for rank 0 to announce the run in "
                        f"'{path}' and it did not. Every rank must run the same `gensynth train` command with the "
                        f"same --warehouse, on a directory all nodes share at the same path; check rank 0's output.")
