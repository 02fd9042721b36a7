"""A rebuild replaces derived tables but keeps the irreplaceable results tables."""

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
