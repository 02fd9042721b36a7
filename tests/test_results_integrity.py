"""Results you can trust, end to end, on a real trained run (issues 10 and 11).

One module fixture builds the tiny grammar's 3-operator universe (5,394 programs, real
manifolds and built-in splits) and trains one nano run for 10 steps on
split_support_syntactic; each test works on a private copy of the warehouse and its
runs/ directory:

* a rebuild to another universe keeps the run's rows but no analysis view returns them;
* `runs list` / `runs sync` decide "stored" from the warehouse, not from markers;
* a copied run directory is quarantined and blocks nothing;
* evaluations add, never replace (unless --replace), and the views pick one per role;
* evaluating on another split reports and excludes what the run trained on;
* the wall time of a resumed run counts its killed attempt.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "grammars" / "tiny.toml"
VIEW = "split_support_syntactic"
ANALYSIS_VIEWS = ("finished_runs", "pass_at_k", "ood_drop", "density_matrix", "scaling", "method_comparison",
                  "proximity", "proximity_summary")


def _build(path: Path, max_ops: int) -> None:
    from gensynth.manifolds.embed import EmbedConfig
    from gensynth.pipeline import build_warehouse
    from gensynth.universe.grammar import load_grammar

    build_warehouse(load_grammar(TINY), max_ops, path, quiet=True, embed=EmbedConfig(k_syn=4, k_sem=4))


def _train(wh: Path, steps: int = 10, view: str = VIEW):
    import torch

    from gensynth.learning.train import DataSettings, ModelSpec, RunConfig, TrainSettings, train

    torch.set_num_threads(1)
    config = RunConfig(data=DataSettings(view=view, batch_size=32), model=ModelSpec(size="nano"),
                       training=TrainSettings(max_steps=steps, checkpoint_every=steps))
    return train(wh, config, quiet=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(warehouse, run id, a copy of the warehouse taken before the run)."""
    wh = tmp_path_factory.mktemp("integrity") / "gensynth.duckdb"
    _build(wh, 3)
    before = tmp_path_factory.mktemp("integrity_before") / "gensynth.duckdb"
    shutil.copy(wh, before)
    s = _train(wh)
    assert s.status == "finished" and s.ingest == "ingested"
    return wh, s.run_id, before


@pytest.fixture
def env(trained, tmp_path):
    """A private copy of the warehouse and its runs/: (warehouse, run id, pre-run warehouse copy)."""
    wh, run_id, before = trained
    dst = tmp_path / "lab"
    shutil.copytree(wh.parent, dst, symlinks=True)
    return dst / wh.name, run_id, before


def q(path: Path, sql: str, params=None):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def cli(*args):
    from gensynth.cli.main import app
    from gensynth.progress import console

    width = console.width
    console.width = 250  # the test runner's terminal is 80 columns: tables would be cut
    try:
        return CliRunner().invoke(app, [str(a) for a in args])
    finally:
        console.width = width


# -------------------------------------------------------------- one universe per run


