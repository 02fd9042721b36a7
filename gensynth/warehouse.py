"""The warehouse: one DuckDB file holding every table and view, and the one way to open it.

Opening checks that the file is a gensynth warehouse of a schema version this code
understands. ``building`` writes a new warehouse beside the old one and swaps it in only
when complete, so an interrupted build leaves the previous file untouched.

Connection policy (the whole CLI). DuckDB lets one process hold a file for writing, and
while it does no other process can open it at all, not even to read. So every command
opens the warehouse with ``connect_retrying``: readers and short writers retry with
jittered backoff for ``lock_timeout()`` seconds (``$GENSYNTH_LOCK_TIMEOUT``, default 60),
printing once "waiting for the lock held by PID ..." so that a wait is never silent;
then they fail naming the process that holds the lock. Long computations read what they
need on one connection, close it, compute without the lock, and write their result in
one short transaction on another.

User queries (split SQL) run inside ``limited``: a wall-clock limit (``--time-limit``,
default ``QueryLimits.seconds``) and a memory limit (``--memory-limit``), and Ctrl-C
interrupts DuckDB at once instead of waiting for the query to end.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import math
import os
import random
import re
import select
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import duckdb

from gensynth.errors import GensynthError
from gensynth.limits import QUERY_MEMORY, QUERY_SECONDS

# Bump when the layout of derived tables or the meaning of a column changes.
SCHEMA_VERSION = 2  # 2: functions/tasks_beyond.value_hash2, a new row hash; syn_basis; centred syn_coords
DEFAULT_WAREHOUSE = Path("warehouse") / "gensynth.duckdb"
LOCK_TIMEOUT_S = 60.0  # default of $GENSYNTH_LOCK_TIMEOUT


def _resource_dir(name: str) -> Path:
    """A data directory shipped with the package (``gensynth/<name>`` in a wheel), else the
    repository's top-level ``<name>/`` (a source checkout or an editable install)."""
    shipped = Path(str(importlib.resources.files("gensynth"))) / name
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parent.parent / name


SQL_DIR = _resource_dir("sql")
SWEEPS_DIR = _resource_dir("sweeps")


def default_warehouse_path() -> Path:
    """``$GENSYNTH_WAREHOUSE`` if set, else ``warehouse/gensynth.duckdb``."""
    return Path(os.environ.get("GENSYNTH_WAREHOUSE", DEFAULT_WAREHOUSE))


def sql_text(relative: str) -> str:
    """The text of a file under ``sql/`` (e.g. ``'build/functions.sql'``)."""
    path = SQL_DIR / relative
    if not path.is_file():
        raise GensynthError(f"SQL file '{path}' is missing: this gensynth installation is incomplete. Reinstall it (pip install .).")
    return path.read_text()


def run_sql(con: duckdb.DuckDBPyConnection, relative: str, params: dict | None = None, sizes: dict[str, int] | None = None) -> None:
    """Execute the statements of a file under ``sql/`` on ``con``.

    ``params`` binds ``$name`` parameters; ``sizes`` fills ``{name}`` placeholders that SQL
    cannot bind (array sizes in types), integers only.
    """
    text = sql_text(relative)
    for name, value in (sizes or {}).items():
        text = text.replace("{" + name + "}", str(int(value)))
    if params:
        con.execute(text, params)
    else:
        con.execute(text)


# ---------------------------------------------------------------------------- catalog


def relation_exists(con: duckdb.DuckDBPyConnection, name: str, database: str | None = None, kind: str = "all") -> bool:
    """Whether the main schema of ``database`` (default: the connection's own) has a table
    (``kind='table'``), a view (``'view'``) or either (``'all'``) called ``name``."""
    return name in relation_names(con, database, kind)


def relation_names(con: duckdb.DuckDBPyConnection, database: str | None = None, kind: str = "all") -> list[str]:
    """Sorted names of the tables (``kind='table'``), views (``'view'``) or both in the main
    schema of ``database`` (default: the connection's own; DuckDB's internal views and
    temporary views are never listed)."""
    if kind not in ("all", "table", "view"):
        raise ValueError(f"kind must be 'all', 'table' or 'view', got {kind!r}")
    db = "current_database()" if database is None else "$db"
    params = {} if database is None else {"db": database}
    parts = []
    if kind in ("all", "table"):
        parts.append(f"SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND database_name = {db}")
    if kind in ("all", "view"):
        parts.append(f"SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal AND database_name = {db}")
    return sorted(r[0] for r in con.execute(" UNION ALL ".join(parts), params).fetchall())


