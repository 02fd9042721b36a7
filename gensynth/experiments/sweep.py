"""`gensynth sweep`: run an experiment grid of `gensynth train` runs, skipping what is done.

A sweep is a small TOML file (shipped ones: ``sweeps/density.toml``, ``support.toml``,
``scaling.toml``)::

    name = "support"
    description = "Support generalisation: ..."

    [grid]                      # every combination of these lists is one run
    view = ["support_syntactic", "support_semantic", "support_joint"]
    size = ["micro"]
    seed = [0, 1, 2]
    max_steps = [2000]

    [train]                     # options given to every run
    batch_size = 256
    eval_limit = 2000

Keys are `gensynth train` options by their config name (``--max-steps`` is
``max_steps``); ``split``/``splits``, ``sizes``, ``seeds`` and ``steps`` are accepted
for ``view``, ``size``, ``seed`` and ``max_steps``. ``--set KEY=VALUE`` on the command
line replaces a key (a comma-separated value becomes a grid list).

Each run is a ``gensynth train`` command (``--parallel N`` at a time) on an executor
(``gensynth.experiments.executors``): a local subprocess (``--executor local``, the default)
or a task on a Ray cluster (``--executor ray [--address ADDRESS]``). Before starting
anything the sweep validates every run's configuration exactly as ``gensynth train``
would, and matches it against the runs this warehouse already has (run directories and
the ``runs`` table), comparing the full resolved configuration (``runs.config``: data,
model, training, eval) and the warehouse data version:

* a finished run with the same configuration and data version -> skipped;
* a run with that configuration still training in another process -> left alone;
* one that was killed ('running' but no process holds it) or interrupted -> continued
  with ``gensynth train --resume RUN_ID``;
* otherwise -> trained.

So a sweep that was interrupted (Ctrl-C, a killed terminal, a reboot) continues where it
stopped when run again. Each run's output goes to ``<warehouse dir>/sweeps/<name>/``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
import json
import re
import signal
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from gensynth.errors import GensynthError
from gensynth.warehouse import SWEEPS_DIR  # sweeps/ ships in the package (gensynth/sweeps in a wheel)

ALIASES = {"split": "view", "splits": "view", "views": "view", "sizes": "size", "seeds": "seed", "steps": "max_steps"}
# `gensynth train` options whose CLI value is a comma-separated list.
LIST_FLAGS = ("eval_roles", "k")
TOP_KEYS = ("name", "description", "grid", "train")
SWEEP_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# How `gensynth train` records a run stopped by Ctrl-C / SIGINT: its own message, or the
# SystemExit that Lightning raises after catching the KeyboardInterrupt. Such runs resume.
INTERRUPTED = ("interrupted", "KeyboardInterrupt", "SystemExit")


def train_flags() -> tuple[str, ...]:
    """The configuration options of `gensynth train` (config names), from the run configuration's dataclasses."""
    from gensynth.learning.options import option_names

    return option_names()


