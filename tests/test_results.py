"""Tests for gensynth/results.py and sql/results.sql: migrations, schemas, run-directory results, ingestion."""

import datetime as dt
import re
import shutil
import subprocess
import sys
import time

import duckdb
import pytest

from helpers import make_split_warehouse
from gensynth.results.ingest import (
    MIGRATIONS,
    carry_over,
    ingest_run,
    is_pending,
    migrate,
    results_manifest,
    runs_root,
    sync,
    write_results,
)
from gensynth.warehouse import SQL_DIR, connect

EXPECTED = {
    "runs": [("run_id", "VARCHAR"), ("view", "VARCHAR"), ("split_sql_hash", "VARCHAR"), ("role_sizes", "JSON"),
             ("config", "JSON"), ("size", "VARCHAR"), ("n_params", "BIGINT"), ("training_flops", "DOUBLE"),
             ("examples_seen", "BIGINT"), ("tokens_seen", "BIGINT"), ("steps", "INTEGER"), ("wall_time_s", "DOUBLE"),
             ("device", "VARCHAR"), ("code_version", "VARCHAR"), ("data_version", "VARCHAR"), ("checkpoint", "VARCHAR"),
             ("status", "VARCHAR"), ("error", "VARCHAR"), ("started_at", "TIMESTAMP WITH TIME ZONE"),
             ("finished_at", "TIMESTAMP WITH TIME ZONE"), ("ingested_at", "TIMESTAMP WITH TIME ZONE"),
             ("results_id", "VARCHAR"),  # + migration 0003_runs_results_id
             ("attempts", "INTEGER"), ("killed_attempts", "INTEGER"),  # + migration 0005_run_attempts
             ("arch", "VARCHAR")],  # + migration 0006_runs_arch
    "metrics": [("run_id", "VARCHAR"), ("step", "INTEGER"), ("name", "VARCHAR"), ("value", "DOUBLE")],
    "predictions": [("run_id", "VARCHAR"), ("view", "VARCHAR"), ("role", "VARCHAR"), ("program_id", "INTEGER"),
                    ("decoding", "VARCHAR"), ("sample_index", "INTEGER"), ("predicted", "VARCHAR"),
                    ("parsed", "BOOLEAN"), ("passed", "BOOLEAN"), ("exact_match", "BOOLEAN"),
                    ("offgrid_passed", "BOOLEAN"), ("logprob", "DOUBLE"),
                    ("candidates", "BIGINT"), ("search_seconds", "DOUBLE"),  # + migration 0002_search_budget
                    ("eval_id", "VARCHAR"), ("train_program", "BOOLEAN"), ("train_function", "BOOLEAN")],  # + 0004
    "evaluations": [("run_id", "VARCHAR"), ("eval_id", "VARCHAR"), ("view", "VARCHAR"), ("checkpoint", "VARCHAR"),
                    ("step", "INTEGER"), ("settings", "JSON"), ("evaluated_at", "TIMESTAMP WITH TIME ZONE"),
                    ("roles", "JSON"), ("n_programs", "BIGINT"), ("n_predictions", "BIGINT"),
                    ("train_programs", "BIGINT"), ("train_functions", "BIGINT"), ("scores", "JSON")],  # migration 0004_evaluations
}
CREATED_BY_RESULTS_SQL = {"runs": 21, "metrics": 4, "predictions": 12}


@pytest.fixture(scope="module")
def base_wh(tmp_path_factory):
    return make_split_warehouse(tmp_path_factory.mktemp("results") / "w.duckdb")


@pytest.fixture
def wh(base_wh, tmp_path):
    path = tmp_path / "w.duckdb"
    shutil.copy(base_wh, path)
    return path


def _data_version(path):
    con = connect(path, read_only=True)
    try:
        return con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0]
    finally:
        con.close()


