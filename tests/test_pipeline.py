"""Tests for gensynth.pipeline and gensynth.warehouse: the stage order, meta, idempotent rebuilds, atomic
replacement (interrupted and killed builds), unary grammars, and the stock DuckDB shell.

Bad input through the real CLI is tested in tests/test_cli_build.py.
"""

import hashlib
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import duckdb
import pytest

from gensynth import pipeline
from gensynth.pipeline import build_warehouse
from gensynth.universe.programs import count_programs
from gensynth.universe.grammar import default_grammar_path, load_grammar
from gensynth.warehouse import SCHEMA_VERSION, open_warehouse, read_meta

GRAMMARS = Path(__file__).parent / "grammars"
DUCKDB_CLI = shutil.which("duckdb") or str(Path(sys.executable).with_name("duckdb"))
DERIVED_TABLES = ["programs", "functions", "symbols", "grid"]


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def leftovers(directory: Path) -> list[str]:
    """Temporary build files (and WALs) left in a directory."""
    return sorted(p.name for p in Path(directory).iterdir() if ".building-" in p.name or p.name.endswith(".wal"))


def test_meta_records_the_build(warehouse_ops3):
    con = open_warehouse(warehouse_ops3)
    meta = read_meta(con)
    con.close()
    g = load_grammar()
    assert meta["schema_version"] == str(SCHEMA_VERSION)
    assert meta["grammar_hash"] == g.hash and len(g.hash) == 64
    assert json.loads(meta["grammar"]) == json.loads(g.to_json())
    assert meta["grammar_source"] == default_grammar_path().read_text()
    grid = json.loads(meta["grid"])
    axis = [float(Fraction(-2) + Fraction(4 * i, 7)) for i in range(8)]  # exact linspace, correctly rounded
    assert grid == [[x, y] for x in axis for y in axis]
    assert meta["max_ops"] == "3" and meta["n_programs"] == "204105" and meta["n_functions"] == "10232"
    assert json.loads(meta["variables"]) == ["x", "y"]
    for stage in ["enumerate", "evaluate", "store_programs", "store_functions"]:
        assert float(meta[f"timing.{stage}_s"]) >= 0
    for key in ["code_version", "built_at", "data_version", "overflow_cells"]:
        assert meta[key]


def test_symbols_and_grid_tables(warehouse_ops3):
    con = duckdb.connect(str(warehouse_ops3), read_only=True)
    symbols = con.execute("SELECT symbol_id, token, kind, arity, numpy, value FROM symbols ORDER BY symbol_id").fetchall()
    grid = con.execute("SELECT point_id, coords, coords_exact FROM grid ORDER BY point_id").fetchall()
    con.close()
    assert [s[1] for s in symbols] == ["x", "y", "1", "2", "3", "+", "-", "*", "/"]
    assert symbols[2] == (2, "1", "constant", 0, None, "1") and symbols[8] == (8, "/", "operator", 2, "divide", None)
    assert len(grid) == 64 and grid[9][2] == ["-10/7", "-10/7"]
    assert all(float(Fraction(e)) == c for _, coords, exact in grid for c, e in zip(coords, exact))


def test_rebuild_is_idempotent(warehouse_ops3, tmp_path):
    again = tmp_path / "again.duckdb"
    build_warehouse(load_grammar(), 3, again, quiet=True)
    con = duckdb.connect()
    con.execute(f"ATTACH '{warehouse_ops3}' AS a (READ_ONLY); ATTACH '{again}' AS b (READ_ONLY)")
    for table in DERIVED_TABLES:
        na, nb = (con.execute(f"SELECT count(*) FROM {db}.{table}").fetchone()[0] for db in "ab")
        assert na == nb > 0, table
        for x, y in [("a", "b"), ("b", "a")]:
            # Outputs hold NaN; DuckDB's set operations treat NaN as equal to NaN.
            diff = con.execute(f"SELECT count(*) FROM (SELECT * FROM {x}.{table} EXCEPT SELECT * FROM {y}.{table})").fetchone()[0]
            assert diff == 0, f"{table}: {diff} rows of {x} not in {y}"
    meta_diff = con.execute("""
        SELECT count(*) FROM (SELECT * FROM a.meta EXCEPT SELECT * FROM b.meta)
        WHERE key <> 'built_at' AND key NOT LIKE 'timing.%'""").fetchone()[0]
    assert meta_diff == 0
    con.close()


def test_rebuild_in_place_replaces_the_warehouse(tmp_path):
    path = tmp_path / "w.duckdb"
    build_warehouse(load_grammar(), 1, path, quiet=True)
    build_warehouse(load_grammar(), 2, path, quiet=True)
    con = open_warehouse(path)
    assert con.execute("SELECT count(*) FROM programs").fetchone()[0] == 4_105
    assert read_meta(con)["max_ops"] == "2"
    con.close()
    assert leftovers(tmp_path) == []


def after_the_last_stage(monkeypatch, stage) -> None:
    """Run ``stage(build)`` inside the atomic build, after every real stage (the test hook)."""
    monkeypatch.setattr(pipeline, "BUILD_STAGES", pipeline.BUILD_STAGES + (stage,))


