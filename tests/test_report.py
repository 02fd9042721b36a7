"""Tests for `gensynth report` (gensynth/report.py) and the analysis CLI commands.

The report is written from the hand-made warehouse of tests/test_analysis.py (every
figure has data), from a warehouse with no runs, and from one without manifolds (every
figure is still written, as an explanatory panel). The figures themselves were looked at
by eye; the tests check that each is a real PNG of a readable size.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from gensynth.analysis.views import install_analysis_views
from gensynth.analysis.report import FIGURES, write_report
from test_analysis import build_fixture_warehouse

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fixture_wh(tmp_path_factory) -> Path:
    return build_fixture_warehouse(tmp_path_factory.mktemp("report") / "gensynth.duckdb")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return struct.unpack(">II", data[16:24])


def app():
    from gensynth.cli.main import app as cli_app

    return cli_app


def test_report_with_data_writes_every_figure_and_the_tables(fixture_wh, tmp_path):
    wh = tmp_path / "w.duckdb"
    shutil.copy(fixture_wh, wh)
    out = tmp_path / "rep"
    result = CliRunner().invoke(app(), ["report", "--out", str(out), "-w", str(wh), "--split", "support_syntactic"])
    assert result.exit_code == 0, result.output
    for name in FIGURES:
        w, h = png_size(out / name)
        assert w >= 800 and h >= 400, (name, w, h)
    text = (out / "report.md").read_text()
    for name in FIGURES:
        assert f"({name})" in text
    # Tables carry the views' numbers, and the query that reproduces each.
    assert "| support_syntactic | test_ood | transformer | nano | 2 | 0.650 | 0.350 | 0.300 | 0.375 |" in text
    assert "| density_semantic | 0.000 | 0.000 | 1.000 | 0.000 | 1.000 | 1 |" in text
    assert "+0.150/decade, R² 1.00" in text
    assert "FROM ood_drop" in text and "FROM density_matrix" in text and "FROM scaling" in text
    assert "Split drawn: `split_support_syntactic`" in text
    assert "Missing data" not in text
    # report computed the proximity table first
    assert duckdb.connect(str(wh), read_only=True).execute("SELECT count(*) FROM nearest_train").fetchone()[0] > 0


def test_report_without_runs_or_manifolds_still_writes_every_file(tmp_path):
    from gensynth.pipeline import build_warehouse
    from gensynth.universe.grammar import load_grammar

    wh = tmp_path / "bare.duckdb"
    build_warehouse(load_grammar(ROOT / "tests" / "grammars" / "tiny.toml"), 1, wh, quiet=True)  # no manifolds, no runs
    con = duckdb.connect(str(wh))
    try:
        install_analysis_views(con)
        summary = write_report(con, tmp_path / "rep", wh)
    finally:
        con.close()
    for name in FIGURES:
        png_size(tmp_path / "rep" / name)
    assert len(summary.notes) == 5  # every figure is an explanatory panel
    text = summary.markdown.read_text()
    assert "Missing data" in text and "No finished runs yet" in text


def test_report_with_manifolds_but_no_runs(fixture_wh, tmp_path):
    wh = tmp_path / "w.duckdb"
    shutil.copy(fixture_wh, wh)
    con = duckdb.connect(str(wh))
    try:
        for t in ("predictions", "metrics", "runs"):
            con.execute(f"DELETE FROM {t}")
        summary = write_report(con, tmp_path / "rep", wh)
    finally:
        con.close()
    assert summary.split == "split_support_syntactic"  # the default when no run says otherwise
    assert "manifolds" not in " ".join(summary.notes)  # the map is drawn
    assert len(summary.notes) == 4
    for name in FIGURES:
        png_size(tmp_path / "rep" / name)


def test_bad_split_is_a_one_line_error(fixture_wh, tmp_path):
    wh = tmp_path / "w.duckdb"
    shutil.copy(fixture_wh, wh)
    out = subprocess.run([sys.executable, "-m", "gensynth", "report", "-w", str(wh), "--out", str(tmp_path / "r"),
                          "--split", "support_syntax", "--no-proximity"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1
    assert out.stderr.startswith("Error: --split support_syntax") and "did you mean 'split_support_syntactic'" in out.stderr
    assert "Traceback" not in out.stderr


def test_proximity_command(fixture_wh, tmp_path):
    wh = tmp_path / "w.duckdb"
    shutil.copy(fixture_wh, wh)
    result = CliRunner().invoke(app(), ["proximity", "-w", str(wh), "--view", "support_syntactic"])
    assert result.exit_code == 0, result.output
    assert "split_support_syntactic" in result.output
    n = duckdb.connect(str(wh), read_only=True).execute(
        "SELECT count(DISTINCT train_view) FROM nearest_train").fetchone()[0]
    assert n == 1


def test_help_stays_light():
    code = ("import sys, gensynth.cli.main; "
            "print(sorted(m for m in ('torch', 'sklearn', 'scipy', 'matplotlib', 'lightning') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
