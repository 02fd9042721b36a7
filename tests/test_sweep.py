"""Tests for `gensynth sweep` (gensynth/sweep.py) and the shipped grids (sweeps/*.toml).

The sweep runs real `gensynth train` processes on a tiny grid (nano model, 3 steps, the
tiny grammar's max-ops-2 universe): two runs side by side (--parallel 2), then a rerun
that skips both, a killed run that is resumed, and a report over the result. Planning
and validation are checked without training.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from gensynth.errors import GensynthError
from gensynth.results.ingest import runs_root
from gensynth.experiments.sweep import SWEEPS_DIR, load_sweep, plan_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TINY = """
name = "tiny"
[grid]
view = ["support_syntactic"]
size = ["nano"]
seed = [0, 1]
max_steps = [3]
[train]
batch_size = 16
eval_limit = 5
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny-grammar warehouse (manifolds, built-in splits) and a sweep file beside it."""
    from gensynth.pipeline import build_warehouse
    from gensynth.manifolds.embed import EmbedConfig
    from gensynth.universe.grammar import load_grammar

    d = tmp_path_factory.mktemp("sweep")
    build_warehouse(load_grammar(ROOT / "tests" / "grammars" / "tiny.toml"), 2, d / "w.duckdb", quiet=True,
                    embed=EmbedConfig(k_syn=4, k_sem=4))
    (d / "tiny.toml").write_text(TINY)
    return d


@pytest.fixture(scope="module")
def swept(base, tmp_path_factory) -> Path:
    """The tiny sweep, run once (two runs in parallel). Returns the directory; treat as read-only."""
    d = tmp_path_factory.mktemp("swept")
    shutil.copy(base / "w.duckdb", d / "w.duckdb")
    shutil.copy(base / "tiny.toml", d / "tiny.toml")
    old = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    try:
        plan = run_sweep(d / "w.duckdb", load_sweep(d / "tiny.toml"), parallel=2, quiet=True)
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    assert [p.status for p in plan] == ["finished", "finished"], [(p.status, p.note) for p in plan]
    return d


def copy_of(d: Path, tmp_path: Path) -> Path:
    """A private copy of a swept directory (warehouse and run directories)."""
    out = tmp_path / "copy"
    shutil.copytree(d, out, symlinks=True)
    return out


def query(path: Path, sql: str, params=None):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------------------- files


def test_sweep_file_problems_are_reported_together(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\ncolour = 1\n[grid]\nsplits = ["a"]\nmax_stpes = [1]\nseed = [0, 0]\n'
                   '[train]\nseed = 1\nbatch_size = 8\n')
    with pytest.raises(GensynthError) as err:
        load_sweep(bad)
    msg = str(err.value)
    for part in ("unknown top-level key 'colour'", "unknown option 'max_stpes'", "did you mean 'max_steps'",
                 "seed: values repeat", "'seed' is in both [grid] and [train]"):
        assert part in msg, part
    with pytest.raises(GensynthError, match="No sweep file 'nope'"):
        load_sweep("nope")


@pytest.mark.parametrize("name", ["../escape", "/tmp/abs", "a/b", "..", ""])
def test_a_sweep_name_that_is_a_path_is_refused(tmp_path, name):
    f = tmp_path / "s.toml"
    f.write_text(f"name = {json.dumps(name)}\n" + TINY.replace('name = "tiny"\n', ""))
    with pytest.raises(GensynthError, match="not a valid sweep name") as err:
        load_sweep(f)
    assert str(f) in str(err.value) and "log folder" in str(err.value)
    assert not (tmp_path / "sweeps").exists()


def test_each_run_gets_its_share_of_the_cores(tmp_path):
    from gensynth.experiments.sweep import sweep_threads

    cores = len(os.sched_getaffinity(0))
    assert sweep_threads(1) == cores and sweep_threads(cores) == 1 and sweep_threads(4 * cores) == 1
    f = tmp_path / "s.toml"
    f.write_text(TINY)
    run = load_sweep(f).runs[0]
    argv = run.argv(threads=3)
    assert argv[argv.index("--threads") + 1] == "3"
    assert "--threads" not in run.argv()
    pinned = load_sweep(f, ["threads=2"]).runs[0].argv(threads=3)  # the sweep file's own value wins
    assert pinned[pinned.index("--threads") + 1] == "2" and pinned.count("--threads") == 1


def test_grid_expands_and_set_overrides(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(TINY)
    sweep = load_sweep(f, ["max_steps=7", "seed=3,4,5", "k=1,5"])
    assert len(sweep.runs) == 3
    assert [r.options["seed"] for r in sweep.runs] == [3, 4, 5]
    assert all(r.options["max_steps"] == 7 and r.options["k"] == "1,5" for r in sweep.runs)
    argv = sweep.runs[0].argv()
    assert argv[:2] == ["--view", "split_support_syntactic"] and "--max-steps" in argv and "--eval-limit" in argv
    assert sweep.runs[0].label() == "support_syntactic nano seed 3"


def test_shipped_sweeps_are_valid_and_scaling_spans_100x_compute():
    from gensynth.universe.grammar import load_grammar
    from models.flops import training_flops
    from models.pbe_transformer import config_for

    names = sorted(p.stem for p in SWEEPS_DIR.glob("*.toml"))
    assert names == ["density", "scaling", "support"]
    density, support, scaling = (load_sweep(n) for n in ("density", "support", "scaling"))
    assert {r.view for r in density.runs} == {f"split_density_{s}" for s in ("natural", "syntactic", "semantic", "diverse")}
    assert {r.view for r in support.runs} == {"split_support_syntactic", "split_support_semantic", "split_support_joint"}
    for sweep in (density, support, scaling):
        for run in sweep.runs:
            run.expected_config()  # every run is a valid `gensynth train` configuration
    sizes = {r.options["size"] for r in scaling.runs}
    assert len(sizes) >= 5
    g = load_grammar()
    flops = [training_flops(config_for(r.options["size"], vocab_size=3 + len(g.symbols), n_points=g.n_points, max_len=16),
                            r.options["max_steps"] * r.options["batch_size"], dec_len=12) for r in scaling.runs]
    assert max(flops) / min(flops) >= 100


# ---------------------------------------------------------------------- planning


def test_bad_runs_refuse_the_whole_sweep_before_anything_runs(base, tmp_path):
    wh = tmp_path / "w.duckdb"
    shutil.copy(base / "w.duckdb", wh)
    sweep = load_sweep(base / "tiny.toml", ["size=nano,huge", "view=support_syntactic,support_syntax"])
    with pytest.raises(GensynthError) as err:
        run_sweep(wh, sweep)
    msg = str(err.value)
    assert "Unknown --size 'huge'" in msg and "no split view 'split_support_syntax'" in msg
    assert "did you mean 'split_support_syntactic'" in msg and "Nothing was run" in msg
    assert not runs_root(wh).exists()


def test_a_finished_sweep_is_skipped_and_a_changed_config_is_not(swept):
    wh = swept / "w.duckdb"
    plan = plan_sweep(wh, load_sweep(swept / "tiny.toml"))
    assert [p.action for p in plan] == ["skip", "skip"]
    finished = {r[0] for r in query(wh, "SELECT run_id FROM runs WHERE status = 'finished'")}
    assert {p.run_id for p in plan} == finished and len(finished) == 2
    # Same grid with one more step, or another eval setting: new runs.
    assert [p.action for p in plan_sweep(wh, load_sweep(swept / "tiny.toml", ["max_steps=4"]))] == ["train", "train"]
    assert [p.action for p in plan_sweep(wh, load_sweep(swept / "tiny.toml", ["eval_limit=6"]))] == ["train", "train"]
    # The recorded config is what matched: the runs' own config.json equals the expected one.
    sweep = load_sweep(swept / "tiny.toml")
    cfg = json.loads((runs_root(wh) / plan[0].run_id / "config.json").read_text())
    assert {k: cfg[k] for k in ("data", "model", "training", "eval")} == sweep.runs[0].expected_config()


def test_runs_of_another_data_version_do_not_count(swept, tmp_path):
    d = copy_of(swept, tmp_path)
    con = duckdb.connect(str(d / "w.duckdb"))
    con.execute("UPDATE meta SET value = 'rebuilt' WHERE key = 'data_version'")
    con.close()
    assert [p.action for p in plan_sweep(d / "w.duckdb", load_sweep(d / "tiny.toml"))] == ["train", "train"]


def test_killed_interrupted_and_busy_runs(swept, tmp_path):
    from gensynth.learning.train import run_lock

    d = copy_of(swept, tmp_path)
    wh = d / "w.duckdb"
    sweep = load_sweep(d / "tiny.toml")
    first, second = (p.run_id for p in plan_sweep(wh, sweep))
    # A run killed outright stays 'running' in its directory and the warehouse, with no process holding it.
    for run_id, status, error in ((first, "running", None), (second, "failed", "interrupted (Ctrl-C)")):
        state_path = runs_root(wh) / run_id / "state.json"
        state = json.loads(state_path.read_text())
        state.update(status=status, error=error)
        state_path.write_text(json.dumps(state))
    con = duckdb.connect(str(wh))
    con.execute("UPDATE runs SET status = 'running' WHERE run_id = ?", [first])
    con.close()
    plan = plan_sweep(wh, sweep)
    assert [(p.action, p.run_id) for p in plan] == [("resume", first), ("resume", second)]
    # While a process holds a run, the sweep leaves it alone.
    with run_lock(runs_root(wh) / first):
        assert plan_sweep(wh, sweep)[0].action == "busy"
    # A failed run for another reason is trained afresh.
    state_path = runs_root(wh) / second / "state.json"
    state = json.loads(state_path.read_text())
    state["error"] = "RuntimeError: boom"
    state_path.write_text(json.dumps(state))
    assert plan_sweep(wh, sweep)[1].action == "train"


def test_a_killed_run_is_resumed_to_finished(swept, tmp_path):
    d = copy_of(swept, tmp_path)
    wh = d / "w.duckdb"
    sweep = load_sweep(d / "tiny.toml")
    run_id = plan_sweep(wh, sweep)[0].run_id
    state_path = runs_root(wh) / run_id / "state.json"
    state = json.loads(state_path.read_text())
    state.update(status="running")
    state_path.write_text(json.dumps(state))
    con = duckdb.connect(str(wh))
    con.execute("UPDATE runs SET status = 'running' WHERE run_id = ?", [run_id])
    con.close()
    result = CliRunner().invoke(__import__("gensynth.cli.main", fromlist=["app"]).app,
                                ["sweep", str(d / "tiny.toml"), "-w", str(wh), "-q"], env=ENV)
    assert result.exit_code == 0, result.output
    assert "1 finished, 1 skipped of 2 runs" in result.output
    assert query(wh, "SELECT status FROM runs WHERE run_id = ?", [run_id]) == [("finished",)]
    assert query(wh, "SELECT count(*) FROM runs")[0][0] == 2  # resumed in place, no new run
    assert [p.action for p in plan_sweep(wh, sweep)] == ["skip", "skip"]


def test_report_on_the_tiny_sweep(swept, tmp_path):
    from gensynth.analysis.views import install_analysis_views
    from gensynth.analysis.proximity import update_proximity
    from gensynth.analysis.report import FIGURES, write_report

    d = copy_of(swept, tmp_path)
    con = duckdb.connect(str(d / "w.duckdb"))
    try:
        install_analysis_views(con)
        update_proximity(con)
        summary = write_report(con, tmp_path / "report", d / "w.duckdb")
        assert con.execute("SELECT count(*) FROM pass_at_k").fetchone()[0] > 0
        assert con.execute("SELECT count(DISTINCT run_id) FROM ood_drop").fetchone()[0] == 2
    finally:
        con.close()
    for name in FIGURES:
        data = (tmp_path / "report" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    text = summary.markdown.read_text()
    assert "support_syntactic" in text and "## 2. Support generalisation" in text


@pytest.mark.slow
def test_an_interrupted_sweep_continues_where_it_stopped(base, tmp_path):
    """Ctrl-C a running sweep (SIGINT to the sweep process), then run it again."""
    wh = tmp_path / "w.duckdb"
    shutil.copy(base / "w.duckdb", wh)
    f = tmp_path / "long.toml"
    f.write_text(TINY.replace("max_steps = [3]", "max_steps = [400]").replace("seed = [0, 1]", "seed = [0]")
                 + "checkpoint_every = 10\n")
    proc = subprocess.Popen([sys.executable, "-m", "gensynth", "sweep", str(f), "-w", str(wh)], env=ENV, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(runs_root(wh).glob("*/checkpoints/last.ckpt")):
        time.sleep(0.5)
    assert list(runs_root(wh).glob("*/checkpoints/last.ckpt")), "no checkpoint within 120 s"
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    proc.wait(timeout=120)
    assert proc.returncode != 0
    [plan] = plan_sweep(wh, load_sweep(f))
    assert plan.action == "resume"
    [done] = run_sweep(wh, load_sweep(f), quiet=True)
    assert done.status == "finished" and done.run_id == plan.run_id