@dataclass(frozen=True)
class SweepRun:
    """One point of the grid: the `gensynth train` options that define it."""

    index: int
    options: dict
    varying: tuple[str, ...] = ()  # the grid keys (labels show these)

    @property
    def view(self) -> str:
        v = str(self.options["view"])
        return v if v.startswith("split_") else f"split_{v}"

    def argv(self, threads: int | None = None) -> list[str]:
        """Options as `gensynth train` arguments (without the warehouse and -q).

        ``threads`` is the sweep's share of the cores per run; a ``threads`` key in the
        sweep file wins over it.
        """
        out = []
        options = {**({"threads": threads} if threads else {}), **self.options, "view": self.view}
        for key, value in options.items():
            if isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            out += [f"--{key.replace('_', '-')}", str(value)]
        return out

    def label(self) -> str:
        short = {"view": "", "size": "", "seed": "seed ", "max_steps": "steps "}
        keys = ["view"] + [k for k in self.varying if k != "view"]
        parts = [f"{short.get(k, k + ' ')}{self.options[k]}" for k in keys]
        return " ".join(p.strip() for p in parts)

    def expected_config(self) -> dict:
        """The resolved configuration `gensynth train` would record (runs.config), minus run_id, resolved and runtime."""
        from gensynth.learning.options import run_config

        config = run_config({**self.options, "view": self.view})
        return _comparable(json.loads(json.dumps(config.to_json())))


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file."""

    name: str
    description: str
    path: Path
    runs: tuple[SweepRun, ...]


def resolve_sweep_path(spec: str | Path) -> Path:
    """A sweep file path, or the name of a shipped sweep ('density' -> sweeps/density.toml)."""
    p = Path(spec)
    if p.is_file():
        return p
    shipped = SWEEPS_DIR / f"{spec}.toml"
    if shipped.is_file():
        return shipped
    known = sorted(f.stem for f in SWEEPS_DIR.glob("*.toml"))
    raise GensynthError(f"No sweep file '{spec}'. Give a path to a TOML file or a shipped sweep: {', '.join(known)}.")


def load_sweep(spec: str | Path, overrides: list[str] | None = None) -> Sweep:
    """Parse and validate a sweep file (all problems reported together), applying ``--set`` overrides."""
    path = resolve_sweep_path(spec)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise GensynthError(f"Sweep file '{path}' is not valid TOML: {exc}.") from None
    problems: list[str] = []
    flags = train_flags()
    for key in data:
        if key not in TOP_KEYS:
            problems.append(f"unknown top-level key '{key}' (allowed: {', '.join(TOP_KEYS)})")
    grid_raw, fixed_raw = data.get("grid", {}), data.get("train", {})
    if not isinstance(grid_raw, dict) or not isinstance(fixed_raw, dict):
        problems.append("[grid] and [train] must be tables")
        grid_raw, fixed_raw = {}, {}

    def canon(key: str, where: str) -> str | None:
        name = ALIASES.get(key, key)
        if name in flags:
            return name
        close = difflib.get_close_matches(name, list(flags) + list(ALIASES), n=1)
        problems.append(f"{where}: unknown option '{key}'" + (f" (did you mean '{close[0]}'?)" if close else "")
                        + " — keys are `gensynth train` options by config name, e.g. max_steps for --max-steps")
        return None

    grid: dict[str, list] = {}
    fixed: dict[str, object] = {}
    for key, value in grid_raw.items():
        name = canon(key, "[grid]")
        if name is None:
            continue
        values = value if isinstance(value, list) else [value]
        if not values:
            problems.append(f"[grid] {key}: the list is empty")
        elif len({json.dumps(v) for v in values}) != len(values):
            problems.append(f"[grid] {key}: values repeat ({values})")
        grid[name] = values
    for key, value in fixed_raw.items():
        name = canon(key, "[train]")
        if name is None:
            continue
        if name in grid:
            problems.append(f"'{name}' is in both [grid] and [train]; keep it in one")
        fixed[name] = value
    for item in overrides or []:
        if "=" not in item:
            problems.append(f"--set '{item}': write KEY=VALUE, e.g. --set max_steps=50 or --set seed=0,1")
            continue
        key, text = (s.strip() for s in item.split("=", 1))
        name = canon(key, "--set")
        if name is None:
            continue
        values = [_parse_scalar(v) for v in text.split(",")] if name not in LIST_FLAGS else [text]
        grid.pop(name, None)
        fixed.pop(name, None)
        if len(values) > 1:
            grid[name] = values
        else:
            fixed[name] = values[0]
    if "view" not in grid and "view" not in fixed:
        problems.append("no split: add view = [\"support_syntactic\", ...] to [grid]")
    name = str(data.get("name", path.stem))
    if sweep_name_problem(name):
        problems.append(sweep_name_problem(name))
    if problems:
        raise GensynthError(f"Sweep file '{path}' has problems:\n  - " + "\n  - ".join(problems) + "\nFix them and run again.")
    keys = list(grid)
    runs = []
    for i, combo in enumerate(itertools.product(*(grid[k] for k in keys))):
        options = {**dict(zip(keys, combo)), **fixed}
        options = {"view": options.pop("view"), **options}  # view first: reads well in labels
        runs.append(SweepRun(i, options, tuple(keys)))
    return Sweep(name, str(data.get("description", "")).strip(), path, tuple(runs))


def _parse_scalar(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


# ------------------------------------------------------------------------- planning


@dataclass
class Existing:
    """A run this warehouse already has (from its run directory and/or its runs row)."""

    run_id: str
    config: dict  # data, model, training, eval
    status: str
    data_version: str | None
    error: str | None = None
    active: bool = False


@dataclass
class Planned:
    """What the sweep does with one grid point."""

    run: SweepRun
    action: str  # 'skip' (finished), 'busy' (training elsewhere), 'resume', 'train'
    run_id: str | None = None
    status: str = ""  # after execution: finished, failed, skipped, busy, not run
    seconds: float = 0.0
    note: str = ""
    log: Path | None = None


def _comparable(cfg: dict) -> dict:
    """The parts of a run's configuration that define its result.

    ``runtime`` (torch threads) changes speed, not what is computed, and a sweep sets it
    from --parallel: a run finished with 2 threads counts for a rerun with 1.
    """
    return {k: cfg.get(k) for k in ("data", "model", "training", "eval")}


def _recorded(cfg: dict) -> dict:
    """A recorded run's comparable configuration, with the fields earlier versions did not record filled in
    as those versions ran (gensynth.learning.config.RunConfig.from_json); as recorded if it does not parse."""
    from gensynth.learning.config import RunConfig

    try:
        return _comparable(json.loads(json.dumps(RunConfig.from_json(cfg).to_json())))
    except (GensynthError, KeyError, TypeError, ValueError):
        return _comparable(cfg)


def sweep_threads(parallel: int) -> int:
    """Torch threads per run when ``parallel`` runs share the cores available to this process."""
    from gensynth.learning.train import available_cores

    return max(1, available_cores() // parallel)


def sweep_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a sweep name, or None. It names the log folder <warehouse dir>/sweeps/<name>/."""
    if SWEEP_NAME_RE.match(name):
        return None
    return (f"name '{name}' is not a valid sweep name: it names the log folder <warehouse dir>/sweeps/<name>/, so it "
            f"must be a plain name of letters, digits, '_' and '-', starting with a letter or digit, at most 64 "
            f"characters (no '/', '..' or absolute path); change `name = ...`")