def relation_columns(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[str, str, bool]]:
    """``(column, type, nullable)`` of the relation ``name`` resolves to in a query (a
    temporary view first, then the main schema), in column order. ``nullable`` is False for
    a table's NOT NULL columns."""
    quoted = '"' + name.replace('"', '""') + '"'
    return [(r[0], r[1], r[2] == "YES") for r in con.execute(f"DESCRIBE {quoted}").fetchall()]


def has_meta(con: duckdb.DuckDBPyConnection, database: str | None = None) -> bool:
    """Whether the file behind ``con`` (or attached ``database``) has gensynth's ``meta`` table."""
    return relation_exists(con, "meta", database)


def read_meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """All of ``meta`` as a dict."""
    return dict(con.execute("SELECT key, value FROM meta").fetchall())


def write_meta(con: duckdb.DuckDBPyConnection, items: dict[str, object]) -> None:
    """Insert or replace ``meta`` rows; non-string values are stored as JSON."""
    rows = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in items.items()]
    con.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows)


# ------------------------------------------------------------------------ connections


class WarehouseBusy(GensynthError):
    """The warehouse stayed locked by another process for longer than we were willing to wait."""


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Connect to a DuckDB file with gensynth's session settings (no retry: see connect_retrying)."""
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("SET enable_progress_bar = false")
    return con


def lock_timeout(default: float = LOCK_TIMEOUT_S) -> float:
    """Seconds to wait for a locked warehouse: ``$GENSYNTH_LOCK_TIMEOUT``, else ``default`` (60)."""
    raw = os.environ.get("GENSYNTH_LOCK_TIMEOUT")
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 0:
        raise GensynthError(f"$GENSYNTH_LOCK_TIMEOUT must be a number of seconds >= 0, got '{raw}'. Fix or unset it.")
    return value


def is_lock_error(exc: BaseException) -> bool:
    """Whether a DuckDB error says another process holds the file's lock."""
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def lock_holder(exc: BaseException) -> str:
    """'PID 123 (/usr/bin/python3)' from DuckDB's lock error, or 'another process'."""
    m = re.search(r"held in (.*?) \(PID (\d+)\)", str(exc))
    return f"PID {m.group(2)} ({m.group(1)})" if m else "another process"


def _say(message: str) -> None:
    from gensynth.progress import console

    console.print(f"[yellow]{message}[/yellow]")


