"""Ingestion: copy a run directory's results into the warehouse, retrying while it is locked.

A run writes its results into its own directory first (``gensynth.results.rundirs``), then
*ingests* them: one short transaction that deletes the run's rows and inserts the new ones
(re-ingesting replaces, never duplicates), retried with backoff while the warehouse is
locked, for a bounded time (``$GENSYNTH_LOCK_TIMEOUT``, default 60 s). If the warehouse stays locked, the
results stay *pending* in the run directory; ``gensynth runs sync``, and every later
``gensynth train`` / ``eval``, ingests pending runs.

The names other modules import from here (``migrate``, ``run_dirs``, ``write_results``, ...)
are re-exported from ``gensynth.results.migrations`` and ``gensynth.results.rundirs``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from gensynth.errors import GensynthError
from gensynth.results.migrations import (  # noqa: F401 (re-exported)
    CORE_TABLES,
    MIGRATIONS,
    RESULT_TABLES,
    Migration,
    carry_over,
    has_results_tables,
    migrate,
    quote_path,
)
from gensynth.results.rundirs import (  # noqa: F401 (re-exported)
    quarantine,
    run_dir_problem,
    ingested_marker,
    is_pending,
    results_manifest,
    run_dirs,
    run_file_lock,
    runs_root,
    write_results,
)
from gensynth.warehouse import WarehouseBusy, connect_retrying, sql_text  # noqa: F401 (re-exported: the one connection policy lives in gensynth.warehouse)

# Seconds a run keeps retrying a locked warehouse before leaving its results pending.
# None: $GENSYNTH_LOCK_TIMEOUT (gensynth.warehouse.lock_timeout, default 60 s).
INGEST_TIMEOUT_S: float | None = None
SYNC_HINT = "and run `gensynth runs sync`"
# Set (to anything but '' or '0') in a process whose runs another process ingests: a Ray task of
# `gensynth sweep --executor ray` (gensynth.experiments.executors), whose driver is the one writer.
DEFER_INGEST_ENV = "GENSYNTH_DEFER_INGEST"
DEFERRED = "ingestion left to the sweep's driver process ($GENSYNTH_DEFER_INGEST)"


def ingestion_deferred() -> bool:
    """Whether this process leaves its results in run directories for another process to ingest."""
    return os.environ.get(DEFER_INGEST_ENV, "") not in ("", "0")


@dataclass(frozen=True)
class IngestOutcome:
    """What happened to one run directory's results."""

    run_id: str
    state: str
    """'ingested', 'pending' (warehouse locked; retry with `gensynth runs sync`),
    'unchecked' (only from ``sync``: the warehouse stayed locked, so whether it holds these
    results could not be checked), 'refused' (from another universe: see
    sql/analysis/finished_runs.sql), 'busy' (another
    process holds the run's results; it ingests them), 'quarantined' (its name, config and
    result files disagree: moved to runs/quarantine/), 'failed' (an error while ingesting; only
    from ``sync``, which goes on with the other runs) or 'empty' (no results yet)."""
    message: str = ""


# ------------------------------------------------------------------ what is stored


@dataclass(frozen=True)
class StoredRun:
    """What the warehouse holds of one run (sql/ingest/stored_runs.sql)."""

    run_id: str
    status: str
    data_version: str
    results_id: str | None
    """The results version ingested (NULL for rows ingested before migration 0003)."""
    metrics: int
    predictions: int
    view: str | None = None
    size: str | None = None


def stored_runs(con: duckdb.DuckDBPyConnection) -> dict[str, StoredRun]:
    """Every run the warehouse holds, by run id ({} when it has no results tables). Read-only."""
    if not has_results_tables(con):
        return {}
    cur = con.execute(sql_text("ingest/stored_runs.sql"))
    names = [d[0] for d in cur.description]
    out = {}
    for row in cur.fetchall():
        r = dict(zip(names, row))
        out[r["run_id"]] = StoredRun(r["run_id"], r["status"], r["data_version"], r.get("results_id"),
                                     int(r["metrics"]), int(r["predictions"]), r.get("view"), r.get("size"))
    return out


def storage_state(run_dir: Path, stored: dict[str, StoredRun]) -> str:
    """Whether a run directory's current results are in the warehouse, judged from the warehouse.

    'stored' (this results version is there), 'not stored' (the warehouse has no row of
    the run), 'other version stored' (it holds an older or other results version) or
    'no results' (the directory has none yet). Rows ingested before migration 0003 carry
    no results id: their row counts and status are compared with the manifest instead.
    """
    manifest = results_manifest(run_dir)
    if manifest is None:
        return "no results"
    s = stored.get(Path(run_dir).name)
    if s is None:
        return "not stored"
    if s.results_id is not None:
        return "stored" if s.results_id == manifest["results_id"] else "other version stored"
    rows = manifest.get("rows", {})
    same = (s.status == manifest.get("status") and s.metrics == rows.get("metrics")
            and s.predictions == rows.get("predictions"))
    return "stored" if same else "other version stored"


