"""User splits over a warehouse's life: carried over by rebuilds (re-registered, or kept
stale with the reason), revived after a fix, protected from drops while others depend
on them, refused when they read results, and run under time and memory limits.

A max-ops-2 warehouse with manifolds is built once per module by the real pipeline;
each test works on its own copy, through the real `gensynth` command.
"""

from __future__ import annotations

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

from gensynth import splits

GENSYNTH = shutil.which("gensynth") or str(Path(sys.executable).with_name("gensynth"))
HEAD = "-- {name}: a user split of the lifecycle tests.\n-- kind: density\n"
KEEPS = HEAD.format(name="keeps") + """SELECT program_id,  -- a finite program
       CASE WHEN program_id % 5 = 0 THEN 'test_small' ELSE 'train' END AS role  -- train or test_small
FROM manifold WHERE sem IS NOT NULL AND n_ops <= 1
"""
NEEDS_TWO = HEAD.format(name="needs_two") + """SELECT program_id,  -- a finite 2-operator program
       'train' AS role  -- everything is train
FROM manifold WHERE sem IS NOT NULL AND n_ops = 2
"""
READS_KEEPS = HEAD.format(name="reads_keeps") + """SELECT program_id,  -- a program of split_keeps
       role              -- its role there
FROM split_keeps WHERE role = 'train' OR program_id % 2 = 0
"""
DEEP_SYN = HEAD.format(name="deep_syn") + """SELECT program_id,  -- a program with a 30th syntactic coordinate
       CASE WHEN syn[30] >= 0 THEN 'train' ELSE 'test_neg' END AS role  -- by the sign of syn[30]
FROM manifold WHERE syn[30] IS NOT NULL
"""
TESTS_TWO = HEAD.format(name="tests_two") + """SELECT program_id,  -- a finite program
       CASE WHEN n_ops <= 1 THEN 'train' ELSE 'test_two' END AS role  -- train up to 1 operator, test on 2
FROM manifold WHERE sem IS NOT NULL
"""
ENDLESS = HEAD.format(name="endless") + """WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r)
SELECT i::INTEGER AS program_id, 'train' AS role FROM r
"""


