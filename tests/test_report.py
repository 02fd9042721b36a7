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
    assert len(summary.notes) == len(FIGURES)  # every figure is an explanatory panel
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
    assert len(summary.notes) == len(FIGURES) - 1  # all but the map
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


def _a_writer_gets_in(wh: Path) -> bool:
    """Whether another process can open the warehouse for writing right now (what a finishing run's ingestion needs)."""
    code = (f"import duckdb; c = duckdb.connect({str(wh)!r}); c.execute('CREATE TABLE IF NOT EXISTS probe (x INTEGER)'); "
            "c.close(); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return out.stdout.strip() == "ok"


def test_report_and_proximity_do_not_hold_the_warehouse_while_computing(fixture_wh, tmp_path, monkeypatch):
    import gensynth.analysis.proximity as proximity
    import gensynth.analysis.report as report

    wh = tmp_path / "w.duckdb"
    shutil.copy(fixture_wh, wh)
    seen = []
    draw, compute = report.draw_figures, proximity._compute_rows

    def drawing(d, out):
        seen.append(("figures", _a_writer_gets_in(wh)))
        return draw(d, out)

    def computing(plan):
        seen.append(("distances", _a_writer_gets_in(wh)))
        return compute(plan)

    monkeypatch.setattr(report, "draw_figures", drawing)
    monkeypatch.setattr(proximity, "_compute_rows", computing)
    result = CliRunner().invoke(app(), ["report", "--out", str(tmp_path / "rep"), "-w", str(wh)])
    assert result.exit_code == 0, result.output
    assert {k for k, _ in seen} == {"figures", "distances"} and all(ok for _, ok in seen), seen
    result = CliRunner().invoke(app(), ["proximity", "--force", "-w", str(wh)])
    assert result.exit_code == 0, result.output
    assert seen[-1] == ("distances", True)
    con = duckdb.connect(str(wh), read_only=True)
    try:  # the writer's table landed while the report was computing, and the report's own rows too
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'probe'").fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM nearest_train").fetchone()[0] > 0
    finally:
        con.close()


def test_report_names_the_sql_file_of_every_table(fixture_wh, tmp_path):
    import re

    from gensynth.warehouse import SQL_DIR

    wh = tmp_path / "w.duckdb"
    shutil.copy(fixture_wh, wh)
    assert CliRunner().invoke(app(), ["report", "--out", str(tmp_path / "rep"), "-w", str(wh)]).exit_code == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    files = set(re.findall(r"\[`(sql/report/\w+\.sql)`\]", text))
    assert {"sql/report/ood_table.sql", "sql/report/density_cells.sql", "sql/report/scaling_fits.sql",
            "sql/report/proximity_table.sql", "sql/report/method_table.sql", "sql/report/every_run.sql"} <= files
    assert "SET VARIABLE method = 'transformer';" in text  # the density table's parameters, ready for the shell
    # Every link to a SQL file opens that file from where report.md is (review B12: the links
    # were ../../sql/..., which resolve only from reports/<name>/ of the repository).
    links = re.findall(r"\[`sql/[\w/]+\.sql`\]\(([^)]+)\)", text)
    assert links and all((tmp_path / "rep" / link).resolve().is_file() for link in links), links[:3]
    for f in SQL_DIR.glob("report/*.sql"):  # every report query documents itself
        assert f.read_text().startswith("--"), f
    # Every table's query reruns in the stock DuckDB shell and gives the table's rows.
    block = re.search(r"`sql/report/ood_table.sql`.*?```sql\n(.*?)```", text, re.S).group(1)
    out = subprocess.run([str(Path(sys.executable).with_name("duckdb")), "-readonly", "-csv", "-noheader", str(wh),
                          "-c", block], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "support_syntactic,test_ood,transformer,nano,2,0.65,0.35," in out.stdout  # the table's row, from the shell
