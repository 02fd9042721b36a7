"""`gensynth demo`: the main job in one command, on a small default.

build (or reuse) a universe → train the default architecture on ``split_support_syntactic``
→ enumerative and hybrid search on the same test roles (hybrid proposes with the trained
model) → proximity → the report; then a five-line summary (pass@1 test_id vs test_ood
with 95% intervals, the search solve rates, from ``sql/experiments/demo_summary.sql``).

Nothing of the user's is overwritten or dropped:

* an existing warehouse is reused only when its universe is the demo's (same grammar
  hash and max-ops); any other file at the path is refused, untouched, with the flag that
  names another path (``-w``);
* a finished run with the same configuration and data version (training or search) is
  reused rather than run again, so a second ``gensynth demo`` only redraws the report;
* runs are only added (``gensynth train`` / ``solve`` do the work and write as they do).

The stages are the same public functions the commands call; the CLI command is thin.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from gensynth.errors import GensynthError

DEMO_VIEW = "split_support_syntactic"
TEST_ROLES = ("test_id", "test_ood")
SEARCH_METHODS = ("enumerative", "hybrid")


@dataclass(frozen=True)
class DemoConfig:
    """What `gensynth demo` runs (its flags); the defaults fit in about five minutes on 2 cores."""

    warehouse: Path
    """The warehouse to build or reuse (-w / --warehouse)."""
    out: Path | None = None
    """Directory of the report: figures, report.md, index.html (--out; default: report/ beside the warehouse,
    e.g. warehouse/report/, with the runs it reports on)."""
    grammar: Path | None = None
    """Grammar TOML of the universe (--grammar; default: the shipped arithmetic grammar)."""
    max_ops: int = 3
    """Programs of at most this many operators (--max-ops)."""
    max_steps: int = 1000
    """Training budget in optimizer steps (--max-steps)."""
    max_time: float | None = None
    """Training budget in minutes as well, whichever comes first (--max-time; default: none, so the run is reproducible)."""
    threads: int | None = 1
    """Torch threads of the training run (--threads; None: the cores available). One by default: on the
    shared 2-core machine two threads trained at 0.5 steps/s where one thread trained at 4."""
    eval_limit: int = 500
    """Programs evaluated per role of the trained model, a seeded subset (--eval-limit)."""
    tasks: int = 100
    """Search tasks per test role and method (--tasks)."""
    budget_seconds: float = 1.0
    """Search seconds per task, at most (--budget-seconds)."""
    seed: int = 0
    """Seed of the training run and of the searches (--seed)."""

    def validate(self) -> None:
        problems = [f"{flag} must be >= 1 (got {value})" for flag, value in
                    (("--max-steps", self.max_steps), ("--eval-limit", self.eval_limit), ("--tasks", self.tasks))
                    if value < 1]
        if self.max_ops < 1:
            problems.append(f"--max-ops must be >= 1 (got {self.max_ops}): a 0-op universe has nothing to search")
        if not self.budget_seconds > 0:
            problems.append(f"--budget-seconds must be > 0 (got {self.budget_seconds})")
        if self.max_time is not None and not self.max_time > 0:
            problems.append(f"--max-time must be > 0 minutes (got {self.max_time})")
        if self.threads is not None and self.threads < 1:
            problems.append(f"--threads must be >= 1 (got {self.threads})")
        if problems:
            raise GensynthError("Invalid demo options: " + "; ".join(problems) + ".")

    @property
    def report_dir(self) -> Path:
        return Path(self.out) if self.out is not None else Path(self.warehouse).parent / "report"

    def train_options(self) -> dict:
        """The demo's training run as `gensynth train` options (config names): the default architecture."""
        return {"view": DEMO_VIEW, "max_steps": self.max_steps, "max_time": self.max_time, "seed": self.seed,
                "eval_limit": self.eval_limit, "threads": self.threads}