def test_a_rebuild_to_another_universe_keeps_the_run_but_no_analysis_view_returns_it(env):
    from gensynth.analysis.proximity import update_proximity

    wh, run_id, _ = env
    old_version = q(wh, "SELECT value FROM meta WHERE key = 'data_version'")[0][0]
    n_pred = q(wh, "SELECT count(*) FROM predictions WHERE run_id = ?", [run_id])[0][0]
    assert n_pred > 0 and q(wh, "SELECT count(*) FROM pass_at_k WHERE run_id = ?", [run_id])[0][0] > 0
    _build(wh, 2)  # another universe: the old run's program ids now name other programs
    assert q(wh, "SELECT value FROM meta WHERE key = 'data_version'")[0][0] != old_version
    # The run's rows are carried over untouched ...
    assert q(wh, "SELECT count(*) FROM predictions WHERE run_id = ?", [run_id])[0][0] == n_pred
    assert q(wh, "SELECT data_version, status FROM runs WHERE run_id = ?", [run_id]) == [(old_version, "finished")]
    # ... but no analysis view returns them (it is the warehouse's only run: every view is empty).
    for v in ANALYSIS_VIEWS:
        assert q(wh, f"SELECT count(*) FROM {v}")[0][0] == 0, v
    # proximity computes no nearest-train distances for the old run's program ids.
    con = duckdb.connect(str(wh))
    try:
        assert update_proximity(con) == []  # no finished run of this universe: nothing to compute
        update_proximity(con, views=[VIEW])
        extra = con.execute(f"SELECT count(*) FROM nearest_train WHERE train_view = ? AND program_id NOT IN "
                            f"(SELECT program_id FROM {VIEW} WHERE role LIKE 'test%')", [VIEW]).fetchone()[0]
    finally:
        con.close()
    assert extra == 0
    # runs list shows the current universe's runs and counts the others; --all names them.
    out = cli("runs", "list", "-w", wh)
    assert out.exit_code == 0 and run_id not in out.output and "1 run(s) of another universe" in out.output
    out = cli("runs", "list", "--all", "-w", wh)
    assert out.exit_code == 0 and run_id in out.output and "ANOTHER universe" in out.output
    assert old_version[:12] in out.output
    # Ingestion follows the same rule: the run directory is not ingested into this universe.
    out = cli("runs", "sync", "--all", "-w", wh)
    assert out.exit_code == 0 and "another universe" in out.output
    assert q(wh, "SELECT count(*) FROM predictions WHERE run_id = ?", [run_id])[0][0] == n_pred
    # Evaluating it here is refused before any work (review B7: it decoded everything, then said NOT ingested, rc 0).
    from gensynth.results.ingest import runs_root

    evals = sorted(p for p in (runs_root(wh) / run_id / "evals").rglob("*"))
    out = cli("eval", "--run", run_id, "--eval-limit", "5", "-w", wh)
    assert out.exit_code == 1 and "cannot be evaluated here" in " ".join((out.output + str(out.exception)).split())
    assert sorted(p for p in (runs_root(wh) / run_id / "evals").rglob("*")) == evals


def test_proximity_counts_only_nearest_train_rows_of_the_current_data_version(env):
    """The reviewer's A3: proximity, then `embed --k-syn 8` (a new data version), then a new run:
    the rows computed on the old manifolds must not be joined to it."""
    from gensynth.analysis.proximity import update_proximity

    wh, old_run, _ = env
    con = duckdb.connect(str(wh))
    try:
        update_proximity(con)
    finally:
        con.close()
    old_version = q(wh, "SELECT value FROM meta WHERE key = 'data_version'")[0][0]
    assert q(wh, "SELECT count(*) FROM proximity_summary WHERE run_id = ?", [old_run])[0][0] > 0
    out = cli("embed", "--k-syn", 8, "-w", wh)
    assert out.exit_code == 0, out.output
    new_version = q(wh, "SELECT value FROM meta WHERE key = 'data_version'")[0][0]
    assert new_version != old_version
    # The old rows are kept (a derived table, recomputed on demand) ...
    assert q(wh, "SELECT DISTINCT data_version FROM nearest_train") == [(old_version,)]
    s = _train(wh, steps=2)
    assert s.status == "finished" and s.ingest == "ingested"
    # ... but no view joins them to the new run: its distances are not computed yet.
    assert q(wh, "SELECT count(*) FROM proximity WHERE run_id = ?", [s.run_id])[0][0] > 0
    assert q(wh, "SELECT count(*) FROM proximity WHERE run_id = ? AND (syn_nn_dist IS NOT NULL OR "
                 "sem_nn_dist IS NOT NULL OR pqgram_nn_dist IS NOT NULL)", [s.run_id]) == [(0,)]
    assert q(wh, "SELECT count(*) FROM proximity_summary") == [(0,)]
    # `gensynth proximity` recomputes them on the current manifolds, and then they count.
    out = cli("proximity", "-w", wh)
    assert out.exit_code == 0, out.output
    assert q(wh, "SELECT DISTINCT data_version FROM nearest_train") == [(new_version,)]
    assert q(wh, "SELECT count(*) FROM proximity WHERE run_id = ? AND syn_nn_dist IS NULL", [s.run_id]) == [(0,)]


# ------------------------------------------------------------ stored, by the warehouse


def test_a_restored_older_warehouse_shows_runs_as_not_stored_and_sync_ingests_them(env):
    wh, run_id, before = env
    n_pred = q(wh, "SELECT count(*) FROM predictions WHERE run_id = ?", [run_id])[0][0]
    shutil.copy(before, wh)  # restore the copy taken before the run was ingested
    out = cli("runs", "list", "-w", wh)
    assert out.exit_code == 0 and run_id in out.output and "no: run" in out.output
    out = cli("runs", "sync", "-w", wh)
    assert out.exit_code == 0 and "ingested" in out.output, out.output
    assert q(wh, "SELECT count(*) FROM predictions WHERE run_id = ?", [run_id])[0][0] == n_pred
    out = cli("runs", "list", "-w", wh)
    assert "no: run" not in out.output
    assert "Nothing pending" in cli("runs", "sync", "-w", wh).output


