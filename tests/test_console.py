"""The console policy of gensynth/progress.py: tables are never cut to 80 columns in a pipe."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import duckdb
from rich.table import Table

from gensynth.progress import PIPE_WIDTH, PipeConsole
from helpers import add_split
from test_analysis import build_fixture_warehouse

ROOT = Path(__file__).resolve().parents[1]
LONG = "a_split_with_a_rather_long_name_that_says_exactly_what_it_holds"


def _no_columns_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")}


def test_split_list_in_a_pipe_shows_whole_names(tmp_path):
    wh = build_fixture_warehouse(tmp_path / "w.duckdb")  # tiny grammar, built-in splits and a few runs
    con = duckdb.connect(str(wh))
    try:
        add_split(con, LONG)
    finally:
        con.close()
    out = subprocess.run([sys.executable, "-m", "gensynth", "split", "list", "-w", str(wh)], cwd=ROOT,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, env=_no_columns_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if LONG in line]
    assert len(rows) == 1, out.stdout  # the whole name, on one line, not folded or cut with '…'
    assert "support_syntactic " in out.stdout and "…" not in out.stdout


def test_a_no_wrap_first_column_is_not_cut_when_not_a_terminal(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    run_id = "20261201-160101-3fa9-" + "x" * 60
    table = Table(title="runs")
    for col in ("run", "status", "view", "pass@1 by role"):
        table.add_column(col, no_wrap=col == "run")  # as `runs list` declares it
    table.add_row(run_id, "finished", "split_support_syntactic", "test_id 0.13, test_ood 0.00, train 0.21, val 0.12")
    buf = io.StringIO()
    PipeConsole(file=buf).print(table)
    assert run_id in buf.getvalue() and "…" not in buf.getvalue()
    assert max(len(line) for line in buf.getvalue().splitlines()) < PIPE_WIDTH  # as wide as the table, no wider
    # An explicit COLUMNS still rules.
    monkeypatch.setenv("COLUMNS", "60")
    buf = io.StringIO()
    PipeConsole(file=buf).print(table)
    assert run_id not in buf.getvalue()
