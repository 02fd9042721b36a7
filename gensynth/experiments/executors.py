"""Where a sweep's `gensynth train` runs execute: local subprocesses or Ray tasks, behind one interface.

``gensynth sweep --executor NAME`` picks one of ``EXECUTORS``:

* ``local`` (the default): each run is a ``gensynth train`` subprocess of the sweep
  process; each run ingests its own results into the warehouse (one machine: DuckDB's
  file lock serialises the writers, ``gensynth.results.ingest``).
* ``ray``: each run is a Ray task (``pip install 'gensynth[cluster]'``) that runs the same
  ``gensynth train`` command line in a subprocess on whichever node Ray schedules it,
  reserving ``num_cpus`` = the run's torch threads. ``--address`` joins a running cluster
  (``ray://host:10001`` or ``auto``); with none, a local Ray instance is started on this
  machine's cores, so the same command runs on a laptop and a cluster. A task writes its
  run directory (and its log) into the shared warehouse directory, which must be mounted
  at the same path on every node; it reads the warehouse read-only for the split's
  snapshot but never writes it (``$GENSYNTH_DEFER_INGEST``): the sweep's driver process
  ingests each run as its task completes, so the one DuckDB file keeps one writer.

An executor has ``start(planned, args, log, threads) -> Job``, ``wait(jobs) -> finished jobs``
(``returncode`` set), ``interrupt(jobs)`` (Ctrl-C: let each run record itself as
interrupted, hence resumable) and ``close()``; ``defers_ingest`` says whether the driver
ingests. Ray is imported only by the ray executor (``gensynth sweep --help`` stays light).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gensynth.errors import GensynthError

CLUSTER_EXTRA = "pip install 'gensynth[cluster]'"
INTERRUPT_GRACE_S = 60  # seconds a run gets to record itself as interrupted before it is killed


@dataclass
class Job:
    """One started run: what the sweep planned, when it started, its log, and the executor's handle."""

    planned: object  # gensynth.experiments.sweep.Planned
    started: float
    log: Path
    handle: object = None
    returncode: int | None = None
    before: frozenset = frozenset()  # run directories that existed when it started


def train_command(python: str, args: list[str], warehouse: Path) -> list[str]:
    """The `gensynth train` command line of one run (the same for every executor)."""
    return [python, "-m", "gensynth", "train", *args, "--quiet", "--warehouse", str(warehouse)]


def run_train(args: list[str], warehouse: str, log: str, env: dict) -> int:
    """Run one `gensynth train` in a subprocess with this interpreter, appending to ``log``; its exit code.

    The body of a Ray task (and usable as is): on KeyboardInterrupt (``ray.cancel``) the
    run gets SIGINT and ``INTERRUPT_GRACE_S`` seconds to record itself as interrupted.
    """
    cmd = train_command(sys.executable, args, Path(warehouse))
    with open(log, "a") as fh:
        fh.write("# " + " ".join(cmd) + "\n")
        fh.flush()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **env}, preexec_fn=default_sigint)
        try:
            while proc.poll() is None:  # a Python loop, not a blocking wait: ray.cancel's KeyboardInterrupt is
                time.sleep(0.5)         # raised between bytecodes, never inside a C call
            return proc.returncode
        except KeyboardInterrupt:
            stop(proc)
            raise


def default_sigint() -> None:
    """In the child before exec: SIGINT unblocked and at its default. A Ray worker's task thread blocks SIGINT,
    and the mask is inherited across exec, so `gensynth train` would never see the SIGINT that lets it record
    itself as interrupted (and resumable)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop(proc: subprocess.Popen) -> None:
    """SIGINT (what Ctrl-C sends) and a grace period, then kill."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=INTERRUPT_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class LocalExecutor:
    """Each run a `gensynth train` subprocess of this process."""

    name = "local"
    defers_ingest = False

    def __init__(self, warehouse: Path, threads: int, python: str | None = None, address: str | None = None):
        self.warehouse, self.exe = warehouse, python or sys.executable
        self.env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            self.env.setdefault(var, str(threads))

    def start(self, planned, args: list[str], log: Path, threads: int | None = None) -> Job:
        cmd = train_command(self.exe, args, self.warehouse)
        fh = open(log, "a")
        fh.write("# " + " ".join(cmd) + "\n")
        fh.flush()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=self.env, stdin=subprocess.DEVNULL)
        return Job(planned, time.monotonic(), log, (proc, fh))

    def wait(self, jobs: list[Job], timeout: float = 0.2) -> list[Job]:
        time.sleep(timeout)
        done = []
        for job in jobs:
            proc, fh = job.handle
            if proc.poll() is not None:
                fh.close()
                job.returncode = proc.returncode
                done.append(job)
        return done

    def interrupt(self, jobs: list[Job]) -> None:
        for job in jobs:
            if job.handle[0].poll() is None:
                job.handle[0].send_signal(signal.SIGINT)
        for job in jobs:
            stop(job.handle[0])
            job.handle[1].close()

    def close(self) -> None:
        pass


