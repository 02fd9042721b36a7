"""Results tables (runs, metrics, predictions): migrations, run-directory results, ingestion.

Results are irreplaceable, so their tables are never rebuilt: they are created and changed
only by the named migrations in ``MIGRATIONS``, each applied once and recorded in
``schema_migrations`` (name, applied_at).

DuckDB lets one process write a file at a time, and any open reader (a `duckdb` shell, a
notebook) blocks every writer. So a run never writes the warehouse while it works:

1. it writes its results into its own directory, ``runs/<run_id>/results/`` (parquet files
   and a manifest, built in an in-memory DuckDB by ``MIGRATIONS``): a complete new
   folder ``results.<id>/`` is written, then the ``results`` symlink is swapped to it, so a
   reader always sees one complete version;
2. it then *ingests* them: one short transaction that deletes the run's rows and inserts
   the new ones (re-ingesting replaces, never duplicates), retried with backoff while the
   warehouse is locked, for a bounded time (``INGEST_TIMEOUT_S``);
3. if the warehouse stays locked, the results stay *pending* in the run directory (its
   ``ingested.json`` names an older results id, or is missing); ``gensynth runs sync``, and
   every later ``gensynth train`` / ``eval``, ingests pending runs.

Run directories live in ``runs/`` next to the warehouse file (see ``runs_root``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import random
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb

from gensynth.errors import GensynthError
from gensynth.warehouse import check_schema_version, connect, sql_text

# Seconds a run keeps retrying a locked warehouse before leaving its results pending.
INGEST_TIMEOUT_S = 60.0
RESULT_TABLES = ("runs", "metrics", "predictions")


@dataclass(frozen=True)
class Migration:
    """A named, ordered change to the results tables (never edited once released)."""

    name: str
    """Unique, sortable name recorded in schema_migrations, e.g. '0001_results_tables'."""
    sql_file: str
    """File under sql/ holding the statements."""


# Append only. A later schema change is a new entry with a new file, e.g.
# Migration("0002_predictions_depth", "migrations/0002_predictions_depth.sql").
MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_results_tables", "results.sql"),
    Migration("0002_search_budget", "migrations/0002_search_budget.sql"),
    Migration("0003_runs_arch", "migrations/0003_runs_arch.sql"),
)


class WarehouseBusy(GensynthError):
    """The warehouse stayed locked by another process for longer than we were willing to wait."""


# ------------------------------------------------------------------------ migrations


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply every migration not yet recorded in ``schema_migrations``; return their names.

    Runs inside the caller's transaction when there is one (ingestion), so a failed
    ingestion leaves no half-applied migration behind.
    """
    con.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
    done = {r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()}
    applied = []
    for m in MIGRATIONS:
        if m.name in done:
            continue
        con.execute(sql_text(m.sql_file))
        con.execute("INSERT INTO schema_migrations VALUES (?, now())", [m.name])
        applied.append(m.name)
    return applied


