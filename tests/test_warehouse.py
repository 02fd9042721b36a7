"""gensynth/warehouse.py and the CLI shell: the connection policy (locks), what `build`
refuses before any work (foreign, locked, immutable files), how failures are reported
(user errors vs gensynth's own bugs), shared flag validators and query limits.

Everything runs through the real `gensynth` command on real DuckDB files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

GENSYNTH = shutil.which("gensynth") or str(Path(sys.executable).with_name("gensynth"))


def gensynth(*args, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "GENSYNTH_WAREHOUSE"}
    return subprocess.run([GENSYNTH, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=base | (env or {}), timeout=timeout)


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def clean_error(result: subprocess.CompletedProcess, *parts: str, code: int = 1) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    message = result.stderr.strip().splitlines()[-1] if code == 1 else result.stderr.strip()
    assert "Traceback" not in result.stderr, result.stderr
    for part in parts:
        assert part in result.stderr, f"{part!r} not in {result.stderr!r}"
    return message


HOLDER = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
    print("holding", flush=True)
    sys.stdin.readline()   # hold the lock until told to let go
    con.close()
""")


@contextlib.contextmanager
def held(path: Path, read_only: bool = False):
    """Another process holding ``path`` open (a write lock unless ``read_only``) until the block ends."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), "ro" if read_only else "rw"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "holding"
        yield proc
    finally:
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.write("\n")
            proc.stdin.flush()
        proc.wait(timeout=30)


@pytest.fixture
def existing(warehouse_ops2, tmp_path) -> Path:
    path = tmp_path / "w.duckdb"
    shutil.copy(warehouse_ops2, path)
    return path


# ------------------------------------------------------------------- build refuses


def test_build_refuses_a_foreign_duckdb_file_unless_forced(tmp_path):
    path = tmp_path / "mine.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE experiments (a INTEGER); INSERT INTO experiments VALUES (1); CREATE VIEW summary AS SELECT 1")
    con.close()
    digest = file_hash(path)
    result = gensynth("build", "--skip-embed", "--max-ops", 1, "--warehouse", path, cwd=tmp_path)
    clean_error(result, "not a gensynth warehouse", "experiments", "summary", "--force")
    assert file_hash(path) == digest
    result = gensynth("build", "--skip-embed", "--max-ops", 1, "--warehouse", path, "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM programs").fetchone()[0] == 105


@pytest.mark.parametrize("meta", ["CREATE TABLE meta (key VARCHAR, value VARCHAR); INSERT INTO meta VALUES ('owner', 'lab')",
                                  "CREATE TABLE meta (id INTEGER, note VARCHAR); INSERT INTO meta VALUES (1, 'mine')"])
def test_build_refuses_a_duckdb_file_whose_meta_is_not_gensynths_unless_forced(tmp_path, meta):
    path = tmp_path / "mine.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(meta)
        con.execute("CREATE TABLE experiments (a INTEGER)")
    digest = file_hash(path)
    result = gensynth("build", "--skip-embed", "--max-ops", 1, "--warehouse", path, cwd=tmp_path)
    message = clean_error(result, "not a gensynth warehouse", "`meta` table, but not gensynth's", "experiments", "--force")
    assert "rebuild it" not in message and "schema version" not in message
    assert file_hash(path) == digest
    shown = gensynth("split", "list", "--warehouse", path, cwd=tmp_path)
    clean_error(shown, "not a gensynth warehouse", "`meta` table, but not gensynth's")
    result = gensynth("build", "--skip-embed", "--max-ops", 1, "--warehouse", path, "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_build_over_a_locked_warehouse_says_locked_and_by_whom(existing, tmp_path):
    digest = file_hash(existing)
    with held(existing) as holder:
        result = gensynth("build", "--skip-embed", "--max-ops", 0, "--warehouse", existing, cwd=tmp_path,
                          env={"GENSYNTH_LOCK_TIMEOUT": "1"})
        message = clean_error(result, "is locked by", f"PID {holder.pid}")
    assert "not a DuckDB file" not in message and "Move it away" not in message
    assert "waiting for the lock" in result.stderr
    assert file_hash(existing) == digest


def test_build_refuses_an_immutable_warehouse_before_any_work(existing, tmp_path):
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(existing)]).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        digest = file_hash(existing)
        result = gensynth("build", "--max-ops", 3, "--warehouse", existing, cwd=tmp_path)
        clean_error(result, "read-only or immutable", "chattr -i")
        assert "enumerate" not in result.stderr  # refused before the first stage
        assert file_hash(existing) == digest
    finally:
        subprocess.run(["chattr", "-i", str(existing)])


# ---------------------------------------------------------------- the lock policy


def test_split_list_waits_visibly_for_a_writer_then_works(existing, tmp_path):
    with held(existing) as holder:
        reader = subprocess.Popen([GENSYNTH, "split", "list", "--warehouse", str(existing)], cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "COLUMNS": "200", "GENSYNTH_LOCK_TIMEOUT": "120"})
        line = reader.stderr.readline()  # it says it is waiting, and for whom, while the writer holds on
        assert "waiting for the lock" in line and f"PID {holder.pid}" in line, line
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    assert "No splits registered" in out or "splits" in out


def test_readers_work_beside_another_reader(existing, tmp_path):
    with held(existing, read_only=True):
        result = gensynth("split", "list", "--warehouse", existing, cwd=tmp_path, env={"GENSYNTH_LOCK_TIMEOUT": "0"})
    assert result.returncode == 0, result.stderr
    assert "waiting" not in result.stderr


def test_a_writer_gives_up_naming_the_lock_holder(existing, tmp_path):
    with held(existing) as holder:
        result = gensynth("beyond", "--tasks", 5, "--warehouse", existing, cwd=tmp_path, env={"GENSYNTH_LOCK_TIMEOUT": "1"})
    clean_error(result, "stayed locked by", f"PID {holder.pid}", "GENSYNTH_LOCK_TIMEOUT")


def test_connect_retrying_is_one_policy_re_exported_by_ingestion():
    from gensynth import warehouse
    from gensynth.results import ingest

    assert ingest.connect_retrying is warehouse.connect_retrying
    assert ingest.WarehouseBusy is warehouse.WarehouseBusy


def test_catalog_helpers_see_the_main_schema_only(tmp_path):
    """relation_exists / relation_names / relation_columns / has_meta: the one way stages ask
    the catalog. Tables and views of the main schema of the connection's own file (or of an
    attached one); never DuckDB's internal views, temporary views or another database's."""
    from gensynth.warehouse import has_meta, relation_columns, relation_exists, relation_names

    with duckdb.connect(str(tmp_path / "other.duckdb")) as other:
        other.execute("CREATE TABLE tasks (task_id INTEGER)")
        other.execute("CREATE TABLE meta (key VARCHAR, value VARCHAR)")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("CREATE TABLE runs (run_id VARCHAR NOT NULL, size VARCHAR)")
        con.execute("CREATE VIEW split_a AS SELECT 1 AS program_id, 'train' AS role")
        con.execute("CREATE TEMP VIEW import_runs AS SELECT 'r' AS run_id")
        con.execute(f"ATTACH '{tmp_path / 'other.duckdb'}' AS old (READ_ONLY)")
        assert relation_names(con) == ["runs", "split_a"]
        assert relation_names(con, kind="table") == ["runs"] and relation_names(con, kind="view") == ["split_a"]
        assert relation_exists(con, "runs") and relation_exists(con, "runs", kind="table")
        assert not relation_exists(con, "runs", kind="view") and relation_exists(con, "split_a", kind="view")
        assert not relation_exists(con, "split_a", kind="table")
        assert not relation_exists(con, "duckdb_tables") and not relation_exists(con, "import_runs")
        assert not relation_exists(con, "tasks") and relation_exists(con, "tasks", database="old", kind="table")
        assert not has_meta(con) and has_meta(con, "old")
        assert relation_columns(con, "runs") == [("run_id", "VARCHAR", False), ("size", "VARCHAR", True)]
        assert [c for c, _, _ in relation_columns(con, "import_runs")] == ["run_id"]  # resolved as a query would
        with pytest.raises(ValueError):
            relation_names(con, kind="tables")


# ------------------------------------------------------------ how failures read


def test_gensynths_own_sql_failing_is_reported_as_a_bug(existing, tmp_path):
    with duckdb.connect(str(existing)) as con:  # a damaged warehouse: gensynth's own query cannot run
        con.execute("DROP TABLE functions")
    result = gensynth("beyond", "--tasks", 5, "--warehouse", existing, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("Internal error: duckdb.CatalogException")
    assert "bug in gensynth" in result.stderr and "--debug" in result.stderr and "Traceback" not in result.stderr
    debug = gensynth("--debug", "beyond", "--tasks", 5, "--warehouse", existing, cwd=tmp_path)
    assert "Traceback" in debug.stderr


@pytest.mark.parametrize("args, parts", [
    (["build", "--seed", "99999999999999999999"], ["--seed must be >= 0 and <= 4,294,967,295", "99,999,999,999,999,999,999"]),
    (["embed", "--seed", "-1"], ["--seed must be >= 0"]),
    (["beyond", "--seed", "99999999999999999999"], ["--seed must be"]),
])
def test_out_of_range_flags_are_refused_in_one_line(existing, tmp_path, args, parts):
    digest = file_hash(existing)
    result = gensynth(*args, "--warehouse", existing, cwd=tmp_path)
    assert clean_error(result, *parts).startswith("Error: ")
    assert file_hash(existing) == digest


def test_finite_float_refuses_nan_and_infinity():
    import typer
    from typer.testing import CliRunner

    from gensynth.cli.options import finite_float
    from gensynth.errors import GensynthError

    app = typer.Typer()

    @app.command()
    def cmd(lr: float = typer.Option(1e-3, "--lr", callback=finite_float(0, low_open=True))) -> None:
        print(f"lr={lr}")

    runner = CliRunner()
    assert "lr=0.5" in runner.invoke(app, ["--lr", "0.5"]).output
    for bad, text in (("nan", "--lr must be a finite number, got nan"), ("inf", "finite"), ("-1", "--lr must be > 0")):
        result = runner.invoke(app, ["--lr", bad])
        assert isinstance(result.exception, GensynthError) and text in str(result.exception), (bad, result.exception)


def test_report_out_must_be_a_writable_directory(existing, tmp_path):
    regular = tmp_path / "notes.txt"
    regular.write_text("keep me")
    result = gensynth("report", "--out", regular, "--warehouse", existing, cwd=tmp_path)
    clean_error(result, "--out", "is a file, not a directory")
    assert regular.read_text() == "keep me"
    if os.path.isdir("/proc/sys") and not os.access("/proc/sys", os.W_OK) or os.statvfs("/proc/sys").f_flag & os.ST_RDONLY:
        result = gensynth("report", "--out", "/proc/sys/gensynth_report", "--warehouse", existing, cwd=tmp_path)
        clean_error(result, "--out", "is not writable")


# ---------------------------------------------------------------- runaway work


def test_beyond_refuses_a_huge_count_at_once(existing, tmp_path):
    from gensynth.limits import MAX_BEYOND_TASKS

    digest = file_hash(existing)
    result = gensynth("beyond", "--tasks", 1_000_000_000, "--warehouse", existing, cwd=tmp_path, timeout=60)
    clean_error(result, "1,000,000,000", f"{MAX_BEYOND_TASKS:,}", "--tasks")
    assert file_hash(existing) == digest


def test_the_beyond_cap_is_a_public_check():
    from gensynth.errors import GensynthError
    from gensynth.limits import MAX_BEYOND_TASKS
    from gensynth.synthesis.tasks import check_task_count

    check_task_count(MAX_BEYOND_TASKS)
    with pytest.raises(GensynthError, match=f"{MAX_BEYOND_TASKS + 1:,}"):
        check_task_count(MAX_BEYOND_TASKS + 1)
    with pytest.raises(GensynthError, match=">= 1"):
        check_task_count(0)