def import_ray():
    """The ray module, or the error that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise GensynthError(f"--executor ray needs Ray, which is not installed here ({exc}). Install it with "
                            f"`{CLUSTER_EXTRA}` (on the driver and every node of the cluster), or run the sweep "
                            f"with --executor local. Nothing was run.") from None
    return ray


class RayExecutor:
    """Each run a Ray task (one `gensynth train` subprocess on some node); the driver ingests."""

    name = "ray"
    defers_ingest = True

    def __init__(self, warehouse: Path, threads: int, python: str | None = None, address: str | None = None):
        from gensynth.learning.config import available_cores
        from gensynth.results.ingest import DEFER_INGEST_ENV

        ray = import_ray()
        self.ray, self.warehouse, self.threads = ray, warehouse, threads
        self.env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), DEFER_INGEST_ENV: "1"}
        self.owned = not ray.is_initialized()
        if self.owned:
            try:
                if address is None:  # a local instance on this machine's cores: the laptop case
                    ray.init(num_cpus=max(threads, available_cores()), include_dashboard=False,
                             log_to_driver=False, configure_logging=False, object_store_memory=100 * 2**20)
                else:
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at '{address}'" if address else "a local Ray instance"
                raise GensynthError(f"Could not start or join {where}: {exc}. Check the address (`ray status` on "
                                    f"the head node prints it) or omit --address for a local instance. "
                                    f"Nothing was run.") from None
        # A task asking for more CPUs than any node has would wait forever: reserve at most the largest node's.
        self.node_cpus = max((n.get("Resources", {}).get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=1)
        self.task = ray.remote(num_cpus=threads, max_retries=0)(run_train)

    def start(self, planned, args: list[str], log: Path, threads: int | None = None) -> Job:
        """One task reserving ``threads`` CPUs (the run's torch threads; default the sweep's share)."""
        n = threads or self.threads
        env = {**self.env, "OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n)}
        ref = self.task.options(num_cpus=max(1, min(n, int(self.node_cpus)))).remote(args, str(self.warehouse), str(log), env)
        return Job(planned, time.monotonic(), log, ref)

    def wait(self, jobs: list[Job], timeout: float = 1.0) -> list[Job]:
        refs = {job.handle: job for job in jobs}
        ready, _ = self.ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
        done = []
        for ref in ready:
            job = refs[ref]
            try:
                job.returncode = int(self.ray.get(ref))
            except self.ray.exceptions.RayError as exc:  # the task itself died (node lost, worker killed)
                with open(job.log, "a") as fh:
                    fh.write(f"Error: the Ray task running this run failed: {str(exc).splitlines()[0]}\n")
                job.returncode = -1
            done.append(job)
        return done

    def interrupt(self, jobs: list[Job]) -> None:
        for job in jobs:
            self.ray.cancel(job.handle)  # KeyboardInterrupt in the task: run_train stops its run gracefully
        refs = [job.handle for job in jobs]
        if refs:
            self.ray.wait(refs, num_returns=len(refs), timeout=INTERRUPT_GRACE_S + 10)

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()


EXECUTORS = {"local": LocalExecutor, "ray": RayExecutor}


def check_executor(name: str, address: str | None = None) -> None:
    """Refuse an unknown executor, --address without ray, or ray where it is not installed (before any work)."""
    if name not in EXECUTORS:
        raise GensynthError(f"Unknown --executor '{name}'. Known executors: {', '.join(EXECUTORS)} "
                            f"(local: subprocesses on this machine, the default; ray: tasks on a Ray cluster).")
    if address is not None and name != "ray":
        raise GensynthError(f"--address {address} is for --executor ray (a Ray cluster); the {name} executor runs "
                            f"on this machine. Drop --address or add --executor ray.")
    if name == "ray":
        import_ray()


def make_executor(name: str, warehouse: Path, threads: int, python: str | None = None, address: str | None = None):
    """The executor called ``name`` (see ``EXECUTORS``), started."""
    check_executor(name, address)
    return EXECUTORS[name](warehouse, threads, python=python, address=address)