def gensynth(*args, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GENSYNTH_WAREHOUSE"} | {"COLUMNS": "200"}
    return subprocess.run([GENSYNTH, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    from gensynth.manifolds.embed import EmbedConfig
    from gensynth.pipeline import build_warehouse
    from gensynth.universe.grammar import load_grammar

    path = tmp_path_factory.mktemp("lifecycle") / "gensynth.duckdb"
    build_warehouse(load_grammar(), 2, path, quiet=True, embed=EmbedConfig())
    return path


@pytest.fixture
def wh(built, tmp_path) -> Path:
    path = tmp_path / "w.duckdb"
    shutil.copy(built, path)
    for name, text in (("keeps", KEEPS), ("needs_two", NEEDS_TWO), ("reads_keeps", READS_KEEPS), ("deep_syn", DEEP_SYN),
                       ("tests_two", TESTS_TWO)):
        (tmp_path / f"{name}.sql").write_text(text)
    return path


def add(wh: Path, name: str, *extra) -> subprocess.CompletedProcess:
    return gensynth("split", "add", wh.parent / f"{name}.sql", "--warehouse", wh, *extra, cwd=wh.parent)


def registry(wh: Path) -> dict[str, tuple[str, str]]:
    with duckdb.connect(str(wh), read_only=True) as con:
        return {n: (s, r) for n, s, r in con.execute("SELECT name, status, stale_reason FROM splits WHERE source <> 'builtin'").fetchall()}


def view_rows(wh: Path, view: str) -> list | None:
    with duckdb.connect(str(wh), read_only=True) as con:
        if not con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [view]).fetchone()[0]:
            return None
        return sorted(con.execute(f"SELECT program_id, role FROM {view}").fetchall())


def summary_value(output: str, row: str) -> int:
    m = re.search(rf"{re.escape(row)}\s*│\s*([\d,]+)", output)
    assert m, (row, output)
    return int(m.group(1).replace(",", ""))


# ------------------------------------------------------------------ rebuilds


def test_a_rebuild_carries_user_splits_over_and_keeps_failures_stale(wh):
    for name in ("keeps", "needs_two", "reads_keeps"):
        ok(add(wh, name))
    before = {v: view_rows(wh, f"split_{v}") for v in ("keeps", "needs_two", "reads_keeps")}

    out = ok(gensynth("build", "--max-ops", 1, "--warehouse", wh, cwd=wh.parent))
    assert (summary_value(out, "user splits carried"), summary_value(out, "re-registered"),
            summary_value(out, "stale (see `gensynth split list`)")) == (3, 2, 1)
    assert "stale split needs_two" in out and "train is empty" in out
    reg = registry(wh)
    assert reg["keeps"] == ("ok", "") and reg["reads_keeps"] == ("ok", "")
    assert reg["needs_two"][0] == "stale" and "train is empty" in reg["needs_two"][1]
    assert "could not be carried over to the rebuilt warehouse" in reg["needs_two"][1]
    assert "was not registered" not in reg["needs_two"][1] and "was not changed" not in reg["needs_two"][1]
    assert view_rows(wh, "split_needs_two") is None  # a stale split has no view
    assert view_rows(wh, "split_keeps") is not None

    listing = ok(gensynth("split", "list", "--warehouse", wh, cwd=wh.parent))
    assert re.search(r"needs_two\s*│\s*density\s*│\s*stale", listing)
    assert "train is empty" in listing and "--name needs_two --replace" in listing
    # No counts of the old universe for the stale split (it had 3,600 train programs there).
    row = next(line for line in listing.splitlines() if re.search(r"needs_two\s*│", line))
    assert re.search(r"stale\s*│\s*-\s*│\s*-\s*│", row), row
    shown = gensynth("split", "show", "needs_two", "--warehouse", wh, cwd=wh.parent)
    assert shown.returncode == 1 and "is stale" in shown.stderr and "Traceback" not in shown.stderr
    checked = gensynth("split", "check", "needs_two", "--warehouse", wh, cwd=wh.parent)
    assert checked.returncode == 1 and "fails its checks" in checked.stderr
    assert "was not registered" not in checked.stderr and "train is empty" in checked.stderr

    # Back to the universe it was written for: the stale split passes and is registered again.
    out = ok(gensynth("build", "--max-ops", 2, "--warehouse", wh, cwd=wh.parent))
    assert (summary_value(out, "user splits carried"), summary_value(out, "re-registered")) == (3, 3)
    assert {n: s for n, (s, _) in registry(wh).items()} == {"keeps": "ok", "needs_two": "ok", "reads_keeps": "ok"}
    assert {v: view_rows(wh, f"split_{v}") for v in before} == before


def test_a_rebuild_flags_a_re_registered_split_whose_test_role_became_empty(wh):
    ok(add(wh, "tests_two"))
    out = ok(gensynth("build", "--max-ops", 1, "--warehouse", wh, cwd=wh.parent))
    assert (summary_value(out, "re-registered"), summary_value(out, "with an empty test role")) == (1, 1)
    assert "split tests_two re-registered, but empty on this universe: test_two" in " ".join(out.split())
    assert registry(wh)["tests_two"] == ("ok", "")


def test_a_stale_split_is_revived_by_add_replace(wh, tmp_path):
    ok(add(wh, "needs_two"))
    ok(gensynth("build", "--max-ops", 1, "--warehouse", wh, cwd=wh.parent))
    assert registry(wh)["needs_two"][0] == "stale"
    refused = add(wh, "needs_two")
    assert refused.returncode == 1 and "already registered" in refused.stderr
    said = " ".join(refused.stderr.split())
    assert "is stale" in said and "train is empty" in said and "--replace" in said and "gensynth split check needs_two" in said
    (tmp_path / "needs_two.sql").write_text(NEEDS_TWO.replace("n_ops = 2", "n_ops = 1"))
    ok(add(wh, "needs_two", "--replace"))
    assert registry(wh)["needs_two"] == ("ok", "")
    assert view_rows(wh, "split_needs_two")


def test_a_build_without_manifolds_keeps_user_splits_stale(wh):
    ok(add(wh, "keeps"))
    out = ok(gensynth("build", "--skip-embed", "--max-ops", 2, "--warehouse", wh, cwd=wh.parent))
    assert summary_value(out, "stale (see `gensynth split list`)") == 1
    status, reason = registry(wh)["keeps"]
    assert status == "stale" and "gensynth embed" in reason


def test_embed_revalidates_user_splits_as_a_rebuild_does(wh):
    """The reviewer's A4: a split using syn[30] stayed "ok" after `embed --k-syn 8` although
    its train role became empty (syn[30] is NULL past the end of an 8-entry array)."""
    ok(add(wh, "deep_syn"))
    ok(add(wh, "keeps"))
    out = ok(gensynth("embed", "--k-syn", 8, "--warehouse", wh, cwd=wh.parent))
    assert (summary_value(out, "user splits re-validated"), summary_value(out, "re-registered"),
            summary_value(out, "stale (see `gensynth split list`)")) == (2, 1, 1)
    assert "stale split deep_syn" in out and "train is empty" in out
    reg = registry(wh)
    assert reg["keeps"] == ("ok", "") and view_rows(wh, "split_keeps")
    assert reg["deep_syn"][0] == "stale" and "train is empty" in reg["deep_syn"][1]
    assert "was not registered" not in reg["deep_syn"][1] and "was not changed" not in reg["deep_syn"][1]
    assert view_rows(wh, "split_deep_syn") is None
    listing = ok(gensynth("split", "list", "--warehouse", wh, cwd=wh.parent))
    assert re.search(r"deep_syn\s*│\s*density\s*│\s*stale", listing)
    # Back to manifolds with a 30th coordinate: the stale split passes and is registered again.
    out = ok(gensynth("embed", "--warehouse", wh, cwd=wh.parent))
    assert (summary_value(out, "re-registered"), summary_value(out, "stale (see `gensynth split list`)")) == (2, 0)
    assert registry(wh)["deep_syn"] == ("ok", "") and view_rows(wh, "split_deep_syn")


# ---------------------------------------------------------------------- drop


def test_drop_refuses_while_splits_or_runs_depend_on_it(wh):
    from gensynth.results.ingest import migrate

    ok(add(wh, "keeps"))
    ok(add(wh, "reads_keeps"))
    with duckdb.connect(str(wh)) as con:
        migrate(con)
        con.execute("""INSERT INTO runs (run_id, view, role_sizes, config, size, n_params, code_version, data_version,
                       status, started_at, ingested_at)
                       VALUES ('run-on-keeps', 'split_keeps', '{}', '{}', 'nano', 1, 'v', 'd', 'finished', now(), now())""")
    refused = gensynth("split", "drop", "keeps", "--warehouse", wh, cwd=wh.parent)
    assert refused.returncode == 1
    assert "reads_keeps" in refused.stderr and "run-on-keeps" in refused.stderr and "--force" in refused.stderr
    assert registry(wh)["keeps"] == ("ok", "") and view_rows(wh, "split_keeps")

    out = ok(gensynth("split", "drop", "keeps", "--force", "--warehouse", wh, cwd=wh.parent))
    assert "reads_keeps" in out and "stale" in out
    reg = registry(wh)
    assert "keeps" not in reg and reg["reads_keeps"][0] == "stale" and "split_keeps, which was dropped" in reg["reads_keeps"][1]
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs WHERE run_id = 'run-on-keeps'").fetchone()[0] == 1

    # Once what it reads is back, `split check` re-validates the stale split and registers it again.
    ok(add(wh, "keeps"))
    out = ok(gensynth("split", "check", "reads_keeps", "--warehouse", wh, cwd=wh.parent))
    assert "registered again" in out
    assert registry(wh)["reads_keeps"] == ("ok", "") and view_rows(wh, "split_reads_keeps")


# ----------------------------------------------------------------- result tables


@pytest.mark.parametrize("relation", ["predictions", "runs", "pass_at_k"])
def test_a_split_reading_results_is_refused(wh, tmp_path, relation):
    from gensynth.results.ingest import migrate

    with duckdb.connect(str(wh)) as con:
        migrate(con)
    (tmp_path / "drifts.sql").write_text(HEAD.format(name="drifts") + f"""
SELECT m.program_id, 'train' AS role FROM manifold m
WHERE m.program_id NOT IN (SELECT program_id FROM {relation})""")
    result = add(wh, "drifts")
    assert result.returncode == 1
    assert f"reads {relation}, which changes as runs land" in result.stderr and "Fix the SQL" in result.stderr
    assert "drifts" not in registry(wh)


# ------------------------------------------------------------------ limits


def test_a_split_that_runs_forever_stops_at_the_time_limit(wh, tmp_path):
    (tmp_path / "endless.sql").write_text(ENDLESS)
    result = gensynth("split", "add", tmp_path / "endless.sql", "--time-limit", 1, "--warehouse", wh, cwd=tmp_path, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "ran longer than the time limit of 1 s" in result.stderr and "--time-limit" in result.stderr
    assert "endless" not in registry(wh)


def test_a_split_over_the_memory_limit_is_refused(wh, tmp_path):
    (tmp_path / "greedy.sql").write_text(HEAD.format(name="greedy") + """
SELECT a.program_id, 'train' AS role FROM programs a, programs b
GROUP BY a.program_id HAVING length(string_agg(b.prefix || a.prefix, ',')) > 0""")
    result = gensynth("split", "add", tmp_path / "greedy.sql", "--memory-limit", "64MB", "--warehouse", wh, cwd=tmp_path, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "more memory than the limit of 64MB" in result.stderr and "--memory-limit" in result.stderr


def test_ctrl_c_interrupts_a_running_split(wh, tmp_path):
    (tmp_path / "endless.sql").write_text(ENDLESS)
    proc = subprocess.Popen([GENSYNTH, "split", "add", str(tmp_path / "endless.sql"), "--warehouse", str(wh)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # well into the endless query (validation takes a fraction of a second)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)  # without the interrupt DuckDB would never return
    assert proc.returncode == 130 and "Interrupted" in err and "Traceback" not in err
    assert "endless" not in registry(wh)