def connect_retrying(path: Path, read_only: bool, timeout: float | None = None, hint: str = "and retry",
                     notify: Callable[[str], None] | None = _say, purpose: str = "") -> duckdb.DuckDBPyConnection:
    """Connect to the warehouse, retrying with jittered exponential backoff while it is locked.

    Prints (through ``notify``, once) which process holds the lock, how long it waits and
    what for (``purpose``, e.g. 'to ingest run results'). Raises ``WarehouseBusy`` after
    ``timeout`` seconds (default ``lock_timeout()``: ``$GENSYNTH_LOCK_TIMEOUT``), naming the
    process holding the lock, and ``GensynthError`` if the file is missing, not a DuckDB
    file, or of another schema version.
    """
    path = Path(path)
    if not path.is_file():
        raise GensynthError(
            f"No warehouse at '{path}'. Build one first with `gensynth build --warehouse {path}` "
            f"(or point --warehouse / $GENSYNTH_WAREHOUSE at an existing file)."
        )
    timeout = lock_timeout() if timeout is None else timeout
    deadline = time.monotonic() + timeout
    delay, told = 0.05, False
    while True:
        try:
            con = connect(path, read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not is_lock_error(exc):
                raise GensynthError(f"Cannot open warehouse '{path}': {exc}. Point --warehouse at a warehouse written by `gensynth build`.") from None
            left = deadline - time.monotonic()
            if left <= 0:
                waited = f" (waiting {purpose})" if purpose else ""
                raise WarehouseBusy(
                    f"Warehouse '{path}' stayed locked by {lock_holder(exc)} for {timeout:g} s{waited}. Close other programs "
                    f"that have it open (a `duckdb` shell or notebook blocks every other process) {hint}; "
                    f"$GENSYNTH_LOCK_TIMEOUT sets how long to wait."
                ) from None
            if not told and notify is not None:
                what = f" {purpose}" if purpose else ""
                notify(f"waiting for the lock on '{path}' held by {lock_holder(exc)} (up to {timeout:g} s){what}...")
                told = True
            time.sleep(min(left, delay * (0.5 + random.random())))
            delay = min(delay * 2, 2.0)
    check_schema_version(con, path)
    return con


@contextlib.contextmanager
def attached(con: duckdb.DuckDBPyConnection, path: Path, alias: str, timeout: float | None = None) -> Iterator[str]:
    """``ATTACH path AS alias (READ_ONLY)`` on ``con`` for the block, waiting (visibly) while
    another process holds the file's lock, as ``connect_retrying`` does; detached at the end."""
    quoted = str(path).replace("'", "''")
    timeout = lock_timeout() if timeout is None else timeout
    deadline, told = time.monotonic() + timeout, False
    while True:
        try:
            con.execute(f"ATTACH '{quoted}' AS {alias} (READ_ONLY)")
            break
        except duckdb.IOException as exc:
            if not is_lock_error(exc) or time.monotonic() >= deadline:
                if is_lock_error(exc):
                    raise WarehouseBusy(f"Warehouse '{path}' stayed locked by {lock_holder(exc)} for {timeout:g} s. "
                                        f"Close the program that has it open and retry; nothing was changed.") from None
                raise
            if not told:
                _say(f"waiting for the lock on '{path}' held by {lock_holder(exc)} (up to {timeout:g} s)...")
                told = True
            time.sleep(0.2)
    try:
        yield alias
    finally:
        with contextlib.suppress(duckdb.Error):
            con.execute(f"DETACH {alias}")


def open_warehouse(path: Path, read_only: bool = True, timeout: float | None = None) -> duckdb.DuckDBPyConnection:
    """Open an existing warehouse (the connection policy above) after checking its schema version."""
    return connect_retrying(path, read_only=read_only, timeout=timeout)


def schema_version(con: duckdb.DuckDBPyConnection, database: str | None = None) -> int | None:
    """The schema version gensynth recorded in the file behind ``con`` (or attached
    ``database``); None when it is not a gensynth warehouse: no ``meta`` table, or a ``meta``
    of another program (not gensynth's key/value columns, or no integer 'schema_version')."""
    if not has_meta(con, database):
        return None
    prefix = "" if database is None else f"{database}."
    try:
        row = con.execute(f"SELECT value FROM {prefix}meta WHERE key = 'schema_version'").fetchone()
    except duckdb.Error:  # a `meta` without gensynth's key/value columns
        return None
    try:
        return int(row[0]) if row else None
    except (TypeError, ValueError):
        return None


def _foreign_meta(con: duckdb.DuckDBPyConnection) -> str:
    """Why a file is not a gensynth warehouse: no ``meta`` table, or one of another program."""
    if not has_meta(con):
        return "it has no `meta` table"
    return "it has a `meta` table, but not gensynth's (no 'schema_version' key)"


def check_schema_version(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse a file that is not a gensynth warehouse, or of another schema version than this
    code reads (a newer one: upgrade gensynth; an older one: rebuild it, which keeps its
    results and user splits). Closes ``con`` when it refuses."""
    version = schema_version(con)
    if version is None:
        why = _foreign_meta(con)
        con.close()
        raise GensynthError(f"'{path}' is a DuckDB file but not a gensynth warehouse ({why}). Point --warehouse at a warehouse written by `gensynth build`.")
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        con.close()
        raise GensynthError(newer_schema_message(path, version))
    meta = dict(con.execute("SELECT key, value FROM meta WHERE key IN ('max_ops', 'grammar_name')").fetchall())
    con.close()
    same = f" --max-ops {meta['max_ops']}" if "max_ops" in meta else ""
    grammar = f" (its grammar is '{meta['grammar_name']}': pass the same --grammar FILE)" if "grammar_name" in meta else ""
    raise GensynthError(
        f"Warehouse '{path}' has schema version {version}, but this gensynth reads version {SCHEMA_VERSION}: it was "
        f"written by an older gensynth. Rebuild it with `gensynth build{same} --warehouse {path}`{grammar}; the rebuild "
        f"replaces the derived tables, and its runs, predictions, evaluations and user splits are carried over (results "
        f"tables migrated; runs of the old universe are kept and listed as another universe by `gensynth runs list --all`)."
    )


def newer_schema_message(path: Path, version: int) -> str:
    return (f"Warehouse '{path}' has schema version {version}, but this gensynth reads version {SCHEMA_VERSION}. "
            f"It was written by a newer gensynth: upgrade gensynth (pip install -e . from a newer checkout), or "
            f"choose another --warehouse path; it was not changed.")


# --------------------------------------------------------------------------- building


def check_writable_location(path: Path, force: bool = False, timeout: float | None = None) -> None:
    """Fail early, before any work, if a warehouse cannot be written at ``path``.

    Refuses a directory, a missing or read-only parent, a file that cannot be replaced
    (read-only or immutable), a file that is not DuckDB, a DuckDB file of another program
    (no ``meta``, or a ``meta`` that is not gensynth's; ``force`` replaces it) and a
    warehouse of a newer gensynth. A warehouse of an older gensynth is accepted: the build
    replaces it, carrying its results (migrated) and user splits over. A warehouse
    locked by another process is waited for (the connection policy), then refused naming
    that process: replacing a file another process is writing would lose its writes.
    """
    parent = path.resolve().parent
    if path.is_dir():
        raise GensynthError(f"Cannot write warehouse '{path}': it is a directory. Give a file path, e.g. --warehouse {path / 'gensynth.duckdb'}.")
    if parent.exists() and not parent.is_dir():
        raise GensynthError(f"Cannot write warehouse '{path}': '{parent}' is a file, not a directory. Choose another --warehouse path.")
    if not parent.is_dir():
        raise GensynthError(f"Cannot write warehouse '{path}': directory '{parent}' does not exist. Create it (mkdir -p {parent}) or choose another --warehouse path.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GensynthError(f"Cannot write warehouse '{path}': directory '{parent}' is not writable. Choose a writable --warehouse path or fix the directory's permissions.")
    if not (path.exists() and path.is_file()):
        return
    _check_replaceable(path)
    con = _open_existing(path, timeout)
    try:
        version = schema_version(con)
        if version is not None and version > SCHEMA_VERSION:
            raise GensynthError(newer_schema_message(path, version))
        if version is None and not force:
            tables = relation_names(con)
            held = f"it holds {len(tables)} table(s) and view(s): {', '.join(tables[:20])}" + (", ..." if len(tables) > 20 else "") if tables else "it holds no tables"
            raise GensynthError(
                f"'{path}' is a DuckDB file but not a gensynth warehouse ({_foreign_meta(con)}; {held}). "
                f"`gensynth build` would replace it and its tables would be gone. Choose another --warehouse path, "
                f"or pass --force to replace it."
            )
    finally:
        with contextlib.suppress(duckdb.Error):
            con.close()


def _check_replaceable(path: Path) -> None:
    """A build ends by replacing ``path``: refuse now if that would fail (read-only or immutable file)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except PermissionError as exc:
        raise GensynthError(
            f"Cannot replace warehouse '{path}': the file is read-only or immutable ({exc.strerror}). "
            f"Make it writable (chmod u+w, or chattr -i for an immutable file) or choose another --warehouse path."
        ) from None
    except OSError:
        return  # not a regular writable target (a FIFO, ...): the DuckDB check below names it
    os.close(fd)


def _open_existing(path: Path, timeout: float | None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to an existing file, waiting (visibly) while another process holds it."""
    timeout = lock_timeout() if timeout is None else timeout
    deadline, told = time.monotonic() + timeout, False
    while True:
        try:
            return connect(path, read_only=True)
        except duckdb.Error as exc:
            if not is_lock_error(exc):
                raise GensynthError(f"'{path}' exists but is not a DuckDB file ({exc}). Move it away or choose another --warehouse path.") from None
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"Warehouse '{path}' is locked by {lock_holder(exc)}, which has it open. Close that program "
                    f"(a `duckdb` shell, a notebook, another gensynth command) and rebuild; nothing was changed."
                ) from None
            if not told:
                _say(f"waiting for the lock on '{path}' held by {lock_holder(exc)} (up to {timeout:g} s)...")
                told = True
            time.sleep(0.2)


@contextlib.contextmanager
def building(path: Path, force: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to a fresh file beside ``path``; swapped in atomically on success.

    On any exception (Ctrl-C included) the partial file is deleted and ``path`` is left as
    it was. A build killed outright leaves only a ``.building-*`` file that is never read
    as a warehouse and is cleaned by the next build.
    """
    path = Path(path)
    check_writable_location(path, force=force)
    for stale in path.parent.glob(f".{path.name}.building-*"):
        with contextlib.suppress(OSError, ValueError):
            if not _pid_alive(int(stale.name.rsplit("-", 1)[1].split(".")[0])):
                stale.unlink()
    tmp = path.with_name(f".{path.name}.building-{os.getpid()}")
    _remove(tmp)
    con = connect(tmp)
    try:
        yield con
        con.execute("CHECKPOINT")
        con.close()
        try:
            os.replace(tmp, path)
        except PermissionError as exc:
            raise GensynthError(
                f"Cannot replace warehouse '{path}' ({exc.strerror}): it became read-only or immutable during the build. "
                f"The previous file is unchanged and the new build was discarded; make the file writable and rebuild."
            ) from None
        _remove(Path(str(path) + ".wal"))
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.close()
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    for p in (path, Path(str(path) + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------- limited queries


@dataclass(frozen=True)
class QueryLimits:
    """Limits every user query (split SQL) runs under."""

    seconds: float = QUERY_SECONDS
    """--time-limit: wall-clock seconds a command's user SQL may run, in all."""
    memory: str = QUERY_MEMORY
    """--memory-limit: DuckDB memory_limit while user SQL runs (e.g. 2GB, 500MB)."""

    def validate(self) -> "QueryLimits":
        if not (isinstance(self.seconds, (int, float)) and math.isfinite(self.seconds) and self.seconds > 0):
            raise GensynthError(f"--time-limit must be a number of seconds > 0, got {self.seconds}. Use e.g. --time-limit 300.")
        if not re.fullmatch(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", self.memory.strip(), re.I):
            raise GensynthError(f"--memory-limit must be a size like 4GB or 500MB, got '{self.memory}'.")
        return self


@contextlib.contextmanager
def limited(con: duckdb.DuckDBPyConnection, limits: QueryLimits | None = None, what: str = "the query") -> Iterator[None]:
    """Run a block of queries on ``con`` under ``limits``, interruptible by Ctrl-C.

    A watcher thread calls ``con.interrupt()`` when the time limit passes, or as soon as
    SIGINT arrives (the signal's byte is written to a wakeup socket by Python's C-level
    handler, which works while the main thread is inside DuckDB). A query stopped by the
    time limit raises ``GensynthError`` naming the limit and the flag; one stopped by
    Ctrl-C raises ``KeyboardInterrupt``.
    """
    limits = (limits or QueryLimits()).validate()
    con.execute(f"SET memory_limit = '{limits.memory}'")
    state = {"timed_out": False, "signalled": False}
    stop = threading.Event()
    receiver, sender = socket.socketpair()
    receiver.setblocking(False)
    sender.setblocking(False)
    old_fd = None
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError):
            old_fd = signal.set_wakeup_fd(sender.fileno(), warn_on_full_buffer=False)
    deadline = time.monotonic() + limits.seconds

    def watch() -> None:
        while not stop.is_set():
            left = deadline - time.monotonic()
            ready, _, _ = select.select([receiver], [], [], max(0.0, min(left, 0.25)))
            if ready:
                with contextlib.suppress(OSError):
                    data = receiver.recv(64)
                    if any(b == signal.SIGINT for b in data):
                        state["signalled"] = True
                        con.interrupt()
            elif time.monotonic() >= deadline:
                state["timed_out"] = True
                con.interrupt()  # repeated until the block ends: a query started late is stopped too
            if state["signalled"]:
                # Repeated too: a Ctrl-C that came before the block's query started (DuckDB
                # interrupts only a running query) must still stop it once it runs.
                con.interrupt()

    watcher = threading.Thread(target=watch, name="gensynth-query-limit", daemon=True)
    watcher.start()
    try:
        yield
    except (duckdb.InterruptException, RuntimeError) as exc:  # DuckDB says "Query interrupted" as either
        if not isinstance(exc, duckdb.InterruptException) and "interrupt" not in str(exc).lower():
            raise
        if state["signalled"] or not state["timed_out"]:
            raise KeyboardInterrupt from None
        raise GensynthError(
            f"{what} ran longer than the time limit of {limits.seconds:g} s and was stopped; nothing was changed. "
            f"Make the SQL cheaper (a recursive CTE without an end, a cross join?) or raise the limit with --time-limit."
        ) from None
    except duckdb.OutOfMemoryException as exc:
        raise GensynthError(
            f"{what} needed more memory than the limit of {limits.memory} and was stopped ({str(exc).splitlines()[0]}); "
            f"nothing was changed. Make the SQL leaner or raise the limit with --memory-limit."
        ) from None
    finally:
        stop.set()
        watcher.join()
        if old_fd is not None:
            signal.set_wakeup_fd(old_fd)
        receiver.close()
        sender.close()
        with contextlib.suppress(duckdb.Error):
            con.execute("RESET memory_limit")