def existing_runs(warehouse: Path) -> list[Existing]:
    """Runs of this warehouse: run directories (authoritative) plus runs rows without a directory."""
    from gensynth.results.ingest import run_dirs
    from gensynth.learning.train import run_is_active

    found: dict[str, Existing] = {}
    for d in run_dirs(warehouse):
        try:
            cfg = json.loads((d / "config.json").read_text())
            state = json.loads((d / "state.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        found[d.name] = Existing(d.name, _recorded(cfg), state.get("status", "?"), state.get("data_version"),
                                 state.get("error"), run_is_active(d))
    from gensynth.results.ingest import connect_retrying, has_results_tables

    con = connect_retrying(warehouse, read_only=True)
    try:
        if has_results_tables(con):
            for run_id, cfg, status, version, error in con.execute(
                    "SELECT run_id, config, status, data_version, error FROM runs").fetchall():
                if run_id not in found:
                    found[run_id] = Existing(run_id, _recorded(json.loads(cfg)), status, version, error)
    finally:
        con.close()
    return sorted(found.values(), key=lambda e: e.run_id)


def plan_sweep(warehouse: Path, sweep: Sweep) -> list[Planned]:
    """Validate every run's configuration and decide, per run, skip / busy / resume / train."""
    from gensynth.results.ingest import connect_retrying

    warehouse = Path(warehouse)
    problems, expected = [], {}
    for run in sweep.runs:
        try:
            expected[run.index] = _comparable(run.expected_config())
        except GensynthError as exc:
            problems.append(f"run {run.index} ({run.label()}): {exc}")
    con = connect_retrying(warehouse, read_only=True)
    try:
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE schema_name = 'main'").fetchall()}
        version = (con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone() or [None])[0]
    finally:
        con.close()
    splits = sorted(v for v in views if v.startswith("split_"))
    for view in sorted({r.view for r in sweep.runs} - views):
        close = difflib.get_close_matches(view, splits, n=1)
        problems.append(f"no split view '{view}' in '{warehouse}'" + (f" (did you mean '{close[0]}'?)" if close else "")
                        + f"; splits here: {', '.join(splits) or 'none (build with manifolds first)'}")
    if problems:
        raise GensynthError(f"Sweep '{sweep.name}' cannot start:\n  - " + "\n  - ".join(problems)
                            + "\nNothing was run. Fix the sweep file (or --set) and run again.")
    have = existing_runs(warehouse)
    plan = []
    for run in sweep.runs:
        same = [e for e in have if e.config == expected[run.index]]
        current = [e for e in same if e.data_version == version]
        finished = [e for e in current if e.status == "finished"]
        active = [e for e in current if e.status == "running" and e.active]
        resumable = [e for e in current if not e.active and (
            e.status == "running" or (e.status == "failed" and (e.error or "").startswith(INTERRUPTED)))]
        if finished:
            plan.append(Planned(run, "skip", finished[-1].run_id, note=f"{len(finished)} finished run(s)"))
        elif active:
            plan.append(Planned(run, "busy", active[-1].run_id, note="training in another process"))
        elif resumable:
            plan.append(Planned(run, "resume", resumable[-1].run_id, note=f"was {resumable[-1].status}"))
        else:
            failed = [e for e in current if e.status == "failed"]
            plan.append(Planned(run, "train", note=f"{len(failed)} earlier failed run(s)" if failed else ""))
    return plan


# ------------------------------------------------------------------------ execution


class _Runner:
    """Starts a sweep's runs on an executor (gensynth.experiments.executors), one log file each, and records how each ended."""

    def __init__(self, warehouse: Path, sweep: Sweep, executor, threads: int, quiet: bool, total: int):
        self.warehouse, self.sweep, self.executor, self.quiet, self.total = warehouse, sweep, executor, quiet, total
        self.log_dir = warehouse.parent / "sweeps" / sweep.name
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.threads = threads
        self.done = 0

    def start(self, p: Planned):
        from gensynth.results.ingest import run_dirs

        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        p.log = self.log_dir / f"{p.run.index:03d}-{stamp}.log"
        p.log.write_text(f"# sweep {self.sweep.name} run {p.run.index}: {p.run.label()} ({p.action}, "
                         f"executor {self.executor.name})\n")
        args = ["--resume", p.run_id] if p.action == "resume" else p.run.argv(self.threads)
        before = frozenset(d.name for d in run_dirs(self.warehouse))
        threads = p.run.options.get("threads") if p.action == "train" else None  # a sweep key wins over the share
        job = self.executor.start(p, args, p.log, threads=int(threads) if threads else None)
        job.before = before
        return job

    def finish(self, job) -> None:
        from gensynth.progress import console

        p = job.planned
        p.seconds = time.monotonic() - job.started
        if p.action == "train":
            p.run_id = _new_run_id(self.warehouse, set(job.before), p)
        if p.run_id and self.executor.defers_ingest:  # the driver is the warehouse's one writer
            from gensynth.results.ingest import sync

            sync(self.warehouse, run_ids=[p.run_id])
        p.status = _run_status(self.warehouse, p.run_id) if p.run_id else "failed"
        if job.returncode != 0 and p.status == "finished":
            p.status = "failed"
        if p.status != "finished":
            p.note = f"exit {job.returncode}: {_last_error(p.log)} (log: {p.log})"
        self.done += 1
        if not self.quiet:
            console.print(f"[{self.done}/{self.total}] {p.run.label()}: {p.status}" + (f" ({p.run_id})" if p.run_id else "")
                          + f" in {p.seconds:.0f} s" + ("" if p.status == "finished" else f"; log {p.log}"))


def run_sweep(warehouse: Path, sweep: Sweep, parallel: int = 1, quiet: bool = False, dry_run: bool = False,
              python: str | None = None, executor: str = "local", address: str | None = None) -> list[Planned]:
    """Plan the sweep and run what is left, ``parallel`` runs at a time on ``executor`` (local or ray)."""
    from gensynth.experiments.executors import check_executor, make_executor
    from gensynth.progress import Stages, console

    if parallel < 1:
        raise GensynthError(f"--parallel must be >= 1, got {parallel}.")
    check_executor(executor, address)
    if sweep_name_problem(sweep.name):
        raise GensynthError(f"Sweep '{sweep.path}': {sweep_name_problem(sweep.name)}. Nothing was run.")
    warehouse = Path(warehouse).resolve()
    plan = plan_sweep(warehouse, sweep)
    for p in plan:
        p.status = {"skip": "skipped", "busy": "busy"}.get(p.action, "not run")
    todo = [p for p in plan if p.action in ("train", "resume")]
    if dry_run or not todo:
        return plan
    threads = sweep_threads(parallel)
    runner = _Runner(warehouse, sweep, make_executor(executor, warehouse, threads, python, address), threads, quiet,
                     len(todo))
    queue, running = list(todo), []

    def on_term(signum, frame):
        raise KeyboardInterrupt

    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, on_term)
    try:
        with Stages(quiet=quiet) as stages, stages.stage(f"sweep {sweep.name}", total=len(todo)) as advance:
            while queue or running:
                while queue and len(running) < parallel:
                    p = queue.pop(0)
                    if not quiet:
                        console.print(f"start {p.action}: {p.run.label()}" + (f" ({p.run_id})" if p.run_id else ""))
                    running.append(runner.start(p))
                for job in runner.executor.wait(running):
                    running.remove(job)
                    runner.finish(job)
                    advance(runner.done)
    except KeyboardInterrupt:
        runner.executor.interrupt(running)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        runner.executor.close()
    return plan


def _last_error(log: Path) -> str:
    """The last 'Error: ...' line of a run's log (else its last line), shortened."""
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except FileNotFoundError:
        return "no log"
    errors = [ln for ln in lines if ln.startswith("Error:")]
    text = (errors or lines or ["no output"])[-1]
    return text if len(text) <= 160 else text[:157] + "..."


def _new_run_id(warehouse: Path, before: set[str], p: Planned) -> str | None:
    """The run directory a `gensynth train` process created for this grid point."""
    from gensynth.results.ingest import run_dirs

    expected = _comparable(p.run.expected_config())
    new = [d for d in run_dirs(warehouse) if d.name not in before]
    for d in reversed(new):
        try:
            if _comparable(json.loads((d / "config.json").read_text())) == expected:
                return d.name
        except (FileNotFoundError, json.JSONDecodeError):
            continue
    return None


def _run_status(warehouse: Path, run_id: str) -> str:
    from gensynth.results.ingest import runs_root

    try:
        return json.loads((runs_root(warehouse) / run_id / "state.json").read_text()).get("status", "?")
    except (FileNotFoundError, json.JSONDecodeError):
        return "failed"