def fake_run(wh, run_id="20260101-000000-abcd", n_pred=5, status="finished", data_version=None):
    """A run directory with results: one runs row, two metrics, n_pred predictions."""
    run_dir = runs_root(wh) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text("{}")
    pred = run_dir / "pred.parquet"
    con = duckdb.connect()
    con.execute((SQL_DIR / "results.sql").read_text())
    con.executemany("INSERT INTO predictions VALUES (?, 'split_tiny', 'test_id', ?, 'greedy', 0, 'x', true, ?, false, true, -1.0)",
                    [(run_id, i, i % 2 == 0) for i in range(n_pred)])
    con.execute(f"COPY predictions TO '{pred}' (FORMAT parquet)")
    con.close()
    now = dt.datetime.now(dt.timezone.utc)
    row = {"run_id": run_id, "view": "split_tiny", "split_sql_hash": "h", "role_sizes": {"train": 3}, "config": {"a": 1},
           "size": "nano", "n_params": 10, "training_flops": 1e9, "examples_seen": 3, "tokens_seen": 9, "steps": 1,
           "wall_time_s": 1.0, "device": "cpu x1", "code_version": "test", "data_version": data_version or _data_version(wh),
           "checkpoint": "last", "status": status, "error": None, "started_at": now, "finished_at": now}
    write_results(run_dir, row, [(1, "train/loss", 2.0), (1, "eval/split_tiny/test_id/pass@1", 0.5)], [pred])
    return run_dir


def counts(wh, run_id):
    con = connect(wh, read_only=True)
    try:
        return tuple(con.execute(f"SELECT count(*) FROM {t} WHERE run_id = ?", [run_id]).fetchone()[0]
                     for t in ("runs", "metrics", "predictions"))
    finally:
        con.close()


def test_migrations_create_the_tables_once_and_are_recorded():
    con = duckdb.connect()
    assert migrate(con) == [m.name for m in MIGRATIONS]
    assert migrate(con) == []  # recorded: never applied twice
    assert [r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()] == [m.name for m in MIGRATIONS]
    for table, cols in EXPECTED.items():
        assert con.execute(f"SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = '{table}' "
                           f"ORDER BY column_index").fetchall() == cols


def test_every_results_column_is_documented():
    text = (SQL_DIR / "results.sql").read_text()
    for table, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", text, re.S):
        lines = [ln.strip() for ln in body.strip().splitlines() if ln.strip()]
        assert len(lines) == CREATED_BY_RESULTS_SQL[table]
        for ln in lines:
            assert re.search(r"--\s*\S", ln), f"{table}: column without a comment: {ln}"
    assert "training_flops" in text and "ANALYTIC" in text  # says how FLOPs are obtained


def test_ingest_replaces_a_runs_rows_and_never_duplicates(wh):
    run_dir = fake_run(wh, n_pred=5)
    assert is_pending(run_dir)
    assert ingest_run(wh, run_dir).state == "ingested"
    assert not is_pending(run_dir)
    assert ingest_run(wh, run_dir).state == "ingested"  # again: idempotent
    assert counts(wh, run_dir.name) == (1, 2, 5)
    fake_run(wh, n_pred=3)  # a new results version of the same run (e.g. after eval or resume)
    assert is_pending(run_dir)
    assert sync(wh)[0].state == "ingested"
    assert counts(wh, run_dir.name) == (1, 2, 3)
    assert sync(wh) == []  # nothing pending any more
    assert [o.state for o in sync(wh, everything=True)] == ["ingested"]  # --all re-ingests
    assert counts(wh, run_dir.name) == (1, 2, 3)


def test_results_folder_is_swapped_atomically(wh):
    run_dir = fake_run(wh)
    first = results_manifest(run_dir)["results_id"]
    fake_run(wh)
    assert results_manifest(run_dir)["results_id"] != first
    assert (run_dir / "results").is_symlink()
    assert len(list(run_dir.glob("results.*"))) == 1  # old versions removed, no temporaries left
    assert not list(run_dir.glob(".results*"))


def test_a_locked_warehouse_leaves_results_pending_until_sync(wh):
    run_dir = fake_run(wh)
    reader = subprocess.Popen([sys.executable, "-c", f"import duckdb, sys, time; c = duckdb.connect({str(wh)!r}, read_only=True); "
                               "print('open', flush=True); sys.stdin.readline()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "open"
        t = time.monotonic()
        outcome = ingest_run(wh, run_dir, timeout=0.5)
        assert outcome.state == "pending" and "PID" in outcome.message and "gensynth runs sync" in outcome.message
        assert time.monotonic() - t < 5
        assert is_pending(run_dir)
    finally:
        reader.communicate("\n", timeout=30)
    assert [o.state for o in sync(wh)] == ["ingested"]
    assert counts(wh, run_dir.name) == (1, 2, 5)


def test_ingest_waits_for_a_short_lock(wh):
    run_dir = fake_run(wh)
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(wh)!r}, read_only=True); "
                               "print('open', flush=True); time.sleep(1.5)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "open"
    assert ingest_run(wh, run_dir, timeout=30).state == "ingested"  # retried until the reader left
    holder.wait(timeout=30)