def test_runs_list_and_show_say_which_evaluation_they_show(env):
    """The reviewer's B2: after `eval --eval-limit 10`, runs list printed the latest scores.json
    (n=10) while the analysis counts the most complete evaluation."""
    from gensynth.learning.predictions import EvalSettings
    from gensynth.learning.train import score_run

    wh, run_id, _ = env
    counted = q(wh, "SELECT role, n, pass_at_1, eval_id FROM pass_at_k WHERE run_id = ? AND view = ? ORDER BY role",
                [run_id, VIEW])
    score_run(wh, run_id, settings=EvalSettings(limit=10), quiet=True)
    assert q(wh, "SELECT role, n, pass_at_1, eval_id FROM pass_at_k WHERE run_id = ? AND view = ? ORDER BY role",
             [run_id, VIEW]) == counted
    out = cli("runs", "list", "-w", wh)
    assert out.exit_code == 0, out.output
    row = next(line for line in out.output.splitlines() if run_id in line)
    for role, n, p1, _ in counted:
        assert f"{role} {p1:.2f} (n={n:,})" in row, row
    assert "(n=10)" not in row and "analysis" in row
    out = cli("runs", "show", run_id, "-w", wh)
    assert out.exit_code == 0, out.output
    said = " ".join(out.output.split())
    for role, n, p1, eval_id in counted:
        assert f"{VIEW} / {role} (n={n:,}, eval {eval_id}, counted by the analysis)" in said, said
        assert f"{VIEW} / {role} (n=10, eval " in said  # the later, smaller evaluation is shown, not counted
    assert said.count("counted by the analysis") == len(counted)


def test_a_damaged_run_directory_never_breaks_runs_list(env):
    """The reviewer's B3: config.json `{x` or `{"data":5}` made `runs list` an internal error;
    a run directory without config.json was listed as 'no run directory' and `runs show` said 'No run'."""
    from gensynth.results.ingest import runs_root

    wh, run_id, _ = env
    root = runs_root(wh)
    for name, text in (("20990101-000000-bad1", "{x"), ("20990101-000000-bad2", '{"data": 5}')):
        (root / name).mkdir()
        (root / name / "config.json").write_text(text)
    (root / run_id / "config.json").unlink()
    out = cli("runs", "list", "-w", wh)
    assert out.exit_code == 0, out.output
    said = " ".join(out.output.split())
    assert "20990101-000000-bad1" in said and "config.json is not valid JSON" in said
    assert "20990101-000000-bad2" in said and "config.json has no 'data' section" in said
    assert "no run directory" not in said
    row = next(line for line in out.output.splitlines() if run_id in line)
    assert "damaged" in row and "yes" in row, row  # its directory lacks config.json; its results are stored
    assert "no config.json" in said
    out = cli("runs", "show", run_id, "-w", wh)
    assert out.exit_code == 0, out.output
    assert "no config.json" in " ".join(out.output.split()) and str(root / run_id) in out.output.replace("\n", "")


def test_runs_list_all_says_whether_a_run_of_another_universe_is_in_the_warehouse(env):
    """The reviewer's B13: runs of another universe were all labelled 'kept', even those that
    exist only as a directory; there was no 'in db' column."""
    wh, run_id, _ = env
    _build(wh, 2)
    out = cli("runs", "list", "--all", "-w", wh)
    assert out.exit_code == 0, out.output
    row = next(line for line in out.output.splitlines() if run_id in line)
    assert "in db" in out.output and "yes" in row, out.output
    con = duckdb.connect(str(wh))
    try:
        for t in ("predictions", "metrics", "evaluations", "runs"):
            con.execute(f"DELETE FROM {t} WHERE run_id = ?", [run_id])
    finally:
        con.close()
    out = cli("runs", "list", "--all", "-w", wh)
    row = next(line for line in out.output.splitlines() if run_id in line)
    assert "directory only" in row and "yes" not in row and "kept" not in row, row


# --------------------------------------------------------------- copied run directories


