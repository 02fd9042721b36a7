"""The warehouse: one DuckDB file holding every table and view.

Opening checks that the file is a gensynth warehouse of a schema version this code
understands. ``building`` writes a new warehouse beside the old one and swaps it in only
when complete, so an interrupted build leaves the previous file untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterator

import duckdb

from gensynth.errors import GensynthError

# Bump when the layout of derived tables or the meaning of a column changes.
SCHEMA_VERSION = 2  # 2: functions/tasks_beyond.value_hash2, a new row hash; syn_basis; centred syn_coords
DEFAULT_WAREHOUSE = Path("warehouse") / "gensynth.duckdb"
SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def default_warehouse_path() -> Path:
    """``$GENSYNTH_WAREHOUSE`` if set, else ``warehouse/gensynth.duckdb``."""
    return Path(os.environ.get("GENSYNTH_WAREHOUSE", DEFAULT_WAREHOUSE))


def sql_text(relative: str) -> str:
    """The text of a file under ``sql/`` (e.g. ``'build/functions.sql'``)."""
    path = SQL_DIR / relative
    if not path.is_file():
        raise GensynthError(f"SQL file '{path}' is missing; reinstall gensynth from its source tree (pip install -e .).")
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


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Connect to a DuckDB file with gensynth's session settings."""
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("SET enable_progress_bar = false")
    return con


def open_warehouse(path: Path, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """Open an existing warehouse after checking it exists and its schema version fits."""
    path = Path(path)
    if not path.is_file():
        raise GensynthError(
            f"No warehouse at '{path}'. Build one first with `gensynth build --warehouse {path}` "
            f"(or point --warehouse / $GENSYNTH_WAREHOUSE at an existing file)."
        )
    try:
        con = connect(path, read_only=read_only)
    except duckdb.IOException as exc:
        raise GensynthError(f"Cannot open warehouse '{path}': {exc}. Close other programs writing to it and retry.") from None
    check_schema_version(con, path)
    return con


def read_meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """All of ``meta`` as a dict."""
    return dict(con.execute("SELECT key, value FROM meta").fetchall())


def check_schema_version(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse a file that is not a gensynth warehouse, or was written by a newer gensynth."""
    has_meta = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'meta' AND schema_name = 'main'"
    ).fetchone()[0]
    if not has_meta:
        con.close()
        raise GensynthError(f"'{path}' is a DuckDB file but not a gensynth warehouse (it has no `meta` table). Point --warehouse at a warehouse written by `gensynth build`.")
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row else 0
    if version != SCHEMA_VERSION:
        con.close()
        newer = version > SCHEMA_VERSION
        raise GensynthError(
            f"Warehouse '{path}' has schema version {version}, but this gensynth reads version {SCHEMA_VERSION}. "
            + ("It was written by a newer gensynth: upgrade gensynth (pip install -e . from a newer checkout)."
               if newer else "It was written by an older gensynth: rebuild it with `gensynth build`.")
        )


def check_writable_location(path: Path) -> None:
    """Fail early, before any work, if a warehouse cannot be written at ``path``."""
    parent = path.resolve().parent
    if path.is_dir():
        raise GensynthError(f"Cannot write warehouse '{path}': it is a directory. Give a file path, e.g. --warehouse {path / 'gensynth.duckdb'}.")
    if parent.exists() and not parent.is_dir():
        raise GensynthError(f"Cannot write warehouse '{path}': '{parent}' is a file, not a directory. Choose another --warehouse path.")
    if not parent.is_dir():
        raise GensynthError(f"Cannot write warehouse '{path}': directory '{parent}' does not exist. Create it (mkdir -p {parent}) or choose another --warehouse path.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GensynthError(f"Cannot write warehouse '{path}': directory '{parent}' is not writable. Choose a writable --warehouse path or fix the directory's permissions.")
    if path.exists() and path.is_file():
        try:
            con = connect(path, read_only=True)
        except duckdb.Error as exc:
            raise GensynthError(f"'{path}' exists but is not a DuckDB file ({exc}). Move it away or choose another --warehouse path.") from None
        try:
            if con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'meta'").fetchone()[0]:
                check_schema_version(con, path)
        finally:
            with contextlib.suppress(duckdb.Error):
                con.close()


@contextlib.contextmanager
def building(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to a fresh file beside ``path``; swapped in atomically on success.

    On any exception (Ctrl-C included) the partial file is deleted and ``path`` is left as
    it was. A build killed outright leaves only a ``.building-*`` file that is never read
    as a warehouse and is cleaned by the next build.
    """
    path = Path(path)
    check_writable_location(path)
    for stale in path.parent.glob(f".{path.name}.building-*"):
        with contextlib.suppress(OSError):
            if not _pid_alive(int(stale.name.rsplit("-", 1)[1].split(".")[0])):
                stale.unlink()
    tmp = path.with_name(f".{path.name}.building-{os.getpid()}")
    _remove(tmp)
    con = connect(tmp)
    try:
        yield con
        con.execute("CHECKPOINT")
        con.close()
        os.replace(tmp, path)
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


def write_meta(con: duckdb.DuckDBPyConnection, items: dict[str, object]) -> None:
    """Insert or replace ``meta`` rows; non-string values are stored as JSON."""
    rows = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in items.items()]
    con.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows)