def test_a_run_from_another_warehouse_build_is_refused(wh):
    run_dir = fake_run(wh, data_version="someotherversion")
    outcome = ingest_run(wh, run_dir)
    assert outcome.state == "refused" and "data version" in outcome.message
    con = connect(wh, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'runs'").fetchone()[0] == 0
    finally:
        con.close()


def test_results_survive_a_rebuild_through_carry_over(wh, tmp_path):
    run_dir = fake_run(wh)
    ingest_run(wh, run_dir)
    new = duckdb.connect(str(tmp_path / "new.duckdb"))
    try:
        assert carry_over(wh, new) == 1
        assert new.execute("SELECT count(*) FROM predictions").fetchone()[0] == 5
        assert new.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)
    finally:
        new.close()


def test_schema_migrations_is_created_by_its_sql_file():
    text = (SQL_DIR / "migrations" / "schema_migrations.sql").read_text()
    assert text.startswith("--")
    body = re.search(r"CREATE TABLE IF NOT EXISTS schema_migrations \((.*?)\n\);", text, re.S).group(1)
    lines = [ln.strip() for ln in body.strip().splitlines() if ln.strip()]
    assert len(lines) == 2 and all(re.search(r"--\s*\S", ln) for ln in lines)
    con = duckdb.connect()
    migrate(con)
    assert con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'schema_migrations' "
                       "ORDER BY column_index").fetchall() == [("name",), ("applied_at",)]


def test_stored_is_read_from_the_warehouse_not_from_markers(wh):
    from gensynth.results.ingest import storage_state, stored_runs

    run_dir = fake_run(wh)
    assert ingest_run(wh, run_dir).state == "ingested"

    def state():
        con = connect(wh, read_only=True)
        try:
            return storage_state(run_dir, stored_runs(con))
        finally:
            con.close()

    assert state() == "stored"
    con = connect(wh)
    con.execute("UPDATE runs SET results_id = NULL")  # a row ingested before migration 0003: counts decide
    con.close()
    assert state() == "stored"
    con = connect(wh)
    con.execute("DELETE FROM predictions WHERE program_id = 0")  # the warehouse lost a row the run has
    con.close()
    assert state() == "other version stored" and not is_pending(run_dir)  # the marker cannot see it
    assert [o.state for o in sync(wh)] == ["ingested"] and state() == "stored"
    assert counts(wh, run_dir.name) == (1, 2, 5)
    con = connect(wh)
    con.execute("DELETE FROM runs")
    con.close()
    assert state() == "not stored"


def test_every_migration_file_documents_itself():
    for m in MIGRATIONS[1:]:
        text = (SQL_DIR / m.sql_file).read_text()
        assert text.startswith(f"-- Migration {m.name}:"), m.name
    text = (SQL_DIR / "migrations" / "0004_evaluations.sql").read_text()
    body = re.search(r"CREATE TABLE IF NOT EXISTS evaluations \((.*?)\n\);", text, re.S).group(1)
    for ln in [ln.strip() for ln in body.strip().splitlines() if ln.strip() and not ln.strip().startswith("PRIMARY")]:
        assert re.search(r"--\s*\S", ln), f"evaluations: column without a comment: {ln}"


def test_a_killed_attempt_counts_to_its_last_write(tmp_path):
    import json
    import os

    from gensynth.results.rundirs import account_killed_attempt

    run_dir = tmp_path / "run"
    (run_dir / "logs" / "attempt-2").mkdir(parents=True)
    (run_dir / "checkpoints").mkdir()
    t0 = time.time() - 1000
    state = {"status": "running", "wall_time_s": 40.0,
             "attempts": [{"started_at": dt.datetime.fromtimestamp(t0 - 500, dt.timezone.utc).isoformat(), "seconds": 40.0,
                           "ended": "failed"},
                          {"started_at": dt.datetime.fromtimestamp(t0, dt.timezone.utc).isoformat()}]}
    log, ckpt, old = run_dir / "logs" / "attempt-2" / "metrics.csv", run_dir / "checkpoints" / "last.ckpt", \
        run_dir / "checkpoints" / "old.ckpt"
    for path, at in ((log, t0 + 30), (ckpt, t0 + 55), (old, t0 - 100)):  # old.ckpt: written by the earlier attempt
        path.write_text("x")
        os.utime(path, (at, at))
    assert account_killed_attempt(run_dir, state) == pytest.approx(55, abs=1e-3)
    assert state["wall_time_s"] == pytest.approx(95, abs=1e-3) and state["attempts"][1]["ended"] == "killed"
    assert account_killed_attempt(run_dir, state) == 0.0  # closed once
    json.dumps(state)
    # A run whose last attempt ended normally (failed, then resumed) is left alone.
    assert account_killed_attempt(run_dir, {"status": "failed", "attempts": [{"started_at": "x"}]}) == 0.0