def test_a_copied_run_directory_is_quarantined_and_blocks_nothing(env):
    from gensynth.results.ingest import run_dirs, runs_root

    wh, run_id, _ = env
    root = runs_root(wh)
    shutil.copytree(root / run_id, root / f"{run_id}-copy", symlinks=True)  # cp -r runs/RUN runs/RUN-copy
    out = cli("runs", "sync", "-w", wh)
    assert out.exit_code == 0, out.output
    assert "quarantined" in out.output and f"{run_id}-copy" in out.output
    moved = root / "quarantine" / f"{run_id}-copy"
    assert moved.is_dir() and "belongs to run" in (moved / "QUARANTINED.txt").read_text()
    assert [d.name for d in run_dirs(wh)] == [run_id]
    assert q(wh, "SELECT count(*) FROM runs") == [(1,)]
    # A later train (which ingests leftovers at its end) is not blocked by another copy either.
    shutil.copytree(root / run_id, root / f"{run_id}-copy2", symlinks=True)
    s = _train(wh, steps=2)
    assert s.status == "finished" and s.ingest == "ingested"
    assert (root / "quarantine" / f"{run_id}-copy2").is_dir()
    assert q(wh, "SELECT count(*) FROM runs WHERE status = 'finished'") == [(2,)]
    assert "Nothing pending" in cli("runs", "sync", "-w", wh).output


# ----------------------------------------------------------- evaluations add, never replace


def test_evaluations_add_and_the_views_count_the_most_complete(env):
    from gensynth.learning.predictions import EvalSettings
    from gensynth.learning.train import score_run
    from gensynth.results.ingest import runs_root

    wh, run_id, _ = env
    before = q(wh, "SELECT count(*) FROM predictions WHERE run_id = ?", [run_id])[0][0]
    counted = q(wh, "SELECT role, n, pass_at_1, eval_id FROM pass_at_k WHERE run_id = ? ORDER BY role", [run_id])
    roles = len(counted)
    e = score_run(wh, run_id, settings=EvalSettings(limit=10), quiet=True)  # the issue's `gensynth eval --eval-limit 10`
    assert e.ingest == "ingested"
    # The training-time predictions are all still there, next to the new evaluation's.
    assert q(wh, "SELECT count(*) FROM predictions WHERE run_id = ?", [run_id])[0][0] == before + 10 * roles
    evals = q(wh, "SELECT view, n_programs, settings ->> '$.limit' FROM evaluations WHERE run_id = ? ORDER BY n_programs",
              [run_id])
    assert [(v, n) for v, n, _ in evals] == [(VIEW, 10 * roles), (VIEW, before)] and evals[0][2] == "10"
    assert len(list((runs_root(wh) / run_id / "evals" / VIEW / "earlier").iterdir())) == 1
    # The views count the most complete evaluation: nothing changed there.
    assert q(wh, "SELECT role, n, pass_at_1, eval_id FROM pass_at_k WHERE run_id = ? ORDER BY role", [run_id]) == counted
    # Replacing needs the explicit flag: then only the new evaluation is left, and counted.
    out = cli("eval", "--run", run_id, "--eval-limit", "10", "--replace", "-w", wh)
    assert out.exit_code == 0, out.output
    assert q(wh, "SELECT count(*) FROM predictions WHERE run_id = ?", [run_id])[0][0] == 10 * roles
    assert q(wh, "SELECT count(*) FROM evaluations WHERE run_id = ?", [run_id]) == [(1,)]
    assert {r[0] for r in q(wh, "SELECT n FROM pass_at_k WHERE run_id = ?", [run_id])} == {10}


def test_a_failed_replacing_evaluation_loses_nothing(env):
    """`eval --replace` deletes the earlier evaluations only once the new one is written: an
    evaluation that fails (here: the checkpoint cannot be read) leaves every file and row."""
    from gensynth.results.ingest import runs_root

    wh, run_id, _ = env
    run_dir = runs_root(wh) / run_id
    rows = q(wh, "SELECT count(*), count(DISTINCT eval_id) FROM predictions WHERE run_id = ?", [run_id])
    files = sorted(p.relative_to(run_dir) for p in (run_dir / "evals").rglob("*") if p.is_file())
    ckpt = run_dir / json.loads((run_dir / "state.json").read_text())["checkpoint_path"]
    ckpt.write_bytes(b"not a checkpoint")
    out = cli("eval", "--run", run_id, "--eval-limit", "10", "--replace", "-w", wh)
    said = " ".join((out.output + str(out.exception)).split())
    assert out.exit_code == 1 and "cannot be read" in said and "nothing was changed" in said
    assert q(wh, "SELECT count(*), count(DISTINCT eval_id) FROM predictions WHERE run_id = ?", [run_id]) == rows
    after = sorted(p.relative_to(run_dir) for p in (run_dir / "evals").rglob("*") if p.is_file())
    assert {p.name for p in after} >= {p.name for p in files} and (run_dir / "evals" / VIEW / "earlier").is_dir()


