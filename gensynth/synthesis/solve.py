"""`gensynth solve`: run a registered synthesizer on a set of tasks and store the run.

Writes a run like `gensynth train` does (runs / metrics / predictions, through a run
directory and ``gensynth.results.ingest``), with ``config.method`` naming the synthesizer,
``config.budget`` the most candidates a task could be charged, ``config.accounting`` how
candidates and seconds were counted, and per task ``predictions.candidates`` /
``search_seconds``. Per-task search details the predictions table has no column for
(status, how, smallest-program guarantee) go to ``search.parquet`` in the run directory
and to metrics.

Methods are modules registering a ``gensynth.synthesis.methods.Synthesizer``; each task
is charged through one ``gensynth.synthesis.budget.Meter`` (one accounting for all).
A method sees a task's examples — its exact values at the shown grid points — never
the warehouse's answer.

Tasks: a split view's role (``--view split_X --role test_ood``), the tasks beyond the
enumerated size (``--view tasks_beyond``), or a user task set (``--tasks FILE``, stored
in ``tasks``; ``--view tasks`` reads one back), the first ``--limit`` in a fixed hashed
order.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gensynth.errors import GensynthError
from gensynth.synthesis import tasks as task_tables
from gensynth.synthesis.budget import Budget, Meter, OutOfBudget
from gensynth.synthesis.tasks import Task
from gensynth.universe.rational import Values

__all__ = ["SolveConfig", "Task", "read_tasks", "solve", "solve_task", "problem_of"]

BEYOND_VIEW = "tasks_beyond"


@dataclass(frozen=True)
class SolveConfig:
    """One solve run's parameters (recorded as runs.config); the CLI's flags and defaults come from here."""

    method: str
    """Synthesizer, by registered name (--method): enumerative, sample_verify, hybrid, ..."""
    view: str
    """Split view whose role supplies the tasks (--view split_NAME), tasks_beyond, or tasks (the stored user tasks)."""
    role: str = "test_ood"
    """Role of the view to solve (--role; ignored for tasks_beyond)."""
    limit: int = 100
    """Solve the first N tasks, in a fixed hashed order (--limit)."""
    budget_candidates: int = 2_000_000
    """Candidates evaluated per task, at most (--budget-candidates): every method, model samples included."""
    budget_seconds: float = 10.0
    """Wall seconds per task from its start, at most (--budget-seconds): every method, sampling included."""
    max_ops: int = 10
    """Largest program searched, in operators (--max-ops)."""
    samples: int = 32
    """Model samples per task, at most (--samples; sample_verify, hybrid)."""
    temperature: float = 1.0
    """Sampling temperature of the model (--temperature)."""
    bank_ops: int = 3
    """hybrid: size of the programs a repair may splice in (--bank-ops)."""
    parent_run: str | None = None
    """Trained run whose model proposes programs (--run; methods that need a model)."""
    n_examples: int | None = None
    """Grid points shown per task (--n-examples); None: all."""
    seed: int = 0
    """Seed of sampling and of the shown points (--seed)."""
    tasks_file: str | None = None
    """File of targets to store in `tasks` and solve (--tasks FILE): formulas one per line, or a CSV/Parquet of values."""
    memory_gb: float = 2.5
    """Memory budget of one search's bank in GB (--memory-gb): bounds how many program sizes are banked."""

    def validate(self) -> None:
        """Refuse bad flags with one message naming each."""
        from gensynth.synthesis.methods import method_names

        problems = []
        names = method_names()
        if self.method not in names:
            problems.append(f"--method must be one of {', '.join(names)} (got {self.method!r})")
        if self.limit < 1:
            problems.append(f"--limit must be >= 1 (got {self.limit})")
        if self.budget_candidates < 1:
            problems.append(f"--budget-candidates must be >= 1 (got {self.budget_candidates}); a zero budget can solve nothing")
        if self.budget_seconds <= 0:
            problems.append(f"--budget-seconds must be > 0 (got {self.budget_seconds})")
        if self.max_ops < 0:
            problems.append(f"--max-ops must be >= 0 (got {self.max_ops})")
        if self.samples < 1:
            problems.append(f"--samples must be >= 1 (got {self.samples})")
        if self.temperature < 0:
            problems.append(f"--temperature must be >= 0 (got {self.temperature})")
        if self.memory_gb <= 0:
            problems.append(f"--memory-gb must be > 0 (got {self.memory_gb})")
        if self.n_examples is not None and self.n_examples < 1:
            problems.append(f"--n-examples must be >= 1 (got {self.n_examples})")
        if self.method in names and self.needs_model and not self.parent_run:
            problems.append(f"--method {self.method} needs a trained model: pass --run RUN_ID (see `gensynth runs list`)")
        if problems:
            raise GensynthError("Invalid solve parameters: " + "; ".join(problems) + ".")

    @property
    def needs_model(self) -> bool:
        from gensynth.synthesis.methods import get_method

        return bool(get_method(self.method).needs_model)

    @property
    def budget(self) -> Budget:
        return Budget(self.budget_candidates, self.budget_seconds, self.max_ops)