def current_data_version(con: duckdb.DuckDBPyConnection) -> str | None:
    """The warehouse's meta 'data_version': the universe its program ids belong to."""
    row = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
    return row[0] if row else None


def ingest_run(warehouse: Path, run_dir: Path, timeout: float | None = INGEST_TIMEOUT_S,
               con: duckdb.DuckDBPyConnection | None = None, wait_for_run: bool = True) -> IngestOutcome:
    """Copy a run directory's current results into the warehouse, replacing the run's rows.

    One transaction: migrate, delete the run's rows, insert the new ones. Retries a locked
    warehouse for ``timeout`` seconds (None: ``$GENSYNTH_LOCK_TIMEOUT``, default 60), then
    reports 'pending' and leaves the results in the run directory. Pass ``con`` (a writable connection) to ingest several runs in one go;
    ``wait_for_run=False`` skips ('busy') a run whose results another process is handling.
    """
    run_dir = Path(run_dir)
    run_id = run_dir.name
    if results_manifest(run_dir) is None:
        return IngestOutcome(run_id, "empty", "no results written yet")
    if con is None and ingestion_deferred():
        return IngestOutcome(run_id, "pending", DEFERRED)
    with run_file_lock(run_dir, wait=wait_for_run) as held:  # file work only (see run_file_lock)
        if not held:
            return IngestOutcome(run_id, "busy", "another process is writing or ingesting this run's results")
        problem = run_dir_problem(run_dir)
        if problem is not None:
            moved = quarantine(run_dir, f"run directory '{run_dir}' does not match its contents: {problem}")
            return IngestOutcome(run_id, "quarantined",
                                 f"run directory '{run_dir}' was not ingested: {problem} (copied or renamed by hand?). "
                                 f"It was moved to '{moved}'; see QUARANTINED.txt there.")
    own = con is None
    try:
        if own:  # the warehouse first, then the run's lock (see run_file_lock)
            con = connect_retrying(warehouse, read_only=False, timeout=timeout, hint=SYNC_HINT,
                                   purpose=f"to store the results of run {run_id}")
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
    wh_version = current_data_version(con)
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
        con.execute("UPDATE runs SET results_id = ? WHERE run_id = ?", [manifest["results_id"], run_id])
        for t in RESULT_TABLES[1:]:
            if t in CORE_TABLES or (res / f"{t}.parquet").is_file():  # later tables: absent from older run directories
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


def sync(warehouse: Path, timeout: float | None = INGEST_TIMEOUT_S, everything: bool = False,
         run_ids: list[str] | None = None) -> list[IngestOutcome]:
    """Ingest every run directory whose results the warehouse does not hold (or, with ``everything``, every one).

    "Holds" is decided from the warehouse itself (``storage_state``), not from markers in
    the run directories, so a warehouse restored from an older copy gets its missing runs
    back. Holds one write connection for the whole batch, waiting ``timeout`` seconds (None:
    ``$GENSYNTH_LOCK_TIMEOUT``) for a locked warehouse; if it stays locked nothing can be
    checked: every run directory with results is reported 'pending' (its marker says it was
    never ingested) or 'unchecked'. A missing warehouse file is an error, not "nothing to
    do". ``run_ids`` limits the runs considered.
    """
    if not Path(warehouse).is_file():
        connect_retrying(warehouse, read_only=True)  # raises the one "No warehouse at ..." message
    dirs = [d for d in run_dirs(warehouse) if (run_ids is None or d.name in run_ids)]
    dirs = [d for d in dirs if results_manifest(d) is not None]
    if not dirs:
        return []
    if ingestion_deferred():
        return [IngestOutcome(d.name, "pending" if is_pending(d) else "unchecked", DEFERRED) for d in dirs]
    try:
        con = connect_retrying(warehouse, read_only=False, timeout=timeout, hint=SYNC_HINT,
                               purpose="to ingest run results")
    except WarehouseBusy as exc:
        return [IngestOutcome(d.name, "pending" if is_pending(d) else "unchecked", str(exc)) for d in dirs]
    try:
        stored = stored_runs(con)
        todo = [d for d in dirs if everything or storage_state(d, stored) != "stored"]
        # A run whose lock is held is being written or ingested by its owner right now: skip it.
        # One run's failure never stops the others (its transaction was rolled back).
        out = []
        for d in todo:
            try:
                out.append(ingest_run(warehouse, d, con=con, wait_for_run=False))
            except (duckdb.Error, OSError) as exc:
                out.append(IngestOutcome(d.name, "failed", f"run directory '{d}' could not be ingested: "
                                                           f"{str(exc).splitlines()[0]}"))
        return out
    finally:
        con.close()


def _sql_str(path: Path | str) -> str:
    """A path quoted for a SQL string literal."""
    return quote_path(path)
