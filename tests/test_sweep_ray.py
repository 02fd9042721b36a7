"""`gensynth sweep --executor ray` (gensynth/experiments/executors.py): runs as Ray tasks, the driver ingests.

A two-point sweep on a local Ray instance (real Ray, real `gensynth train` runs, the tiny
grammar's universe) lands both runs in the warehouse and a rerun skips both; without Ray
installed (hidden from a subprocess), `--executor ray` is refused with the install line
before anything runs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from gensynth.results.ingest import run_dirs

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
TINY = """
name = "tiny-ray"
[grid]
view = ["support_syntactic"]
size = ["nano"]
seed = [0, 1]
max_steps = [3]
[train]
batch_size = 16
eval_limit = 5
"""
HAS_RAY = importlib.util.find_spec("ray") is not None
# `import ray` fails in this interpreter, as where Ray is not installed; then the CLI runs as usual.
WITHOUT_RAY = "import sys; sys.modules['ray'] = None; sys.argv[0] = 'gensynth'; from gensynth.cli import run; run()"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny-grammar warehouse (manifolds, built-in splits) and a two-point sweep file beside it."""
    from gensynth.manifolds.embed import EmbedConfig
    from gensynth.pipeline import build_warehouse
    from gensynth.universe.grammar import load_grammar

    d = tmp_path_factory.mktemp("sweep-ray")
    build_warehouse(load_grammar(ROOT / "tests" / "grammars" / "tiny.toml"), 2, d / "w.duckdb", quiet=True,
                    embed=EmbedConfig(k_syn=4, k_sem=4))
    (d / "tiny.toml").write_text(TINY)
    return d


def gensynth(*args: str, code: str | None = None) -> subprocess.CompletedProcess:
    prefix = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "gensynth", *args]
    return subprocess.run(prefix, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)


def test_ray_executor_without_ray_names_the_install_and_runs_nothing(base):
    out = gensynth("sweep", str(base / "tiny.toml"), "--executor", "ray", "-w", str(base / "w.duckdb"), code=WITHOUT_RAY)
    assert out.returncode == 1, out.stdout + out.stderr
    message = " ".join((out.stdout + out.stderr).split())
    assert "pip install 'gensynth[cluster]'" in message and "--executor ray" in message, message
    assert "Nothing was run" in message
    assert list(run_dirs(base / "w.duckdb")) == []


def test_address_without_the_ray_executor_is_refused(base):
    out = gensynth("sweep", str(base / "tiny.toml"), "--address", "auto", "-w", str(base / "w.duckdb"))
    assert out.returncode == 1
    assert "--address auto is for --executor ray" in " ".join(out.stdout.split() + out.stderr.split())
    assert list(run_dirs(base / "w.duckdb")) == []


def test_an_unknown_executor_is_refused(base):
    out = gensynth("sweep", str(base / "tiny.toml"), "--executor", "dask", "-w", str(base / "w.duckdb"))
    assert out.returncode == 1
    assert "Unknown --executor 'dask'" in " ".join(out.stdout.split() + out.stderr.split())


@pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed (pip install 'gensynth[cluster]')")
def test_a_two_point_sweep_on_a_local_ray_instance_lands_both_runs(base, tmp_path):
    import shutil

    wh = tmp_path / "w.duckdb"
    shutil.copy(base / "w.duckdb", wh)
    out = gensynth("sweep", str(base / "tiny.toml"), "--executor", "ray", "--parallel", "2", "-w", str(wh))
    assert out.returncode == 0, out.stdout + out.stderr
    dirs = run_dirs(wh)
    assert len(dirs) == 2
    con = duckdb.connect(str(wh), read_only=True)
    try:
        rows = con.execute("SELECT run_id, status, json_extract(config, '$.data.seed')::INT FROM runs "
                           "ORDER BY 3").fetchall()
        n_predictions = con.execute("SELECT count(*) FROM predictions").fetchone()[0]
    finally:
        con.close()
    assert [(r[1], r[2]) for r in rows] == [("finished", 0), ("finished", 1)]
    assert {r[0] for r in rows} == {d.name for d in dirs}
    assert n_predictions > 0
    # Each task left its results for the driver, which ingested them (the one writer).
    logs = sorted((wh.parent / "sweeps" / "tiny-ray").glob("*.log"))
    assert len(logs) == 2 and all("executor ray" in log.read_text() for log in logs)
    assert all((d / "ingested.json").is_file() for d in dirs)
    again = gensynth("sweep", str(base / "tiny.toml"), "--executor", "ray", "--dry-run", "-w", str(wh))
    text = " ".join((again.stdout + again.stderr).split())
    assert again.returncode == 0 and "2 skipped of 2 runs" in text, text


def test_a_deferred_run_leaves_its_results_for_the_driver(base, tmp_path):
    """With $GENSYNTH_DEFER_INGEST (what a Ray task gets) `gensynth train` writes its run directory only; a sync ingests it."""
    import shutil

    wh = tmp_path / "w.duckdb"
    shutil.copy(base / "w.duckdb", wh)
    args = ["train", "--view", "support_syntactic", "--size", "nano", "--max-steps", "3", "--batch-size", "16",
            "--eval-limit", "5", "--quiet", "-w", str(wh)]
    out = subprocess.run([sys.executable, "-m", "gensynth", *args], capture_output=True, text=True, cwd=ROOT,
                         env={**ENV, "GENSYNTH_DEFER_INGEST": "1"}, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    [d] = run_dirs(wh)
    assert json.loads((d / "state.json").read_text())["status"] == "finished"
    assert not (d / "ingested.json").exists()

    def runs():
        con = duckdb.connect(str(wh), read_only=True)
        try:
            return con.execute("SELECT run_id, status FROM runs").fetchall()
        finally:
            con.close()

    assert runs() == []
    synced = gensynth("runs", "sync", "-w", str(wh))
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert runs() == [(d.name, "finished")]


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed (pip install 'gensynth[cluster]')")
def test_ctrl_c_on_a_ray_sweep_leaves_the_run_resumable(base, tmp_path):
    """SIGINT to the sweep's process group (Ctrl-C): the task's run records itself as interrupted; a rerun resumes it.

    (Ray's task threads block SIGINT and the mask is inherited: without unblocking it the run was killed instead.)"""
    import shutil
    import signal
    import time

    from gensynth.experiments.sweep import load_sweep, plan_sweep

    wh = tmp_path / "w.duckdb"
    shutil.copy(base / "w.duckdb", wh)
    f = tmp_path / "long.toml"
    f.write_text(TINY.replace("max_steps = [3]", "max_steps = [400]").replace("seed = [0, 1]", "seed = [0]")
                 + "checkpoint_every = 10\n")
    proc = subprocess.Popen([sys.executable, "-m", "gensynth", "sweep", str(f), "--executor", "ray", "-w", str(wh)],
                            env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not list((tmp_path / "runs").glob("*/checkpoints/last.ckpt")):
        time.sleep(0.5)
    assert list((tmp_path / "runs").glob("*/checkpoints/last.ckpt")), "no checkpoint within 180 s"
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=150)
    assert proc.returncode != 0
    [d] = run_dirs(wh)
    state = json.loads((d / "state.json").read_text())
    assert (state["status"], state.get("error")) == ("failed", "interrupted (Ctrl-C)")
    [plan] = plan_sweep(wh, load_sweep(f))
    assert plan.action == "resume" and plan.run_id == d.name
