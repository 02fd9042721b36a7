"""`gensynth solve`: search-based and hybrid synthesizers on the same splits as the models.

Writes a run like `gensynth train` does (runs / metrics / predictions, through a run
directory and ``gensynth.results.ingest``), with ``config.method`` naming the synthesizer, its
budget and parent model, and per task ``predictions.candidates`` / ``search_seconds``.

Methods (each sees only a task's examples — its function's outputs at the shown grid
points — never the warehouse's answer):

* ``enumerative``: ``gensynth.synthesis.enumerative`` bottom-up search with observational equivalence
  and exact inverse lookups; smallest consistent program within the budget.
* ``sample_verify``: draw up to K programs from a trained run (temperature sampling),
  execute them on the examples, return the first consistent one.
* ``hybrid``: neural-guided repair. The model's K samples are verified first; if none
  fits, each sample is *repaired*: the target is pushed down every root-to-node path by
  exact operator inverses and the value the node would need is looked up among all
  programs up to ``--bank-ops`` operators (built once per task); the smallest repaired
  program wins. Only if no sample can be repaired does it fall back to enumerative search
  with the budget left. The model proposes the program's large-scale shape, which pure
  enumeration reaches only at exponential cost; search supplies the exact small parts the
  model gets wrong. It reaches programs larger than anything either part handles alone.

Tasks: a split view's role (``--view split_X --role test_ood``) or the tasks beyond the
enumerated size (``--view tasks_beyond``), the first ``--limit`` in a fixed hashed order.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gensynth.errors import GensynthError
from gensynth.synthesis.budget import Budget, Meter, OutOfBudget

METHODS = ("enumerative", "sample_verify", "hybrid")
BEYOND_VIEW = "tasks_beyond"


@dataclass(frozen=True)
class SolveConfig:
    """One solve run's parameters (recorded as runs.config)."""

    method: str
    view: str
    role: str = "test_ood"
    limit: int = 100
    budget_candidates: int = 2_000_000
    budget_seconds: float = 10.0
    max_ops: int = 8
    samples: int = 32  # K: model samples per task (sample_verify, hybrid)
    temperature: float = 1.0
    bank_ops: int = 3  # hybrid: size of the programs a repair may splice in
    parent_run: str | None = None
    n_examples: int | None = None  # shown grid points per task (None: all)
    seed: int = 0

    def validate(self) -> None:
        """Refuse bad flags with one message naming each."""
        problems = []
        if self.method not in METHODS:
            problems.append(f"--method must be one of {', '.join(METHODS)} (got {self.method!r})")
        if self.limit < 1:
            problems.append(f"--limit must be >= 1 (got {self.limit})")
        if self.budget_candidates < 1:
            problems.append(f"--budget-candidates must be >= 1 (got {self.budget_candidates}); a zero budget can solve nothing")
        if self.budget_seconds <= 0:
            problems.append(f"--budget-seconds must be > 0 (got {self.budget_seconds})")
        if self.samples < 1:
            problems.append(f"--samples must be >= 1 (got {self.samples})")
        if self.method in ("sample_verify", "hybrid") and not self.parent_run:
            problems.append(f"--method {self.method} needs a trained model: pass --run RUN_ID (see `gensynth runs list`)")
        if problems:
            raise GensynthError("Invalid solve parameters: " + "; ".join(problems) + ".")


@dataclass
class Task:
    """One synthesis task: the target's outputs (float64, NaN = undefined) and its hash."""

    program_id: int
    prefix: str
    outputs: np.ndarray
    value_hash: int
    function_id: int


def read_tasks(con, config: SolveConfig) -> list[Task]:
    """The first ``limit`` tasks of the view's role, in hashed (unbiased, fixed) order."""
    if config.view == BEYOND_VIEW:
        exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'tasks_beyond'").fetchone()[0]
        if not exists:
            raise GensynthError("This warehouse has no `tasks_beyond` table; create it with `gensynth beyond --tasks 200`.")
        rows = con.execute("SELECT task_id, prefix, outputs, value_hash, -1 FROM tasks_beyond ORDER BY hash(task_id), task_id LIMIT ?",
                           [config.limit]).fetchall()
    else:
        from gensynth.learning.snapshot import check_split

        split = check_split(con, config.view, require_train=False)
        if config.role not in split.roles:
            raise GensynthError(f"View {split.view} has no role '{config.role}'; its roles are {', '.join(sorted(split.roles))}.")
        rows = con.execute(
            f"SELECT s.program_id, p.prefix, f.outputs, f.value_hash, p.function_id FROM {split.view} AS s "
            "JOIN programs AS p USING (program_id) JOIN functions AS f USING (function_id) "
            "WHERE s.role = ? ORDER BY hash(s.program_id), s.program_id LIMIT ?", [config.role, config.limit]).fetchall()
    return [Task(int(r[0]), r[1], np.array(r[2], dtype=np.float64), int(r[3]), int(r[4])) for r in rows]


