"""Benchmark of `gensynth report` on an existing warehouse: ``python -m benchmarks.report WAREHOUSE``.

Prints the machine, then the seconds each ``sql/report/`` query takes on a read-only
connection (after installing the analysis views on a private copy of the warehouse), the
seconds to draw every figure and write report.md and index.html, and the total. Nothing
is asserted. With ``--old-join`` it also times ``pass_at_k`` with the target-program join
``analysed_predictions`` had before (``... AND p.view <> 'tasks_beyond'`` in the join
condition, which DuckDB plans as a nested-loop join), on the same copy, side by side.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

OLD_JOIN = "LEFT JOIN programs AS t ON t.program_id = p.program_id AND p.view <> 'tasks_beyond'"
NEW_JOIN = "LEFT JOIN programs AS t ON t.program_id = p.program_id"


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


@app.command()
def main(warehouse: Path = typer.Argument(..., help="A warehouse with runs (e.g. reports/run_study.sh's)."),
         old_join: bool = typer.Option(False, "--old-join", help="Also time pass_at_k with the old nested-loop join.")) -> None:
    import duckdb

    from gensynth.analysis.report import render_report
    from gensynth.analysis.report_data import gather
    from gensynth.analysis.views import install_analysis_views
    from gensynth.warehouse import sql_text

    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
          f"duckdb {duckdb.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        wh = Path(tmp) / "w.duckdb"
        shutil.copy(warehouse, wh)
        con = duckdb.connect(str(wh))
        install_analysis_views(con)
        runs = con.execute("SELECT count(*) FROM finished_runs").fetchone()[0]
        preds = con.execute("SELECT count(*) FROM predictions").fetchone()[0]
        print(f"warehouse: {warehouse} ({runs} finished runs, {preds:,} predictions)")
        if old_join:
            text = sql_text("analysis/analysed_predictions.sql")
            _, new_s = _timed(lambda: con.execute("SELECT count(*) FROM pass_at_k").fetchall())
            con.execute(text.replace(NEW_JOIN, OLD_JOIN).replace("CASE WHEN p.view <> 'tasks_beyond' THEN t.function_id END",
                                                                 "t.function_id"))
            _, old_s = _timed(lambda: con.execute("SELECT count(*) FROM pass_at_k").fetchall())
            con.execute(text)
            print(f"pass_at_k: {new_s:.2f} s (equi-join)  vs  {old_s:.2f} s (old join condition)")
        con.close()
        con = duckdb.connect(str(wh), read_only=True)
        data, gather_s = _timed(lambda: gather(con))
        con.close()
        for name in data.q:  # each query once more, alone, for its own time
            c = duckdb.connect(str(wh), read_only=True)
            q = data.q[name]
            for k, v in q.variables.items():
                c.execute(f"SET VARIABLE {k} = ?", [v])
            _, s = _timed(lambda: c.execute(sql_text(f"report/{name}.sql")).fetchall())
            c.close()
            print(f"  {name:24s} {s:6.2f} s  {len(q.rows):>7,} rows")
        _, render_s = _timed(lambda: render_report(data, Path(tmp) / "rep", wh))
    print(f"read every query: {gather_s:.2f} s; figures + report.md + index.html: {render_s:.2f} s; "
          f"total {gather_s + render_s:.2f} s")


if __name__ == "__main__":
    app()
