"""Run directories: where a run writes its results before they are ingested into the warehouse.

DuckDB lets one process write a file at a time, and any open reader (a `duckdb` shell, a
notebook) blocks every writer. So a run never writes the warehouse while it works: it
writes its results into its own directory, ``runs/<run_id>/results/`` (parquet files and a
manifest, built in an in-memory DuckDB by the migrations): a complete new folder
``results.<id>/`` is written, then the ``results`` symlink is swapped to it, so a reader
always sees one complete version. ``gensynth.results.ingest`` copies them into the
warehouse.

Run directories live in ``runs/`` next to the warehouse file (see ``runs_root``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

import duckdb

from gensynth.results.migrations import CORE_TABLES, MIGRATIONS, RESULT_TABLES, quote_path
from gensynth.warehouse import sql_text


def runs_root(warehouse: Path) -> Path:
    """Directory holding the run directories of a warehouse: ``<warehouse dir>/runs``."""
    return Path(warehouse).resolve().parent / "runs"


@contextlib.contextmanager
def run_file_lock(run_dir: Path, name: str = "ingest.lock", wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive advisory lock on a file in the run directory (released at exit or death).

    Yields True when held; with ``wait=False`` yields False at once if another process
    holds it. Lock order, to rule out deadlock: a process that holds (or waits for) the
    warehouse may wait for a run's lock, never the other way round; a run's lock is
    held only for file work (``write_results``) or inside an open warehouse connection.
    """
    fd = os.open(Path(run_dir) / name, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def write_results(run_dir: Path, run_row: dict, metric_rows: list[tuple[int, str, float | None]],
                  prediction_files: list[Path], evaluations: list[Path] = ()) -> str:
    """Write a complete results version of a run into ``run_dir/results`` (atomic swap).

    ``run_row`` holds the ``runs`` columns (``ingested_at`` is set on ingestion);
    ``metric_rows`` are (step, name, value); ``prediction_files`` are parquet files with
    the ``predictions`` columns (rows of no recorded evaluation, e.g. a search run's);
    ``evaluations`` are stamped evaluation directories (``gensynth.results.evaluations``),
    each giving its predictions with their eval_id and an ``evaluations`` row. Returns the
    new results id.
    """
    from gensynth.results.evaluations import insert_evaluation

    run_dir = Path(run_dir)
    results_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f") + "-" + uuid.uuid4().hex[:6]
    with run_file_lock(run_dir):  # file work only: never waits for the warehouse while holding it
        target = run_dir / f"results.{results_id}"
        tmp = run_dir / f".results.{results_id}.tmp"
        tmp.mkdir()
        con = duckdb.connect()
        try:
            for migration in MIGRATIONS:  # the in-memory tables match the warehouse's latest schema
                con.execute(sql_text(migration.sql_file))
            row = {**run_row, "results_id": results_id, "ingested_at": dt.datetime.now(dt.timezone.utc)}
            cols = [c for c in row if c in _columns(con, "runs")]
            con.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                        [_json_if_needed(row[c]) for c in cols])
            if metric_rows:
                con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)",
                                [(run_row["run_id"], int(s), n, _finite_or_none(v)) for s, n, v in metric_rows])
            for f in prediction_files:
                con.execute(f"INSERT INTO predictions BY NAME SELECT * FROM read_parquet('{quote_path(f)}')")
            for d in evaluations:
                insert_evaluation(con, run_row["run_id"], d)
            for t in RESULT_TABLES:
                con.execute(f"COPY {t} TO '{quote_path(tmp / (t + '.parquet'))}' (FORMAT parquet)")
            counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in RESULT_TABLES}
        finally:
            con.close()
        (tmp / "manifest.json").write_text(json.dumps({"results_id": results_id, "run_id": run_row["run_id"],
                                                       "status": run_row["status"], "rows": counts}, indent=2))
        os.rename(tmp, target)
        link_tmp = run_dir / f".results.{results_id}.link"
        os.symlink(target.name, link_tmp)
        os.replace(link_tmp, run_dir / "results")  # the atomic step: readers see old or new
        for old in run_dir.glob("results.*"):
            if old.name != target.name and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        for stale in run_dir.glob(".results.*"):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    return results_id


def results_manifest(run_dir: Path) -> dict | None:
    """The manifest of a run directory's current results, or None if it has none."""
    path = Path(run_dir) / "results" / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def ingested_marker(run_dir: Path) -> dict | None:
    """What was last ingested from this run directory (results id, time), or None."""
    try:
        return json.loads((Path(run_dir) / "ingested.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_pending(run_dir: Path) -> bool:
    """Whether the run directory holds results not yet ingested into the warehouse."""
    manifest = results_manifest(run_dir)
    if manifest is None:
        return False
    marker = ingested_marker(run_dir)
    return marker is None or marker.get("results_id") != manifest["results_id"]


def run_dirs(warehouse: Path) -> list[Path]:
    """Every run directory of a warehouse, oldest first (run ids sort by start time)."""
    root = runs_root(warehouse)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "config.json").is_file())


