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

        from gensynth.learning.rundirs import load_model

        self.model, self.grammar, self.arity = load_model(run_dir)
        self.max_len = self.model.config.max_len
        self.generator = torch.Generator().manual_seed(config.seed)
        self.config = config

    def sample(self, outputs: np.ndarray, shown: np.ndarray) -> list[tuple]:
        """K sampled programs (distinct parsed trees, in sampling order)."""
        from gensynth.learning.predictions import decode, tokens_to_text
        from gensynth.universe.syntax import ParseError, parse_prefix

        values = np.nan_to_num(outputs.astype(np.float32), nan=np.nan)[None, :]
        tokens, _ = decode(self.model, values, shown[None, :], self.arity, self.max_len, self.config.samples,
                           self.config.temperature, self.generator, 1, "cpu")
        texts, closed = tokens_to_text(tokens[0], self.grammar)
        trees, seen = [], set()
        for text, ok in zip(texts, closed):
            try:
                tree = parse_prefix(text, self.grammar) if ok else None
            except ParseError:
                tree = None
            if tree is not None and tree not in seen:
                seen.add(tree)
                trees.append(tree)
        return trees


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


def solve_task(task: Task, config: SolveConfig, grammar, points: np.ndarray, proposer: NeuralProposer | None):
    """(program tree or None, candidates, seconds, how) for one task."""
    from gensynth.universe.functions import row_hashes
    from gensynth.synthesis.enumerative import Budget, EnumerativeSearch, _Bank, _OutOfBudget, exact_target, repair, tree_size

    start = time.perf_counter()
    budget = Budget(config.budget_candidates, config.budget_seconds, config.max_ops)
    target_values = task.outputs[points]
    if config.method == "enumerative":
        result = EnumerativeSearch(grammar, points, budget).solve(target_values)
        return _tree_of(result.prefix, grammar), result.candidates, time.perf_counter() - start, result.status
    target = exact_target(target_values)
    if target is None:
        return None, 0, time.perf_counter() - start, "unrepresentable"
    hashes = tuple(h[0] for h in row_hashes(target))
    samples = proposer.sample(task.outputs, _mask(points, len(task.outputs)))
    fits = _consistent(samples, grammar, points, hashes)
    if fits.any():  # the first consistent sample, counting the samples drawn up to it
        first = int(np.argmax(fits))
        return samples[first], first + 1, time.perf_counter() - start, "sampled"
    spent = len(samples)
    if config.method == "sample_verify":
        return None, spent, time.perf_counter() - start, "no consistent sample"
    # Hybrid: repair the samples against a bank of small programs.
    search = EnumerativeSearch(grammar, points, Budget(max(1, budget.candidates - spent), budget.seconds, budget.max_ops))
    search.started, search.candidates, search.target = time.perf_counter(), spent, target
    search.t1, search.t2 = hashes
    search.bank = _Bank()
    repaired = []
    try:
        for n in range(config.bank_ops + 1):
            search._bank_level(n)
        for tree in samples:
            search._spend(1)
            repaired += repair(tree, grammar, points, target, search.bank, len(search.bank.levels) - 1)
    except _OutOfBudget:  # the bank or the repairs ran out of budget: use what was found
        pass
    if repaired:
        return min(repaired, key=tree_size), search.candidates, time.perf_counter() - start, "repaired"
    left = budget.candidates - search.candidates
    if left < 1 or time.perf_counter() - start >= budget.seconds:
        return None, search.candidates, time.perf_counter() - start, "budget"
    rest = EnumerativeSearch(grammar, points, Budget(left, budget.seconds - (time.perf_counter() - start), budget.max_ops))
    result = rest.solve(target_values)
    return _tree_of(result.prefix, grammar), search.candidates + result.candidates, time.perf_counter() - start, "enumerated"


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
    proposer, parent = None, {}
    if config.method != "enumerative":
        run_dir = runs_root(warehouse) / config.parent_run
        if not (run_dir / "config.json").is_file():
            raise GensynthError(f"No training run '{config.parent_run}' next to '{warehouse}'; see `gensynth runs list`.")
        proposer = NeuralProposer(run_dir, config)
        parent = json.loads((run_dir / "config.json").read_text())
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
            tree, candidates, seconds, how = solve_task(task, config, grammar, points, proposer)
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
        "config": {"method": config.method, **asdict(config), "parent_config": parent or None},
        "size": parent.get("model", {}).get("name", config.method) if parent else config.method,
        "n_params": int(_parent_params(warehouse, config.parent_run)), "training_flops": None,
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


def _parent_params(warehouse: Path, run_id: str | None) -> int:
    if not run_id:
        return 0
    from gensynth.results.ingest import runs_root
    from gensynth.learning.train import run_row

    try:
        return int(run_row(runs_root(warehouse) / run_id)["n_params"])
    except Exception:  # noqa: BLE001 - a parent without a readable row still ran
        return 0


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