@dataclass
class DemoResult:
    """What the demo did and found."""

    warehouse: Path
    built: bool  # False: an existing warehouse of the same universe was reused
    train_run: str
    training: str  # 'trained' now, 'resumed' (an interrupted demo run continued) or 'reused' (a finished one)
    search_runs: dict[tuple[str, str], str]  # (method, role) -> run id
    reused_search: int
    report_html: Path | None
    report_md: Path
    rows: list[dict] = field(default_factory=list)  # demo_summary.sql
    seconds: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    model: str = ""

    def summary_lines(self) -> list[str]:
        """The five lines the command ends with."""
        by = {(r["method"], r["role"]): r for r in self.rows}

        def score(r: dict | None) -> str:
            if r is None or r["pass_at_1"] is None:
                return "-"
            return f"{r['pass_at_1']:.3f} [{r['pass_at_1_lo']:.3f}, {r['pass_at_1_hi']:.3f}] (n={r['n']:,})"

        def rate(method: str) -> str:
            parts = []
            for role in TEST_ROLES:
                r = by.get((method, role))
                parts.append(f"{role} -" if r is None or r["pass_at_1"] is None else
                             f"{role} {round(r['pass_at_1'] * r['n'])}/{r['n']} ({r['pass_at_1']:.2f})")
            return ", ".join(parts)

        return [f"model: {self.model}, {self.steps:,} steps on {DEMO_VIEW} (run {self.train_run}"
                f"{'' if self.training == 'trained' else ', ' + self.training})",
                f"pass@1 test_id  {score(by.get(('transformer', 'test_id')))}",
                f"pass@1 test_ood {score(by.get(('transformer', 'test_ood')))}",
                *(f"{m} solve rate: {rate(m)}" for m in SEARCH_METHODS)]


def run_demo(config: DemoConfig, quiet: bool = False, say=print) -> DemoResult:
    """Build or reuse the universe, train or reuse the run, search, proximity, report (see the module docstring)."""
    config.validate()
    path = Path(config.warehouse)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    built = ensure_universe(path, config, quiet=quiet)
    seconds["universe"] = time.perf_counter() - start
    say(("Built" if built else "Reusing") + f" the warehouse {path}.")

    start = time.perf_counter()
    run_id, training, steps, model = train_or_reuse(path, config, quiet=quiet)
    seconds["training"] = time.perf_counter() - start
    say({"trained": "Trained", "resumed": "Resumed the interrupted demo run",
         "reused": "Reusing the finished demo run"}[training] + f" {run_id}.")

    start = time.perf_counter()
    search, reused = search_or_reuse(path, config, run_id, quiet=quiet)
    seconds["search"] = time.perf_counter() - start

    start = time.perf_counter()
    report = write_report(path, config.report_dir)
    seconds["proximity and report"] = time.perf_counter() - start
    rows = summary_rows(path, [run_id, *search.values()])
    return DemoResult(path, built, run_id, training, search, reused, report.html, report.markdown, rows, seconds,
                      steps, model)


# ----------------------------------------------------------------------------- universe


def ensure_universe(path: Path, config: DemoConfig, quiet: bool = False) -> bool:
    """Build the demo's universe at ``path`` when nothing is there (True), or check that the warehouse
    there is of the same universe and has what the demo reads (False). Anything else is refused untouched."""
    from gensynth.universe.grammar import load_grammar

    grammar = load_grammar(config.grammar)
    if not path.exists():
        from gensynth.manifolds.embed import EmbedConfig
        from gensynth.pipeline import build_warehouse
        from gensynth.warehouse import check_writable_location

        path.parent.mkdir(parents=True, exist_ok=True)  # one command from nothing: its folder too
        check_writable_location(path, force=False)
        build_warehouse(grammar, config.max_ops, path, quiet=quiet, embed=EmbedConfig())
        return True
    check_universe(path, grammar, config.max_ops)
    return False