def test_eval_on_another_split_reports_and_excludes_what_the_run_trained_on(env):
    from gensynth.learning.predictions import EvalSettings
    from gensynth.learning.train import score_run
    from gensynth.results.ingest import runs_root

    wh, run_id, _ = env
    other = "split_density_natural"
    tests = tuple(r[0] for r in q(wh, f"SELECT DISTINCT role FROM {other} WHERE role LIKE 'test%' ORDER BY 1"))
    score_run(wh, run_id, view=other, settings=EvalSettings(roles=tests), quiet=True)
    overlap = json.loads((runs_root(wh) / run_id / "evals" / other / "scores.json").read_text())["training_overlap"]
    # Independently, in SQL: evaluated test programs whose function some train program of the run's split computes.
    [(n_eval, n_prog, n_func)] = q(wh, f"""
        WITH tr AS (SELECT program_id, function_id FROM {VIEW} JOIN programs USING (program_id) WHERE role = 'train'),
             ev AS (SELECT DISTINCT program_id FROM predictions WHERE run_id = ? AND view = ?)
        SELECT count(*), count(*) FILTER (WHERE program_id IN (SELECT program_id FROM tr)),
               count(*) FILTER (WHERE function_id IN (SELECT function_id FROM tr))
        FROM ev JOIN programs USING (program_id)""", [run_id, other])
    assert (overlap["evaluated_programs"], overlap["train_programs"], overlap["train_functions"]) == (n_eval, n_prog, n_func)
    assert n_func > 0  # density_natural's test roles were not drawn against this run's training set
    rows = q(wh, "SELECT sum(n), sum(n_excluded_trained) FROM pass_at_k WHERE run_id = ? AND view = ?", [run_id, other])
    assert rows == [(n_eval - n_func, n_func)]
    assert q(wh, "SELECT count(*) FROM proximity WHERE run_id = ? AND view = ?", [run_id, other]) == [(n_eval - n_func,)]
    # The run's own split is its own to define: nothing left out there.
    assert q(wh, "SELECT sum(n_excluded_trained) FROM pass_at_k WHERE run_id = ? AND view = ?", [run_id, VIEW]) == [(0,)]
    # `gensynth eval` reports it.
    out = cli("eval", "--run", run_id, "--view", other, "--eval-roles", ",".join(tests), "-w", wh)
    assert out.exit_code == 0, out.output
    assert "in the run's training set" in out.output and f"{n_func:,} by function" in out.output


# ------------------------------------------------------------ wall time of resumed runs


def test_the_wall_time_of_a_resumed_run_counts_its_killed_attempt(env):
    import os
    import signal
    import subprocess
    import sys
    import time

    from gensynth.learning.train import resume
    from gensynth.results.ingest import runs_root

    wh, first_run, _ = env
    env_vars = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gensynth", "train", "--view", VIEW, "--size", "nano",
                             "--max-steps", "300", "--batch-size", "16", "--checkpoint-every", "10", "-q", "-w", str(wh)],
                            env=env_vars, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt, deadline = None, time.monotonic() + 120
    while ckpt is None and time.monotonic() < deadline:
        time.sleep(0.05)
        found = [p for p in runs_root(wh).glob("*/checkpoints/last.ckpt") if p.parent.parent.name != first_run]
        ckpt = found[0] if found else None
        assert proc.poll() is None, proc.stderr.read()
    assert ckpt is not None, "no checkpoint within 120 s"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    run_dir = ckpt.parent.parent
    r = resume(wh, run_dir.name, quiet=True)
    assert r.status == "finished"
    attempts = json.loads((run_dir / "state.json").read_text())["attempts"]
    assert [a["ended"] for a in attempts] == ["killed", "finished"] and attempts[0]["seconds"] > 0
    [(wall, n, killed)] = q(wh, "SELECT wall_time_s, attempts, killed_attempts FROM runs WHERE run_id = ?", [run_dir.name])
    assert (n, killed) == (2, 1)
    assert wall == pytest.approx(attempts[0]["seconds"] + attempts[1]["seconds"], abs=0.01)
    assert wall > attempts[1]["seconds"]  # the killed attempt is in the sum