class NeuralProposer:
    """Samples programs from a trained run's model."""

    def __init__(self, run_dir: Path, config: SolveConfig) -> None:
        import torch

        from gensynth.learning.train import _grammar_of, _read_json
        from models import N_SPECIAL
        from models.lit import PBELitModule

        state = _read_json(run_dir / "state.json", {})
        if state.get("status") != "finished":
            raise GensynthError(f"Run {run_dir.name} is not a finished training run (status '{state.get('status')}'); "
                                f"pick one from `gensynth runs list`.")
        self.grammar = _grammar_of(run_dir)
        self.model = PBELitModule.load_from_checkpoint(run_dir / state["checkpoint_path"], map_location="cpu").model.eval()
        self.max_len = self.model.config.max_len
        self.arity = torch.tensor([-1] * N_SPECIAL + list(self.grammar.arities))
        self.generator = torch.Generator().manual_seed(config.seed)
        self.config = config

    def sample(self, outputs: np.ndarray, shown: np.ndarray, n: int) -> list[tuple | None]:
        """``n`` sampled programs in sampling order, duplicates kept; None for a sample that is no program."""
        from gensynth.learning.predictions import decode, tokens_to_text
        from gensynth.universe.syntax import ParseError, parse_prefix

        values = np.nan_to_num(outputs.astype(np.float32), nan=np.nan)[None, :]
        tokens, _ = decode(self.model, values, shown[None, :], self.arity, self.max_len, n,
                           self.config.temperature, self.generator, 1, "cpu")
        texts, closed = tokens_to_text(tokens[0], self.grammar)
        trees = []
        for text, ok in zip(texts, closed):
            try:
                trees.append(parse_prefix(text, self.grammar) if ok else None)
            except ParseError:
                trees.append(None)
        return trees[:n]


SAMPLE_BATCH = 32  # samples drawn per decoding call; the meter is consulted between calls


def sample_and_verify(proposer: NeuralProposer, task: Task, grammar, points: np.ndarray, target_hashes, meter: Meter,
                      samples: int) -> tuple[tuple | None, list[tuple]]:
    """Draw up to ``samples`` programs (each one a candidate, duplicates included) until one fits.

    Returns (the first consistent sample or None, every well-formed sample drawn).
    """
    drawn: list[tuple] = []
    shown = _mask(points, len(task.outputs))
    done = 0
    while done < samples:
        n = meter.grant(min(SAMPLE_BATCH, samples - done))
        trees = proposer.sample(task.outputs, shown, n)
        good = [t for t in trees if t is not None]
        fits = np.zeros(len(trees), bool)
        fits[[i for i, t in enumerate(trees) if t is not None]] = _consistent(good, grammar, points, target_hashes)
        if fits.any():
            first = int(np.argmax(fits))
            meter.settle(n, first + 1)
            return trees[first], drawn + [t for t in trees[: first + 1] if t is not None]
        drawn += good
        done += n
    return None, drawn


def _consistent(trees: list[tuple], grammar, points: np.ndarray, target_hashes) -> np.ndarray:
    """Which trees equal the target exactly at the shown points."""
    from gensynth.universe.functions import row_hashes
    from gensynth.universe.rational import Values
    from gensynth.universe.syntax import evaluate_trees

    if not trees:
        return np.zeros(0, bool)
    v = evaluate_trees(trees, grammar)
    h1, h2 = row_hashes(Values(v.num[:, points], v.den[:, points], v.flt[:, points]))
    return (h1 == target_hashes[0]) & (h2 == target_hashes[1])


def solve_task(task: Task, config: SolveConfig, grammar, points: np.ndarray, proposer: NeuralProposer | None,
               charged_seconds: float = 0.0):
    """(program tree or None, candidates, seconds, how) for one task, charged through one Meter.

    The meter's clock starts at the task's start, ``charged_seconds`` (this task's share of
    work shared by the run, such as loading the model) earlier.
    """
    meter = Meter(Budget(config.budget_candidates, config.budget_seconds, config.max_ops), charged_seconds)
    try:
        tree, how = _run_method(task, config, grammar, points, proposer, meter)
    except OutOfBudget as stop:
        tree, how = None, stop.status
    return tree, meter.candidates, meter.elapsed(), how