def read_tasks(con, config: SolveConfig, grammar) -> list[Task]:
    """The first ``limit`` tasks of the view (or role), in hashed (unbiased, fixed) order."""
    if config.view == BEYOND_VIEW:
        rows = task_tables.beyond_rows(con, config.limit)
    elif config.view == task_tables.USER_VIEW:
        from gensynth.synthesis.task_files import user_tasks

        version = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0]
        return user_tasks(con, grammar, version, limit=config.limit)
    else:
        from gensynth.learning.snapshot import check_split

        split = check_split(con, config.view, require_train=False)
        if config.role not in split.roles:
            raise GensynthError(f"View {split.view} has no role '{config.role}'; its roles are {', '.join(sorted(split.roles))}.")
        rows = con.execute(
            f"SELECT s.program_id, p.prefix, p.function_id FROM {split.view} AS s JOIN programs AS p USING (program_id) "
            "WHERE s.role = ? ORDER BY hash(s.program_id), s.program_id LIMIT ?", [config.role, config.limit]).fetchall()
    return task_tables.tasks_of_programs(rows, grammar)


@dataclass
class Outcome:
    """One task's result."""

    tree: tuple | None
    status: str
    how: str
    exact_up_to: int | None
    candidates: int
    seconds: float


def solve_task(method, problem, budget: Budget, charged_seconds: float = 0.0) -> Outcome:
    """Run ``method`` on one task through a fresh Meter whose clock starts ``charged_seconds`` early."""
    meter = Meter(budget, charged_seconds)
    try:
        attempt = method.solve(problem, meter)
        tree, status, how, exact = attempt.tree, attempt.status, attempt.how, attempt.exact_up_to
    except OutOfBudget as stop:
        tree, status, how, exact = None, stop.status, "", None
    return Outcome(tree, "solved" if tree is not None else status, how, exact, meter.candidates, meter.elapsed())


def problem_of(task: Task, grammar, points: np.ndarray):
    """What a method sees of a task: exact values at the shown points, floats (NaN elsewhere) for a model."""
    from gensynth.synthesis.methods import Problem

    outputs = np.full(task.exact.num.shape[1], np.nan)
    outputs[points] = task.outputs[points]
    target = Values(task.exact.num[:, points], task.exact.den[:, points], task.exact.flt[:, points])
    return Problem(task.program_id, grammar, points, target, outputs)


def solve(warehouse: Path, config: SolveConfig, quiet: bool = False, tasks: list[Task] | None = None) -> dict:
    """Run a synthesizer on a view's tasks (or the given ones); write and ingest its run. Returns a summary dict."""
    from gensynth.learning.snapshot import shown_mask
    from gensynth.progress import Stages
    from gensynth.results.ingest import runs_root
    from gensynth.synthesis.methods import SolveContext, get_method
    from gensynth.universe.grammar import grammar_from_meta
    from gensynth.warehouse import check_schema_version, connect_retrying

    config.validate()
    warehouse = Path(warehouse)
    if config.tasks_file and tasks is None:
        tasks = store_user_tasks(warehouse, Path(config.tasks_file))[: config.limit]
    con = connect_retrying(warehouse, read_only=True)
    try:
        check_schema_version(con, warehouse)
        grammar = grammar_from_meta(con)
        tasks = tasks if tasks is not None else read_tasks(con, config, grammar)
        data_version = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0]
    finally:
        con.close()
    if not tasks:
        raise GensynthError(f"No tasks: role '{config.role}' of {config.view} is empty.")
    cls = get_method(config.method)
    model = None
    if cls.needs_model:
        from gensynth.synthesis.neural import load_proposer

        model = load_proposer(runs_root(warehouse), config.parent_run, config.seed, config.temperature)
    shared_seconds = model.load_seconds if model is not None else 0.0
    method = cls(SolveContext(config, grammar, model))
    n_points = tasks[0].exact.num.shape[1]
    shown = shown_mask(np.array([t.function_id if t.function_id >= 0 else t.program_id for t in tasks]), n_points,
                       config.n_examples, config.seed)
    started = dt.datetime.now(dt.timezone.utc)
    outcomes = []
    with Stages(quiet=quiet) as stages, stages.stage(f"solve ({config.method})", total=len(tasks)) as advance:
        for i, task in enumerate(tasks):
            points = np.flatnonzero(shown[i]) if shown is not None else np.arange(n_points)
            outcomes.append(solve_task(method, problem_of(task, grammar, points), config.budget, shared_seconds / len(tasks)))
            advance(i + 1)
    from gensynth.synthesis.runs import store_run

    return store_run(warehouse, config, grammar, tasks, outcomes, data_version, started, model, shared_seconds)


def store_user_tasks(warehouse: Path, path: Path) -> list[Task]:
    """Read a task file (refusing it whole on any bad line), store it in `tasks`, return its tasks in file order."""
    from gensynth.synthesis.task_files import read_task_file, store_tasks, user_tasks
    from gensynth.universe.grammar import grammar_from_meta
    from gensynth.warehouse import check_schema_version, connect_retrying

    con = connect_retrying(warehouse, read_only=True)
    try:
        check_schema_version(con, warehouse)
        grammar = grammar_from_meta(con)
    finally:
        con.close()
    parsed = read_task_file(path, grammar)  # before anything is written
    con = connect_retrying(warehouse, read_only=False)
    try:
        version = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0]
        ids = store_tasks(con, path, parsed, version)
        return user_tasks(con, grammar, version, ids=ids)
    finally:
        con.close()