def test_build_runs_the_stages_in_pipeline_order():
    names = [s.__name__ for s in pipeline.BUILD_STAGES]
    assert names == ["universe_stage", "manifold_stage", "split_stage", "tasks_stage", "views_stage",
                     "carry_over_results_stage", "carry_over_splits_stage", "carry_over_tasks_stage"]
    assert "after_store" not in inspect.signature(build_warehouse).parameters


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_interrupted_build_leaves_previous_warehouse(warehouse_ops2, tmp_path, exc, monkeypatch):
    path = tmp_path / "w.duckdb"
    shutil.copy(warehouse_ops2, path)
    before = file_hash(path)
    seen = []

    def interrupt(build):
        seen.append(build.con.execute("SELECT count(*) FROM programs").fetchone()[0])
        raise exc("interrupted")

    after_the_last_stage(monkeypatch, interrupt)
    with pytest.raises(exc):
        build_warehouse(load_grammar(), 3, path, quiet=True)
    assert seen == [204_105]  # the interruption came after a complete store
    assert file_hash(path) == before
    assert leftovers(tmp_path) == []
    con = open_warehouse(path)
    assert con.execute("SELECT count(*) FROM programs").fetchone()[0] == 4_105
    con.close()


HANG_AFTER_STORE = """
import sys, time
from pathlib import Path
from gensynth import pipeline
from gensynth.universe.grammar import load_grammar

def hang(build):
    print("stored", flush=True)
    time.sleep(600)

pipeline.BUILD_STAGES = pipeline.BUILD_STAGES + (hang,)  # after every real stage
pipeline.build_warehouse(load_grammar(), int(sys.argv[2]), Path(sys.argv[1]), quiet=True)
"""


def test_killed_build_leaves_previous_warehouse(warehouse_ops2, tmp_path):
    # SIGKILL at the most dangerous moment: the new file is complete but not swapped in.
    path = tmp_path / "w.duckdb"
    shutil.copy(warehouse_ops2, path)
    before = file_hash(path)
    proc = subprocess.Popen([sys.executable, "-c", HANG_AFTER_STORE, str(path), "3"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "stored"
        assert any(".building-" in name for name in leftovers(tmp_path))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert file_hash(path) == before
    con = open_warehouse(path)
    assert con.execute("SELECT count(*) FROM programs").fetchone()[0] == 4_105
    con.close()
    # The next build cleans the dead build's leftovers.
    build_warehouse(load_grammar(), 1, path, quiet=True)
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_killed_four_op_build_leaves_previous_warehouse(warehouse_ops2, tmp_path):
    """The real thing: `gensynth build --max-ops 4` killed mid-way (about 1.5 s into the build)."""
    path = tmp_path / "w.duckdb"
    shutil.copy(warehouse_ops2, path)
    before = file_hash(path)
    gensynth = shutil.which("gensynth") or str(Path(sys.executable).with_name("gensynth"))
    proc = subprocess.Popen([gensynth, "build", "--max-ops", "4", "--warehouse", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not any(".building-" in n for n in leftovers(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the build finished before it could be killed"
        time.sleep(1.5)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert file_hash(path) == before
    con = open_warehouse(path)
    assert con.execute("SELECT count(*) FROM programs").fetchone()[0] == 4_105
    con.close()


def test_unary_grammar_builds(tmp_path):
    g = load_grammar(GRAMMARS / "unary.toml")
    path = tmp_path / "unary.duckdb"
    summary = build_warehouse(g, 3, path, quiet=True)
    counts = count_programs(g, 3)
    assert summary.programs == sum(counts) == 6_219
    con = open_warehouse(path)
    assert con.execute("SELECT n_ops, count(*) FROM programs GROUP BY ALL ORDER BY 1").fetchall() == list(enumerate(counts))
    unary_roots = con.execute("""
        SELECT count(*) FROM programs JOIN symbols ON symbol_id = root_symbol
        WHERE arity = 1 AND right_id IS NULL AND left_id IS NOT NULL""").fetchone()[0]
    assert unary_roots == 2 * (counts[0] + counts[1] + counts[2])  # neg(p), sqrt(p) for every smaller p
    assert read_meta(con)["grammar_hash"] == g.hash
    con.close()


def test_warehouse_opens_in_stock_duckdb_shell(warehouse_ops3):
    query = "SELECT * FROM programs JOIN functions USING (function_id) LIMIT 5"
    out = subprocess.run([DUCKDB_CLI, "-readonly", "-csv", str(warehouse_ops3), "-c", query],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 6 and lines[0].startswith("program_id,prefix,infix,n_ops,depth,function_id,")
    # Undefined outputs are NaN in the shell too, and meta reads back.
    query = ("SELECT outputs[1] FROM programs JOIN functions USING (function_id) WHERE prefix = '/ 1 - x x';"
             "SELECT value FROM meta WHERE key = 'schema_version'")
    out = subprocess.run([DUCKDB_CLI, "-readonly", "-csv", "-noheader", str(warehouse_ops3), "-c", query],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["nan", str(SCHEMA_VERSION)]