def _run_method(task: Task, config: SolveConfig, grammar, points: np.ndarray, proposer, meter: Meter):
    from gensynth.universe.functions import row_hashes
    from gensynth.synthesis.enumerative import EnumerativeSearch, exact_target, repair, tree_size

    target_values = task.outputs[points]
    if config.method == "enumerative":
        result = EnumerativeSearch(grammar, points, meter.budget, meter).solve(target_values)
        return _tree_of(result.prefix, grammar), result.status
    target = exact_target(target_values)
    if target is None:
        return None, "unrepresentable"
    hashes = tuple(h[0] for h in row_hashes(target))
    found, samples = sample_and_verify(proposer, task, grammar, points, hashes, meter, config.samples)
    if found is not None:
        return found, "sampled"
    if config.method == "sample_verify":
        return None, "no consistent sample"
    # Hybrid: repair the samples against a bank of small programs, then search on with the same bank.
    search = EnumerativeSearch(grammar, points, meter.budget, meter)
    search.set_target(target)
    for n in range(min(config.bank_ops, config.max_ops) + 1):
        search._bank_level(n)
    repaired = []
    try:
        for tree in dict.fromkeys(samples):  # a repair of a repeated sample would repeat itself
            repaired += repair(tree, grammar, points, target, search.bank, len(search.bank.levels) - 1, meter)
    except OutOfBudget:
        if not repaired:
            raise
    if repaired:
        return min(repaired, key=tree_size), "repaired"
    result = search.search()
    return _tree_of(result.prefix, grammar), "enumerated" if result.prefix else result.status


def _tree_of(prefix: str | None, grammar):
    from gensynth.universe.syntax import parse_prefix

    return None if prefix is None else parse_prefix(prefix, grammar)


def _mask(points: np.ndarray, n_points: int) -> np.ndarray:
    shown = np.zeros(n_points, bool)
    shown[points] = True
    return shown


