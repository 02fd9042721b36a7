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
             ("arch", "VARCHAR")],  # + migration 0003_runs_arch
    "metrics": [("run_id", "VARCHAR"), ("step", "INTEGER"), ("name", "VARCHAR"), ("value", "DOUBLE")],
    "predictions": [("run_id", "VARCHAR"), ("view", "VARCHAR"), ("role", "VARCHAR"), ("program_id", "INTEGER"),
                    ("decoding", "VARCHAR"), ("sample_index", "INTEGER"), ("predicted", "VARCHAR"),
                    ("parsed", "BOOLEAN"), ("passed", "BOOLEAN"), ("exact_match", "BOOLEAN"),
                    ("offgrid_passed", "BOOLEAN"), ("logprob", "DOUBLE"),
                    ("candidates", "BIGINT"), ("search_seconds", "DOUBLE")],  # + migration 0002_search_budget
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
