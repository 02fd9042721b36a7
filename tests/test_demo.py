"""`gensynth demo` end to end on the tiny grammar (gensynth/experiments/demo.py, gensynth/cli/demo.py):
build, train, search, proximity, report, the five-line summary; a second demo reuses everything;
a warehouse of another universe (or not a warehouse) is refused untouched."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "grammars" / "tiny.toml"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "200"}
ENV.pop("GENSYNTH_WAREHOUSE", None)
SMALL = ("--grammar", str(TINY), "--max-ops", "3", "--max-steps", "20", "--eval-limit", "60", "--tasks", "3",
         "--budget-seconds", "2", "--threads", "1", "--quiet")


def demo(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "gensynth", "demo", *args], capture_output=True, text=True, env=ENV,
                          cwd=ROOT, timeout=timeout)


def query(path, sql, params=None):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def tree_hash(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(Path(path).rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(path)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """One demo from nothing (tiny grammar, 3 ops, 20 steps, 3 tasks per role), then the same demo again."""
    base = tmp_path_factory.mktemp("demo")
    wh, out = base / "wh" / "gensynth.duckdb", base / "report"
    first = demo(*SMALL, "-w", str(wh), "--out", str(out))
    assert first.returncode == 0, first.stdout + first.stderr
    runs_before = tree_hash(wh.parent / "runs")
    second = demo(*SMALL, "-w", str(wh))  # the report's default place: report/ beside the warehouse
    assert second.returncode == 0, second.stdout + second.stderr
    return wh, out, first.stdout, second.stdout + second.stderr, runs_before


def test_the_demo_builds_trains_searches_and_reports(ran):
    wh, out, stdout, _, _ = ran
    assert query(wh, "SELECT value FROM meta WHERE key = 'grammar_name'") == [("tiny",)]
    [(run_id, steps, size)] = query(wh, "SELECT run_id, steps, size FROM finished_runs WHERE method = 'transformer' "
                                        "AND view = 'split_support_syntactic'")
    assert steps == 20 and size == "micro"  # the default architecture: lines micro
    arch = json.loads(query(wh, "SELECT config FROM runs WHERE run_id = ?", [run_id])[0][0])["model"]["arch"]
    assert arch == "lines"
    search = query(wh, "SELECT method, role, n FROM method_comparison WHERE method <> 'transformer' ORDER BY 1, 2")
    assert search == [("enumerative", "test_id", 3), ("enumerative", "test_ood", 3),
                      ("hybrid", "test_id", 3), ("hybrid", "test_ood", 3)]
    parents = {json.loads(c)["parent_run"] for (c,) in query(wh, "SELECT config FROM runs r JOIN finished_runs f "
                                                                 "USING (run_id) WHERE f.method = 'hybrid'")}
    assert parents == {run_id}  # hybrid proposes with the demo's trained model
    assert query(wh, "SELECT count(*) FROM nearest_train WHERE train_view = 'split_support_syntactic'")[0][0] > 0
    assert (out / "report.md").stat().st_size > 0 and "<html" in (out / "index.html").read_text().lower()
    assert list(out.glob("*.png"))
    assert stdout.splitlines()[0] == f"report: {out / 'index.html'} (Markdown: {out / 'report.md'})"
    assert len(stdout.splitlines()) == 6  # on stdout: the report's path and the five lines, nothing else


def test_the_summary_is_five_lines_of_the_warehouse_numbers(ran):
    wh, _, stdout, _, _ = ran
    lines = stdout.strip().splitlines()[-5:]
    assert lines[0].startswith("model: lines micro, 20 steps on split_support_syntactic")
    rows = dict(((role, (n, p, lo, hi)) for role, n, p, lo, hi in query(
        wh, "SELECT role, n, pass_at_1, pass_at_1_lo, pass_at_1_hi FROM method_comparison WHERE method = 'transformer'")))
    for line, role in zip(lines[1:3], ("test_id", "test_ood")):
        n, p, lo, hi = rows[role]
        assert line == f"pass@1 {role:<8} {p:.3f} [{lo:.3f}, {hi:.3f}] (n={n:,})"
    for line, method in zip(lines[3:], ("enumerative", "hybrid")):
        assert re.fullmatch(rf"{method} solve rate: test_id \d/3 \(\d\.\d\d\), test_ood \d/3 \(\d\.\d\d\)", line), line
        solved = query(wh, "SELECT role, round(pass_at_1 * n) FROM method_comparison WHERE method = ? ORDER BY 1", [method])
        assert [int(s) for s in re.findall(r"(\d)/3", line)] == [int(s) for _, s in solved]


def test_a_second_demo_reuses_the_warehouse_and_every_run(ran):
    wh, _, _, second, runs_before = ran
    assert "Reusing the warehouse" in second and "Reusing the finished demo run" in second
    assert f"report: {wh.parent / 'report' / 'index.html'}" in second and (wh.parent / "report" / "report.md").exists()
    assert [line for line in second.splitlines() if line.startswith("model: ")][0].endswith(", reused)")
    assert query(wh, "SELECT count(*) FROM runs") == [(5,)]  # one training, four searches: none twice
    assert tree_hash(wh.parent / "runs") == runs_before  # run directories untouched


def test_a_warehouse_of_another_universe_is_refused_untouched(ran, tmp_path):
    wh, _, _, _, _ = ran
    copy = tmp_path / "w.duckdb"
    shutil.copy(wh, copy)
    before = hashlib.sha256(copy.read_bytes()).hexdigest()
    for args in (("--max-ops", "2", "--grammar", str(TINY)), ("--max-ops", "3")):  # other max-ops; other grammar
        r = demo(*args, "--max-steps", "5", "-q", "-w", str(copy), "--out", str(tmp_path / "report"))
        assert r.returncode == 1, r.stdout + r.stderr
        msg = " ".join(r.stderr.split())
        assert "another universe" in msg and str(copy) in msg and "-w" in msg and "Nothing was changed" in msg
        assert "Traceback" not in r.stderr
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == before
    assert not (tmp_path / "runs").exists() and not (tmp_path / "report").exists()


def test_a_duckdb_file_that_is_not_a_warehouse_is_refused_untouched(tmp_path):
    path = tmp_path / "mine.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE notes AS SELECT 42 AS answer")
    con.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    r = demo(*SMALL, "-w", str(path), "--out", str(tmp_path / "report"))
    assert r.returncode == 1 and "not a gensynth warehouse" in " ".join(r.stderr.split()) and str(path) in r.stderr
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_bad_demo_options_are_refused_before_any_work(tmp_path):
    r = demo("--max-steps", "0", "--tasks", "0", "-w", str(tmp_path / "w.duckdb"))
    assert r.returncode == 1 and "--max-steps must be >= 1" in r.stderr and "--tasks must be >= 1" in r.stderr
    assert not (tmp_path / "w.duckdb").exists()


@pytest.mark.slow  # about a minute on the shared machine: a demo killed mid-training, then a second one
def test_a_killed_demo_resumes_its_run_instead_of_training_again(tmp_path):
    wh = tmp_path / "gensynth.duckdb"
    args = ("--grammar", str(TINY), "--max-ops", "3", "--max-steps", "60", "--eval-limit", "20", "--tasks", "1",
            "--threads", "1", "-q", "-w", str(wh))
    proc = subprocess.Popen([sys.executable, "-m", "gensynth", "demo", *args], env=ENV, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, ckpt = time.monotonic() + 240, None
    while time.monotonic() < deadline and ckpt is None:
        time.sleep(0.05)
        found = list((tmp_path / "runs").glob("*/checkpoints/last.ckpt")) if (tmp_path / "runs").exists() else []
        ckpt = found[0] if found else None
        assert proc.poll() is None, proc.stderr.read()
    assert ckpt is not None, "no checkpoint within 240 s"
    proc.send_signal(signal.SIGKILL)  # mid-training: the first checkpoint is at step 6 of 60
    proc.wait(timeout=30)
    run_dir = ckpt.parent.parent
    again = demo(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"Resumed the interrupted demo run {run_dir.name}" in " ".join(again.stderr.split())
    assert [line for line in again.stdout.splitlines() if line.startswith("model: ")][0].endswith(", resumed)")
    assert query(wh, "SELECT run_id, status, steps FROM runs WHERE steps IS NOT NULL OR status <> 'finished'") == [
        (run_dir.name, "finished", 60)]  # one training run: the killed one, finished; no second one
    starts = [a["start_step"] for a in json.loads((run_dir / "state.json").read_text())["attempts"]]
    assert starts[0] == 0 and len(starts) == 2 and 6 <= starts[1] < 60
