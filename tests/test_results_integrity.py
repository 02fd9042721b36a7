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