def check_universe(path: Path, grammar, max_ops: int) -> None:
    """Refuse (GensynthError, nothing changed) a warehouse that is not of ``grammar`` up to ``max_ops``
    or lacks the demo's split."""
    from gensynth.warehouse import connect_retrying, has_meta, read_meta, relation_exists

    other = (f"Nothing was changed. To run the demo on another warehouse, name a new path: "
             f"`gensynth demo -w warehouse/demo.duckdb` (or set $GENSYNTH_WAREHOUSE).")
    con = connect_retrying(path, read_only=True, purpose="the demo's universe check")
    try:
        if not has_meta(con):
            raise GensynthError(f"'{path}' is a DuckDB file but not a gensynth warehouse (no meta table). {other}")
        meta = read_meta(con)
        has_split = relation_exists(con, DEMO_VIEW, kind="view")
    finally:
        con.close()
    name, got_hash, got_ops = meta.get("grammar_name", "?"), meta.get("grammar_hash", ""), meta.get("max_ops", "?")
    if got_hash != grammar.hash or str(got_ops) != str(max_ops):
        raise GensynthError(
            f"The warehouse '{path}' holds another universe than the demo's: grammar '{name}' ({got_hash[:12]}), "
            f"max-ops {got_ops}, where the demo runs grammar '{grammar.name}' ({grammar.hash[:12]}), max-ops "
            f"{max_ops}. The demo never rebuilds a warehouse that holds your universe, splits and runs. {other}")
    if not has_split:
        raise GensynthError(
            f"The warehouse '{path}' has no view {DEMO_VIEW} (built without manifolds, or the split was dropped). "
            f"Compute the manifolds and built-in splits with `gensynth embed -w {path}`, or {other[len('Nothing was changed. '):]}")


# ----------------------------------------------------------------------------- training


def train_or_reuse(path: Path, config: DemoConfig, quiet: bool = False) -> tuple[str, str, int, str]:
    """The demo's training run: a finished run of the same configuration on the current data ('reused'), an
    interrupted one continued from its checkpoint ('resumed'), or a new one ('trained').
    Returns (run id, which, steps, 'arch size')."""
    from gensynth.learning.options import run_config

    wanted = run_config(config.train_options())
    found = find_finished_training(path, wanted)
    if found is not None:
        run_id, cfg, size, steps = found
        return run_id, "reused", int(steps or 0), f"{cfg['model'].get('arch', 'grid64')} {size}"
    from gensynth.learning import train as stage

    interrupted = find_interrupted_training(path, wanted)
    if interrupted is not None:
        summary, how = stage.resume(path, interrupted, quiet=quiet), "resumed"
    else:
        summary, how = stage.train(path, wanted, quiet=quiet), "trained"
    if summary.status != "finished":
        raise GensynthError(f"The demo's training run {summary.run_id} ended '{summary.status}'; see "
                            f"`gensynth runs show {summary.run_id}`. Run `gensynth demo` again to retry.")
    if summary.ingest != "ingested":
        raise GensynthError(f"The demo's training run {summary.run_id} finished but is not in the warehouse yet "
                            f"({summary.ingest}: {summary.ingest_message}). Run `gensynth runs sync`, then the demo again.")
    return summary.run_id, how, summary.steps, f"{summary.arch} {summary.size}"


def _comparable(run_config) -> dict:
    """What defines a training run's result (threads only change its speed)."""
    d = json.loads(json.dumps(run_config.to_json()))
    return {k: d[k] for k in ("data", "model", "training", "eval")}


def find_finished_training(path: Path, wanted) -> tuple[str, dict, str, int] | None:
    """The newest finished training run of the warehouse's current data with ``wanted``'s configuration:
    (run id, recorded config, size, steps)."""
    from gensynth.learning.config import RunConfig

    target = _comparable(wanted)
    for run_id, cfg, size, steps in finished_runs(path):
        if "data" not in cfg:
            continue
        try:
            if _comparable(RunConfig.from_json(cfg)) == target:
                return run_id, cfg, size, steps
        except (GensynthError, KeyError, TypeError, ValueError):
            continue
    return None


