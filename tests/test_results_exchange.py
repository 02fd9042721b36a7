"""`gensynth runs export` / `gensynth runs import` (gensynth/results/exchange.py) on real runs.

One module fixture builds the tiny grammar's 3-operator universe, keeps a copy of it
before any run (the importing warehouse: same universe, no runs), trains one nano run
for 10 steps on split_support_syntactic, evaluates it a second time (two evaluations)
and adds a search run through `gensynth solve`. Export -> import must bring every row of
runs, metrics, evaluations and predictions across (compared as row sets in SQL), the
analysis views must then agree, and bad imports must leave the warehouse as it was.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from gensynth.results.migrations import RESULT_TABLES

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "grammars" / "tiny.toml"
VIEW = "split_support_syntactic"


def _build(path: Path, max_ops: int) -> Path:
    from gensynth.manifolds.embed import EmbedConfig
    from gensynth.pipeline import build_warehouse
    from gensynth.universe.grammar import load_grammar

    build_warehouse(load_grammar(TINY), max_ops, path, quiet=True, embed=EmbedConfig(k_syn=4, k_sem=4))
    return path


@dataclass
class Outcome:
    exit_code: int
    output: str  # what was printed, then the one-paragraph error `gensynth` prints for a GensynthError


def cli(*args) -> Outcome:
    from gensynth.cli.main import app
    from gensynth.errors import GensynthError

    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, (GensynthError, SystemExit)):
        raise result.exception  # a bug, not a refusal
    error = f"Error: {result.exception}" if isinstance(result.exception, GensynthError) else ""
    return Outcome(1 if error else result.exit_code, result.output + error)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(warehouse with runs, empty warehouse of the same universe, warehouse of another universe)."""
    import torch

    from gensynth.learning.predictions import EvalSettings
    from gensynth.learning.train import DataSettings, ModelSpec, RunConfig, TrainSettings, score_run, train

    wh = _build(tmp_path_factory.mktemp("exchange") / "gensynth.duckdb", 3)
    empty = tmp_path_factory.mktemp("exchange_empty") / "gensynth.duckdb"
    shutil.copy(wh, empty)
    other = _build(tmp_path_factory.mktemp("exchange_other") / "gensynth.duckdb", 2)
    torch.set_num_threads(1)
    s = train(wh, RunConfig(data=DataSettings(view=VIEW, batch_size=32), model=ModelSpec(size="nano"),
                            training=TrainSettings(max_steps=10, checkpoint_every=10)), quiet=True)
    assert s.status == "finished" and s.ingest == "ingested"
    score_run(wh, s.run_id, settings=EvalSettings(limit=10), quiet=True)  # a second evaluation
    out = cli("solve", "-m", "enumerative", "--view", VIEW, "--role", "test_ood", "--limit", "5", "--budget-seconds", "2",
              "-w", wh)
    assert out.exit_code == 0, out.output
    return wh, empty, other


def q(path: Path, sql: str, params=None):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def counts(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] if t in have else None for t in RESULT_TABLES}
    finally:
        con.close()


def same_rows(a: Path, b: Path, relation: str, order: str = "") -> tuple[int, int, int]:
    """(rows in a, rows of a missing from b, rows of b missing from a), multisets compared in SQL."""
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
        con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
        n = con.execute(f"SELECT count(*) FROM a.{relation}").fetchone()[0]
        ab = con.execute(f"SELECT count(*) FROM (FROM a.{relation} EXCEPT ALL FROM b.{relation})").fetchone()[0]
        ba = con.execute(f"SELECT count(*) FROM (FROM b.{relation} EXCEPT ALL FROM a.{relation})").fetchone()[0]
        return n, ab, ba
    finally:
        con.close()


@pytest.fixture
def exported(lab, tmp_path):
    wh, empty, other = lab
    out = tmp_path / "export"
    result = cli("runs", "export", "--out", out, "-w", wh)
    assert result.exit_code == 0, result.output
    dst = tmp_path / "dst.duckdb"
    shutil.copy(empty, dst)
    return wh, out, dst, other


def test_export_writes_parquet_a_readme_and_the_analysis_views(exported):
    wh, out, _, _ = exported
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data_version"] == q(wh, "SELECT value FROM meta WHERE key = 'data_version'")[0][0]
    readme = (out / "README.md").read_text()
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet"))
    assert {"runs.parquet", "metrics.parquet", "evaluations.parquet", "predictions.parquet",
            "analysis/pass_at_k.parquet", "analysis/scaling.parquet", "analysis/proximity_summary.parquet"} <= set(files)
    for f in files + ["manifest.json"]:  # one line per file
        assert sum(f"`{f}`" in line for line in readme.splitlines()) == 1, f
    con = duckdb.connect()
    con.execute(f"ATTACH '{wh}' AS wh (READ_ONLY)")
    try:  # plain Parquet: the rows are the warehouse's, the predictions carry their target program
        assert con.execute(f"SELECT count(*) FROM '{out}/runs.parquet'").fetchone()[0] == 2
        assert con.execute(f"SELECT count(*) FROM '{out}/evaluations.parquet'").fetchone()[0] == 2  # train + eval
        bad = con.execute(f"""SELECT count(*) FROM '{out}/predictions.parquet' AS p
                              JOIN wh.programs AS g USING (program_id)
                              WHERE p.target_prefix <> g.prefix OR p.target_syn IS NULL OR len(p.target_syn) <> 4""").fetchone()[0]
        assert bad == 0
        pass_at_k = con.execute(f"SELECT count(*) FROM '{out}/analysis/pass_at_k.parquet'").fetchone()[0]
    finally:
        con.close()
    assert pass_at_k == q(wh, "SELECT count(*) FROM pass_at_k")[0][0] > 0


