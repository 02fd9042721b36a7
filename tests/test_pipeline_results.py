"""A rebuild replaces derived tables but keeps the irreplaceable results tables."""

from pathlib import Path

import duckdb

from gensynth.pipeline import build_warehouse
from gensynth.manifolds.embed import EmbedConfig
from gensynth.universe.grammar import load_grammar
from gensynth.results.ingest import migrate


def test_rebuild_carries_results_over(tmp_path):
    path = tmp_path / "w.duckdb"
    build_warehouse(load_grammar(), 1, path, quiet=True, embed=EmbedConfig())
    with duckdb.connect(str(path)) as con:
        migrate(con)
        con.execute("""INSERT INTO runs (run_id, view, role_sizes, config, size, n_params, code_version, data_version,
                       status, started_at, ingested_at)
                       VALUES ('r1', 'split_x', '{}', '{}', 'nano', 1, 'v', 'd', 'finished', now(), now())""")
        con.execute("INSERT INTO metrics VALUES ('r1', 0, 'val/loss', 1.5)")
    build_warehouse(load_grammar(), 1, path, quiet=True, embed=EmbedConfig())
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT run_id, status FROM runs").fetchall() == [("r1", "finished")]
        assert con.execute("SELECT value FROM metrics").fetchall() == [(1.5,)]
        assert con.execute("SELECT value FROM meta WHERE key = 'results_carried_runs'").fetchone()[0] == "1"


# ------------------------------------------------- a warehouse of an older gensynth

TINY = Path(__file__).parent / "grammars" / "tiny.toml"
USER_SPLIT = """-- mine: a user split written on the older warehouse.
-- kind: density
SELECT program_id,  -- a finite program
       CASE WHEN program_id % 5 = 0 THEN 'test_small' ELSE 'train' END AS role  -- train or test_small
FROM manifold WHERE sem IS NOT NULL
"""


def make_version_1_warehouse(path: Path) -> None:
    """A warehouse as gensynth 464b3ba (schema version 1) left it: a user split, one run with
    metrics and predictions, and only the results migrations 0001-0002 (no evaluations table,
    no runs.results_id / attempts, no predictions.eval_id, no splits.status)."""
    from gensynth.splits import add_split

    build_warehouse(load_grammar(TINY), 2, path, quiet=True, embed=EmbedConfig(k_syn=3, k_sem=4))
    (path.parent / "mine.sql").write_text(USER_SPLIT)
    add_split(path, path.parent / "mine.sql")
    with duckdb.connect(str(path)) as con:
        migrate(con)
        con.execute("""INSERT INTO runs (run_id, view, role_sizes, config, size, n_params, code_version, data_version,
                       status, started_at, ingested_at)
                       VALUES ('r_old', 'split_mine', '{}', '{}', 'nano', 1, '0.1.0+464b3ba', 'olduniverse0001',
                               'finished', now(), now())""")
        con.execute("INSERT INTO metrics VALUES ('r_old', 5, 'val/loss', 2.5)")
        con.execute("""INSERT INTO predictions (run_id, view, role, program_id, decoding, sample_index, predicted,
                       parsed, passed, exact_match, offgrid_passed)
                       VALUES ('r_old', 'split_mine', 'test_small', 0, 'greedy', 0, 'x', true, true, true, true)""")
        con.execute("DROP TABLE evaluations")
        for table, column in (("runs", "results_id"), ("runs", "attempts"), ("runs", "killed_attempts"),
                              ("predictions", "eval_id"), ("predictions", "train_program"),
                              ("predictions", "train_function"), ("splits", "status"), ("splits", "stale_reason")):
            con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        con.execute("DELETE FROM schema_migrations WHERE name > '0002'")
        con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        con.execute("UPDATE meta SET value = 'olduniverse0001' WHERE key = 'data_version'")


def test_a_warehouse_of_an_older_gensynth_is_rebuilt_keeping_its_results_and_user_splits(tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    from gensynth.results.migrations import MIGRATIONS

    path = tmp_path / "w.duckdb"
    make_version_1_warehouse(path)
    exe = shutil.which("gensynth") or str(Path(sys.executable).with_name("gensynth"))
    env = {k: v for k, v in os.environ.items() if k != "GENSYNTH_WAREHOUSE"} | {"COLUMNS": "200"}

    def gensynth(*args):
        return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)

    # Other commands refuse it, saying how to rebuild it (the same grammar and max-ops) and what is kept.
    listed = gensynth("split", "list", "--warehouse", path)
    assert listed.returncode == 1 and "schema version 1" in listed.stderr, listed.stderr
    assert "gensynth build" in listed.stderr and "--max-ops 2" in listed.stderr and "carried over" in listed.stderr

    built = gensynth("build", "--grammar", TINY, "--max-ops", 2, "--warehouse", path)
    assert built.returncode == 0, built.stderr
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
        assert {r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()} == {m.name for m in MIGRATIONS}
        assert con.execute("SELECT run_id, data_version, results_id FROM runs").fetchall() == [("r_old", "olduniverse0001", None)]
        assert con.execute("SELECT value FROM metrics").fetchall() == [(2.5,)]
        assert con.execute("SELECT program_id, eval_id FROM predictions").fetchall() == [(0, None)]
        assert con.execute("SELECT status, stale_reason FROM splits WHERE name = 'mine'").fetchall() == [("ok", "")]
        assert con.execute("SELECT count(*) FROM split_mine").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM finished_runs").fetchone()[0] == 0  # another universe's run
    runs = gensynth("runs", "list", "--all", "--warehouse", path)
    assert runs.returncode == 0 and "r_old" in runs.stdout and "ANOTHER universe" in runs.stdout, runs.stdout