def has_results_tables(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the results tables exist (a warehouse that never received a run has none)."""
    n = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name IN ('runs', 'metrics', 'predictions')"
    ).fetchone()[0]
    return n == len(RESULT_TABLES)


def carry_over(old_path: Path, con: duckdb.DuckDBPyConnection) -> int:
    """Copy the results tables of the warehouse at ``old_path`` into ``con`` (a new build).

    For ``gensynth build``, which replaces the warehouse file: results must survive a
    rebuild. Returns the number of runs copied (0 when the old file has no results).
    """
    old_path = Path(old_path)
    if not old_path.is_file():
        return 0
    con.execute(f"ATTACH '{_sql_str(old_path)}' AS old_wh (READ_ONLY)")
    try:
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'old_wh'").fetchall()}
        if not set(RESULT_TABLES) <= tables:
            return 0
        migrate(con)
        for t in RESULT_TABLES:
            con.execute(f"INSERT INTO {t} BY NAME SELECT * FROM old_wh.{t}")
        return con.execute("SELECT count(*) FROM old_wh.runs").fetchone()[0]
    finally:
        con.execute("DETACH old_wh")


# ------------------------------------------------------------------- connections


def connect_retrying(path: Path, read_only: bool, timeout: float = INGEST_TIMEOUT_S) -> duckdb.DuckDBPyConnection:
    """Connect to the warehouse, retrying with jittered exponential backoff while it is locked.

    Raises ``WarehouseBusy`` after ``timeout`` seconds (naming the process holding the lock
    when DuckDB says which), and ``GensynthError`` if the file is missing or of another
    schema version.
    """
    path = Path(path)
    if not path.is_file():
        raise GensynthError(f"No warehouse at '{path}'. Build one first with `gensynth build --warehouse {path}`.")
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            con = connect(path, read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise GensynthError(f"Cannot open warehouse '{path}': {exc}") from None
            left = deadline - time.monotonic()
            if left <= 0:
                holder = re.search(r"held in (.*?) \(PID (\d+)\)", str(exc))
                who = f" by {holder.group(1)} (PID {holder.group(2)})" if holder else ""
                raise WarehouseBusy(
                    f"Warehouse '{path}' stayed locked{who} for {timeout:.0f} s. Close other programs that have it "
                    f"open (a `duckdb` shell or notebook blocks every writer) and run `gensynth runs sync`."
                ) from None
            time.sleep(min(left, delay * (0.5 + random.random())))
            delay = min(delay * 2, 2.0)
    check_schema_version(con, path)
    return con


# ----------------------------------------------------------------- run directories


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
                  prediction_files: list[Path]) -> str:
    """Write a complete results version of a run into ``run_dir/results`` (atomic swap).

    ``run_row`` holds the ``runs`` columns (``ingested_at`` is set on ingestion);
    ``metric_rows`` are (step, name, value); ``prediction_files`` are parquet files with
    the ``predictions`` columns. Returns the new results id.
    """
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
            row = {**run_row, "ingested_at": dt.datetime.now(dt.timezone.utc)}
            cols = [c for c in row if c in _columns(con, "runs")]
            con.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                        [_json_if_needed(row[c]) for c in cols])
            if metric_rows:
                con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)",
                                [(run_row["run_id"], int(s), n, _finite_or_none(v)) for s, n, v in metric_rows])
            for f in prediction_files:
                con.execute(f"INSERT INTO predictions BY NAME SELECT * FROM read_parquet('{_sql_str(f)}')")
            for t in RESULT_TABLES:
                con.execute(f"COPY {t} TO '{_sql_str(tmp / (t + '.parquet'))}' (FORMAT parquet)")
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


@dataclass(frozen=True)
class IngestOutcome:
    """What happened to one run directory's results."""

    run_id: str
    state: str
    """'ingested', 'pending' (warehouse locked; retry with `gensynth runs sync`),
    'refused' (from another warehouse build), 'busy' (another process holds the run's
    results; it ingests them) or 'empty' (no results yet)."""
    message: str = ""


def ingest_run(warehouse: Path, run_dir: Path, timeout: float = INGEST_TIMEOUT_S,
               con: duckdb.DuckDBPyConnection | None = None, wait_for_run: bool = True) -> IngestOutcome:
    """Copy a run directory's current results into the warehouse, replacing the run's rows.

    One transaction: migrate, delete the run's rows, insert the new ones. Retries a locked
    warehouse for ``timeout`` seconds, then reports 'pending' and leaves the results in the
    run directory. Pass ``con`` (a writable connection) to ingest several runs in one go;
    ``wait_for_run=False`` skips ('busy') a run whose results another process is handling.
    """
    run_dir = Path(run_dir)
    run_id = run_dir.name
    if results_manifest(run_dir) is None:
        return IngestOutcome(run_id, "empty", "no results written yet")
    own = con is None
    try:
        if own:  # the warehouse first, then the run's lock (see run_file_lock)
            con = connect_retrying(warehouse, read_only=False, timeout=timeout)
    except WarehouseBusy as exc:
        return IngestOutcome(run_id, "pending", str(exc))
    try:
        with run_file_lock(run_dir, wait=wait_for_run) as held:
            if not held:
                return IngestOutcome(run_id, "busy", "another process is writing or ingesting this run's results")
            return _ingest_locked(warehouse, run_dir, con)
    finally:
        if own:
            con.close()


def _ingest_locked(warehouse: Path, run_dir: Path, con: duckdb.DuckDBPyConnection) -> IngestOutcome:
    run_id = run_dir.name
    manifest = results_manifest(run_dir)
    res = (run_dir / "results").resolve()
    files = {t: _sql_str(res / f"{t}.parquet") for t in RESULT_TABLES}
    run_version = con.execute(f"SELECT data_version FROM read_parquet('{files['runs']}')").fetchone()[0]
    wh_version = (con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone() or [None])[0]
    if run_version != wh_version:
        return IngestOutcome(run_id, "refused",
                             f"run {run_id} was trained on warehouse data version {run_version}, but "
                             f"'{warehouse}' is version {wh_version} (rebuilt with another grammar or --max-ops?); "
                             f"its program ids may mean other programs, so it was not ingested.")
    con.execute("BEGIN TRANSACTION")
    try:
        migrate(con)
        for t in RESULT_TABLES:
            con.execute(f"DELETE FROM {t} WHERE run_id = ?", [run_id])
        con.execute(f"INSERT INTO runs BY NAME SELECT * REPLACE (now() AS ingested_at) FROM read_parquet('{files['runs']}')")
        for t in ("metrics", "predictions"):
            con.execute(f"INSERT INTO {t} BY NAME SELECT * FROM read_parquet('{files[t]}')")
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    marker = {"results_id": manifest["results_id"], "status": manifest["status"],
              "warehouse": str(Path(warehouse).resolve()),
              "ingested_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    tmp = run_dir / f".ingested.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(marker, indent=2))
    os.replace(tmp, run_dir / "ingested.json")
    return IngestOutcome(run_id, "ingested", f"{manifest['rows']['predictions']:,} predictions")


def sync(warehouse: Path, timeout: float = INGEST_TIMEOUT_S, everything: bool = False,
         run_ids: list[str] | None = None) -> list[IngestOutcome]:
    """Ingest every pending run directory (or, with ``everything``, every one) of a warehouse.

    Holds one write connection for the whole batch; if the warehouse stays locked, every
    run stays pending. ``run_ids`` limits the runs considered.
    """
    dirs = [d for d in run_dirs(warehouse) if (run_ids is None or d.name in run_ids)]
    todo = [d for d in dirs if results_manifest(d) is not None and (everything or is_pending(d))]
    if not todo:
        return []
    try:
        con = connect_retrying(warehouse, read_only=False, timeout=timeout)
    except WarehouseBusy as exc:
        return [IngestOutcome(d.name, "pending", str(exc)) for d in todo]
    try:
        # A run whose lock is held is being written or ingested by its owner right now: skip it.
        return [ingest_run(warehouse, d, con=con, wait_for_run=False) for d in todo]
    finally:
        con.close()


# ---------------------------------------------------------------------- helpers


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]


def _json_if_needed(v):
    return json.dumps(v) if isinstance(v, (dict, list)) else v


def _finite_or_none(v):
    if v is None:
        return None
    v = float(v)
    return v if v == v and abs(v) != float("inf") else None


def _sql_str(path: Path | str) -> str:
    """A path quoted for a SQL string literal."""
    return str(path).replace("'", "''")