def test_export_then_import_round_trips_every_row(exported):
    wh, out, dst, _ = exported
    assert counts(dst) == {t: 0 for t in RESULT_TABLES}  # a warehouse that never had a run
    result = cli("runs", "import", out, "-w", dst)
    assert result.exit_code == 0, result.output
    for t in RESULT_TABLES:
        n, missing, extra = same_rows(wh, dst, t)
        assert n > 0 and missing == 0 and extra == 0, (t, n, missing, extra)
    for view in ("pass_at_k", "ood_drop", "method_comparison", "scaling"):  # the analysis agrees
        n, missing, extra = same_rows(wh, dst, view)
        assert missing == 0 and extra == 0, (view, n, missing, extra)


def test_import_into_another_universe_is_refused_and_changes_nothing(exported):
    _, out, _, other = exported
    dst = other.parent / "copy.duckdb"
    shutil.copy(other, dst)
    before = counts(dst)
    result = cli("runs", "import", out, "-w", dst)
    assert result.exit_code == 1
    assert "another universe" in result.output and "max ops 3" in result.output and "max ops 2" in result.output
    assert counts(dst) == before


def test_import_of_runs_already_here_needs_replace(exported):
    wh, out, dst, _ = exported
    assert cli("runs", "import", out, "-w", dst).exit_code == 0
    before = counts(dst)
    result = cli("runs", "import", out, "-w", dst)
    assert result.exit_code == 1 and "already holds 2 of the 2 run(s)" in result.output and "--replace" in result.output
    assert counts(dst) == before
    result = cli("runs", "import", out, "--replace", "-w", dst)
    assert result.exit_code == 0, result.output
    for t in RESULT_TABLES:  # replaced, not duplicated
        n, missing, extra = same_rows(wh, dst, t)
        assert missing == 0 and extra == 0, (t, n, missing, extra)


def test_a_damaged_export_leaves_the_warehouse_as_it_was(exported, tmp_path):
    wh, out, dst, _ = exported
    before = counts(dst)
    cases = {}
    bad = tmp_path / "cut"  # a file cut short
    shutil.copytree(out, bad)
    data = (bad / "predictions.parquet").read_bytes()
    (bad / "predictions.parquet").write_bytes(data[: len(data) // 2])
    cases["cut"] = (bad, "cannot be read as Parquet")
    bad = tmp_path / "orphans"  # predictions of a run that is not in runs.parquet (manifest kept consistent)
    shutil.copytree(out, bad)
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM '{out}/runs.parquet' ORDER BY run_id LIMIT 1) TO '{bad}/runs.parquet' (FORMAT parquet)")
    con.close()
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["rows"]["runs"] = 1
    (bad / "manifest.json").write_text(json.dumps(manifest))
    cases["orphans"] = (bad, "of runs not in runs.parquet")
    bad = tmp_path / "edited"  # rows added after export
    shutil.copytree(out, bad)
    con = duckdb.connect()
    con.execute(f"COPY (FROM '{out}/metrics.parquet' UNION ALL FROM '{out}/metrics.parquet') TO '{bad}/metrics.parquet' (FORMAT parquet)")
    con.close()
    cases["edited"] = (bad, "but the export's manifest says")
    bad = tmp_path / "null"  # passes every check, then fails inside the transaction, after runs were inserted
    shutil.copytree(out, bad)
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT * REPLACE (CASE WHEN row_number() OVER () = 1 THEN NULL ELSE predicted END AS predicted)
                          FROM '{out}/predictions.parquet') TO '{bad}/predictions.parquet' (FORMAT parquet)""")
    con.close()
    cases["null"] = (bad, "the warehouse was left as it was")
    cases["not an export"] = (tmp_path, "is not a gensynth results export")
    for name, (directory, message) in cases.items():
        result = cli("runs", "import", directory, "-w", dst)
        assert result.exit_code == 1 and message in result.output, (name, result.output)
        assert "Traceback" not in result.output
        assert counts(dst) == before, name


def test_export_never_overwrites_without_replace(exported, tmp_path):
    wh, out, _, _ = exported
    result = cli("runs", "export", "--out", out, "-w", wh)
    assert result.exit_code == 1 and "--replace" in result.output
    stranger = tmp_path / "notes"
    stranger.mkdir()
    (stranger / "mine.txt").write_text("keep me")
    result = cli("runs", "export", "--out", stranger, "--replace", "-w", wh)
    assert result.exit_code == 1 and "not empty" in result.output
    assert (stranger / "mine.txt").read_text() == "keep me"
    result = cli("runs", "export", "--out", out, "--replace", "-w", wh)
    assert result.exit_code == 0, result.output
    assert not [p for p in out.parent.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def test_exported_files_open_in_pandas_and_polars(exported):
    _, out, _, _ = exported
    opened = 0
    for lib in ("pandas", "polars"):
        try:
            mod = __import__(lib)
        except ImportError:
            continue
        for name in ("runs", "metrics", "evaluations", "predictions"):
            frame = mod.read_parquet(out / f"{name}.parquet")
            assert len(frame) == json.loads((out / "manifest.json").read_text())["rows"][name]
        opened += 1
    if not opened:
        pytest.skip("neither pandas nor polars is installed here (DuckDB reads the files in the other tests)")