def find_interrupted_training(path: Path, wanted) -> str | None:
    """The newest demo-configured training run of the current data that was killed mid-way (its directory
    says 'running' and no process holds it): resumed from its last checkpoint rather than started again."""
    from gensynth.learning.config import RunConfig
    from gensynth.learning.rundirs import read_json, run_is_active
    from gensynth.results.rundirs import run_dirs
    from gensynth.warehouse import connect_retrying

    con = connect_retrying(path, read_only=True)
    try:
        version = (con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone() or [None])[0]
    finally:
        con.close()
    target = _comparable(wanted)
    for d in reversed(run_dirs(path)):
        state, cfg = read_json(d / "state.json", {}), read_json(d / "config.json", {})
        if state.get("status") != "running" or state.get("data_version") != version or "data" not in cfg:
            continue
        try:
            same = _comparable(RunConfig.from_json(cfg)) == target
        except (GensynthError, KeyError, TypeError, ValueError):
            continue
        if same and not run_is_active(d):
            return d.name
    return None


def finished_runs(path: Path) -> list[tuple[str, dict, str, int | None]]:
    """(run id, recorded config, size, steps) of every finished run of the current data version, newest first."""
    from gensynth.warehouse import connect_retrying, relation_exists

    con = connect_retrying(path, read_only=True)
    try:
        if not relation_exists(con, "runs", kind="table"):
            return []
        rows = con.execute("SELECT run_id, config, size, steps FROM runs WHERE status = 'finished' AND data_version = "
                           "(SELECT value FROM meta WHERE key = 'data_version') ORDER BY finished_at DESC").fetchall()
    finally:
        con.close()
    return [(run_id, json.loads(cfg), size, steps) for run_id, cfg, size, steps in rows]


# ----------------------------------------------------------------------------- search


def search_config(config: DemoConfig, method: str, role: str, parent: str):
    from gensynth.synthesis.solve import SolveConfig

    return SolveConfig(method=method, view=DEMO_VIEW, role=role, limit=config.tasks, budget_seconds=config.budget_seconds,
                       max_ops=config.max_ops, seed=config.seed, parent_run=parent if method == "hybrid" else None)


def search_or_reuse(path: Path, config: DemoConfig, parent: str, quiet: bool = False) -> tuple[dict, int]:
    """Each method on each test role: a finished search run of the same configuration, or a new one."""
    from gensynth.synthesis.solve import solve

    runs, reused = {}, 0
    done = finished_runs(path)
    for method in SEARCH_METHODS:
        for role in TEST_ROLES:
            sc = search_config(config, method, role, parent)
            want = asdict(sc)
            same = [run_id for run_id, cfg, *_ in done if {k: cfg.get(k) for k in want} == want]
            if same:
                runs[(method, role)], reused = same[0], reused + 1
                continue
            out = solve(path, sc, quiet=quiet)
            if out["ingest"] != "ingested":
                raise GensynthError(f"The demo's {method} run {out['run_id']} on {role} is not in the warehouse "
                                    f"({out['ingest']}: {out['ingest_message']}). Run `gensynth runs sync`, then the demo again.")
            runs[(method, role)] = out["run_id"]
    return runs, reused


# ----------------------------------------------------------------------------- report and summary


def write_report(path: Path, out: Path):
    """Proximity for the demo's split, then `gensynth report` into ``out`` (figure 1: the demo's split)."""
    from gensynth.analysis.proximity import update_proximity_at
    from gensynth.analysis.report import render_report
    from gensynth.analysis.report_data import gather
    from gensynth.analysis.views import install_analysis_views
    from gensynth.warehouse import connect_retrying

    con = connect_retrying(path, read_only=False)
    try:
        install_analysis_views(con)
    finally:
        con.close()
    update_proximity_at(path, views=[DEMO_VIEW])
    con = connect_retrying(path, read_only=True)
    try:
        data = gather(con, DEMO_VIEW)
    finally:
        con.close()
    return render_report(data, Path(out), path)


def summary_rows(path: Path, run_ids: list[str]) -> list[dict]:
    """sql/experiments/demo_summary.sql for the demo's runs."""
    from gensynth.warehouse import connect_retrying, sql_text

    con = connect_retrying(path, read_only=True)
    try:
        con.execute("SET VARIABLE demo_view = ?", [DEMO_VIEW])
        con.execute("SET VARIABLE demo_runs = ?::VARCHAR[]", [run_ids])
        cur = con.execute(sql_text("experiments/demo_summary.sql"))
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()