def every_run_dir(warehouse: Path) -> list[Path]:
    """Every directory under ``runs/`` that may be a run's (``run_dirs`` plus those without a
    readable config.json: damaged ones, for `gensynth runs list`), quarantine and hidden folders aside."""
    root = runs_root(warehouse)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name != QUARANTINE_DIR and not p.name.startswith("."))


def account_killed_attempt(run_dir: Path, state: dict) -> float:
    """Close the last attempt of a run that was killed outright; returns the seconds added to wall_time_s.

    A run's ``state.json`` lists its attempts; an attempt that ends normally records its
    ``seconds``. One killed outright (SIGKILL, power loss) leaves the run 'running' with an
    open last attempt: it is counted from its start to its last write (the newest file of
    its log directory, or a checkpoint written after it started), a lower bound on the
    time it ran, and marked ``ended: 'killed'``. Call before starting the next attempt.
    """
    attempts = state.get("attempts") or []
    if state.get("status") != "running" or not attempts or "seconds" in attempts[-1]:
        return 0.0
    run_dir = Path(run_dir)
    started = dt.datetime.fromisoformat(attempts[-1]["started_at"]).timestamp()
    files = [p for p in (run_dir / "logs" / f"attempt-{len(attempts)}").rglob("*") if p.is_file()]
    files += list((run_dir / "checkpoints").glob("*.ckpt"))
    last = max((p.stat().st_mtime for p in files if p.stat().st_mtime >= started), default=started)
    seconds = round(last - started, 3)
    attempts[-1].update(seconds=seconds, ended="killed")
    state["wall_time_s"] = float(state.get("wall_time_s", 0.0)) + seconds
    return seconds


QUARANTINE_DIR = "quarantine"  # under runs/: run directories whose name, config and results disagree


def run_dir_problem(run_dir: Path) -> str | None:
    """Why a run directory's name, its config and its result files disagree; None when they agree.

    A run directory is named after its run id; its ``config.json`` (when it records a
    ``run_id``), its results manifest and every row of its result files must name that
    same run, and its ``runs`` file must hold exactly one row. A directory copied or
    renamed by hand (``cp -r runs/RUN runs/RUN-copy``) fails this check.
    """
    run_dir = Path(run_dir)
    name = run_dir.name
    try:
        cfg = json.loads((run_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return f"its config.json cannot be read ({exc})"
    if isinstance(cfg, dict) and cfg.get("run_id") not in (None, name):
        return f"its config.json belongs to run '{cfg['run_id']}'"
    manifest = results_manifest(run_dir)
    if manifest is None:
        return None  # no results yet: nothing to ingest, nothing to disagree with
    if manifest.get("run_id") != name:
        return f"its results manifest belongs to run '{manifest.get('run_id')}'"
    res = (run_dir / "results").resolve()
    con = duckdb.connect()
    try:
        for t in RESULT_TABLES:
            f = res / f"{t}.parquet"
            if not f.is_file() and t not in CORE_TABLES:
                continue  # written before that table existed
            if not f.is_file():
                return f"its results folder has no {t}.parquet"
            ids, n = con.execute(f"SELECT list(DISTINCT run_id), count(*) FROM read_parquet('{quote_path(f)}')").fetchone()
            if t == "runs" and n != 1:
                return f"its runs.parquet holds {n} rows instead of one"
            if ids and set(ids) != {name}:
                return f"its {t}.parquet holds rows of run(s) {', '.join(sorted(map(str, set(ids) - {name})))}"
    except duckdb.Error as exc:
        return f"its result files cannot be read ({str(exc).splitlines()[0]})"
    finally:
        con.close()
    return None


def quarantine(run_dir: Path, reason: str) -> Path:
    """Move a run directory aside, into ``runs/quarantine/``, with a QUARANTINED.txt saying why."""
    run_dir = Path(run_dir)
    target_root = run_dir.parent / QUARANTINE_DIR
    target_root.mkdir(exist_ok=True)
    target = target_root / run_dir.name
    if target.exists():
        target = target_root / f"{run_dir.name}.{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%S%f')}"
    os.rename(run_dir, target)
    (target / "QUARANTINED.txt").write_text(
        f"Moved here from {run_dir} on {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}:\n"
        f"{reason}.\nIts results were not ingested. If it is a real run, give the directory the run id its "
        f"config.json and results name and move it back to {run_dir.parent}; otherwise delete it.\n")
    return target


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]


def _json_if_needed(v):
    return json.dumps(v) if isinstance(v, (dict, list)) else v


def _finite_or_none(v):
    if v is None:
        return None
    v = float(v)
    return v if v == v and abs(v) != float("inf") else None