# ------------------------------------------- what sync and list say when the warehouse cannot be read

HOLD = ("import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('open', flush=True); sys.stdin.readline()")


def _gensynth(*args, env=None):
    import os

    exe = shutil.which("gensynth") or str(__import__("pathlib").Path(sys.executable).with_name("gensynth"))
    base = {k: v for k, v in os.environ.items() if k not in ("GENSYNTH_WAREHOUSE", "GENSYNTH_LOCK_TIMEOUT")}
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, env=base | {"COLUMNS": "200"} | (env or {}),
                          timeout=120)


class _Held:
    """Another process holding the warehouse open for writing (every other process is locked out)."""

    def __init__(self, path):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __enter__(self):
        assert self.proc.stdout.readline().strip() == "open"
        return self.proc

    def __exit__(self, *exc):
        self.proc.communicate("\n", timeout=30)


def test_sync_and_list_never_say_nothing_pending_when_the_warehouse_could_not_be_read(wh):
    run_dir = fake_run(wh)
    assert ingest_run(wh, run_dir).state == "ingested"
    with _Held(wh) as holder:  # a duckdb shell holding the file: nothing can be checked
        result = _gensynth("runs", "sync", "--timeout", 1, "-w", wh)
        said = " ".join((result.stdout + result.stderr).split())
        assert result.returncode == 1, said
        assert "Nothing pending" not in said and f"PID {holder.pid}" in said and "not checked" in said
        listed = _gensynth("runs", "list", "-w", wh, env={"GENSYNTH_LOCK_TIMEOUT": "1"})
        said = " ".join((listed.stdout + listed.stderr).split())
        assert listed.returncode == 1 and run_dir.name in said and "not checked" in said, said
        assert "│ yes" not in listed.stdout  # no claim that the run is stored
    missing = wh.parent / "nowhere.duckdb"
    for args in (("runs", "sync"), ("runs", "list")):
        result = _gensynth(*args, "-w", missing)
        assert result.returncode == 1 and "No warehouse at" in result.stderr and "Nothing pending" not in result.stdout
    # Runs of another universe are named as such, next to no "Nothing pending".
    fake_run(wh, run_id="20260101-000001-ffff", data_version="someotheruniverse")
    result = _gensynth("runs", "sync", "-w", wh)
    said = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0 and "Nothing pending" not in said and "another universe" in said, said
    assert "every run of this universe is in the warehouse" in said.lower()


def test_every_lock_wait_honours_gensynth_lock_timeout_and_says_what_it_waits_for(wh, monkeypatch):
    run_dir = fake_run(wh)
    monkeypatch.setenv("GENSYNTH_LOCK_TIMEOUT", "1")
    with _Held(wh) as holder:
        outcome = ingest_run(wh, run_dir)  # the default wait of ingestion: $GENSYNTH_LOCK_TIMEOUT
        assert outcome.state == "pending" and f"PID {holder.pid}" in outcome.message
        assert "for 1 s" in outcome.message and f"to store the results of run {run_dir.name}" in outcome.message
        for args in (("runs", "sync"), ("runs", "list")):
            result = _gensynth(*args, "-w", wh, env={"GENSYNTH_LOCK_TIMEOUT": "1"})
            said = " ".join((result.stdout + result.stderr).split())
            assert "(up to 1 s)" in said and "for 1 s" in said and "$GENSYNTH_LOCK_TIMEOUT" in said, (args, said)
            assert ("to read which runs it holds" if args[1] == "list" else "to ingest run results") in said, (args, said)