def solve(warehouse: Path, config: SolveConfig, quiet: bool = False) -> dict:
    """Run a synthesizer on a view's tasks; write and ingest its run. Returns a summary dict."""
    from gensynth.learning.snapshot import shown_mask
    from gensynth.universe.grammar import grammar_from_meta
    from gensynth.learning.predictions import Checker, offgrid_points
    from gensynth.progress import Stages
    from gensynth.results.ingest import INGEST_TIMEOUT_S, connect_retrying, ingest_run, runs_root, write_results
    from gensynth.universe.syntax import evaluate_float, parse_prefix, to_prefix
    from gensynth.learning.train import new_run_id
    from gensynth.version import code_version

    config.validate()
    warehouse = Path(warehouse)
    con = connect_retrying(warehouse, read_only=True)
    try:
        from gensynth.warehouse import check_schema_version

        check_schema_version(con, warehouse)
        grammar = grammar_from_meta(con)
        tasks = read_tasks(con, config)
        data_version = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0]
    finally:
        con.close()
    if not tasks:
        raise GensynthError(f"No tasks: role '{config.role}' of {config.view} is empty.")
    proposer, parent, parent_row, load_seconds = None, {}, {}, 0.0
    if config.method != "enumerative":
        from gensynth.learning.train import run_row as training_run_row

        run_dir = runs_root(warehouse) / config.parent_run
        if not (run_dir / "config.json").is_file():
            raise GensynthError(f"No training run '{config.parent_run}' next to '{warehouse}'; see `gensynth runs list`.")
        t0 = time.perf_counter()
        proposer = NeuralProposer(run_dir, config)
        load_seconds = time.perf_counter() - t0
        parent = json.loads((run_dir / "config.json").read_text())
        parent_row = training_run_row(run_dir)
    run_id = new_run_id()
    run_dir = runs_root(warehouse) / run_id
    run_dir.mkdir(parents=True)
    started = dt.datetime.now(dt.timezone.utc)
    n_points = len(tasks[0].outputs)
    shown = shown_mask(np.array([t.function_id for t in tasks]), n_points, config.n_examples, config.seed)
    offgrid = offgrid_points(grammar, 32, config.seed)
    checker = Checker(grammar, offgrid)
    rows = []
    with Stages(quiet=quiet) as stages, stages.stage(f"solve ({config.method})", total=len(tasks)) as advance:
        for i, task in enumerate(tasks):
            points = np.flatnonzero(shown[i]) if shown is not None else np.arange(n_points)
            tree, candidates, seconds, how = solve_task(task, config, grammar, points, proposer, load_seconds / len(tasks))
            rows.append((task, tree, candidates, seconds, how))
            advance(i + 1)
    texts = [to_prefix(t, grammar) if t is not None else "" for _, t, _, _, _ in rows]
    target_off = np.stack([evaluate_float(parse_prefix(t.prefix, grammar), grammar, offgrid) for t in tasks])
    parsed, passed, off_ok = checker.check(texts, np.array([t != "" for t in texts]),
                                           np.array([t.value_hash for t in tasks], np.int64), target_off)
    role = "test_beyond" if config.view == BEYOND_VIEW else config.role
    predictions = {
        "run_id": [run_id] * len(tasks), "view": [config.view] * len(tasks), "role": [role] * len(tasks),
        "program_id": np.array([t.program_id for t in tasks], np.int32), "decoding": ["search"] * len(tasks),
        "sample_index": np.zeros(len(tasks), np.int32), "predicted": texts, "parsed": parsed, "passed": passed,
        "exact_match": np.array([x == t.prefix for x, t in zip(texts, tasks)]), "offgrid_passed": off_ok,
        "logprob": np.full(len(tasks), np.nan), "candidates": np.array([r[2] for r in rows], np.int64),
        "search_seconds": np.array([r[3] for r in rows], np.float64),
    }
    pred_file = run_dir / "predictions.parquet"
    _write_parquet(predictions, pred_file)
    solve_rate = float(passed.mean())
    finished = dt.datetime.now(dt.timezone.utc)
    (run_dir / "config.json").write_text(json.dumps({"kind": "solve", "config": asdict(config)}, indent=2))
    run_row = {
        "run_id": run_id, "view": config.view, "split_sql_hash": None, "role_sizes": {role: len(tasks)},
        "config": {"method": config.method, **asdict(config), "budget": effective_budget(config),
                   "accounting": accounting(config, load_seconds, len(tasks)), "parent_config": parent or None},
        "size": parent_row.get("size", config.method),
        "n_params": int(parent_row.get("n_params", 0)), "training_flops": None,
        "examples_seen": None, "tokens_seen": None, "steps": None,
        "wall_time_s": round((finished - started).total_seconds(), 3), "device": "cpu x1",
        "code_version": code_version(), "data_version": data_version, "checkpoint": None,
        "status": "finished", "error": None, "started_at": started, "finished_at": finished,
    }
    metrics = [(0, f"eval/{config.view}/{role}/pass@1", solve_rate),
               (0, f"search/{role}/median_seconds", float(np.median(predictions["search_seconds"]))),
               (0, f"search/{role}/median_candidates", float(np.median(predictions["candidates"])))]
    write_results(run_dir, run_row, metrics, [pred_file])
    outcome = ingest_run(warehouse, run_dir, timeout=INGEST_TIMEOUT_S)
    return {"run_id": run_id, "tasks": len(tasks), "solved": int(passed.sum()), "solve_rate": solve_rate,
            "median_seconds": float(np.median(predictions["search_seconds"])),
            "median_candidates": float(np.median(predictions["candidates"])), "ingest": outcome.state,
            "ingest_message": outcome.message, "how": [r[4] for r in rows]}


def effective_budget(config: SolveConfig) -> int:
    """The most candidates any task of the run could be charged (runs.config.budget).

    sample_verify evaluates at most --samples candidates, so its budget is the smaller of
    the two; every other method may spend --budget-candidates.
    """
    if config.method == "sample_verify":
        return min(config.samples, config.budget_candidates)
    return config.budget_candidates


def accounting(config: SolveConfig, load_seconds: float, n_tasks: int) -> dict:
    """How candidates and seconds were counted (runs.config.accounting), shared by every method."""
    return {
        "candidates": "every candidate evaluated on the examples counts once (model samples included, duplicates "
                      "included); a batch is charged up to its first hit",
        "seconds": "wall time from the task's start, model sampling and search included, plus an equal share of "
                   "the run's shared work",
        "shared_seconds": round(load_seconds, 4),
        "shared_seconds_per_task": round(load_seconds / max(n_tasks, 1), 6),
        "shared_work": "loading the parent model" if config.parent_run else "none",
    }


def _write_parquet(columns: dict, path: Path) -> None:
    """Write columns (numpy arrays or lists of text) to parquet through an in-memory DuckDB."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("cols", {k: (np.array(v, dtype=str) if isinstance(v, list) else v) for k, v in columns.items()})
        path_s = str(path).replace("'", "''")
        con.execute(f"COPY (SELECT * FROM cols) TO '{path_s}' (FORMAT parquet)")
    finally:
        con.close()
