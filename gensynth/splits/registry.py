"""The splits stage: named SELECTs over the manifold that give programs a role.

A split is one SELECT returning ``program_id`` and ``role`` (``train``, ``val`` or
``test_<name>``), kept in a file ``sql/splits/<name>.sql`` whose header comment says what
it tests and whose ``-- kind: density`` / ``-- kind: support`` line declares its kind. It
is registered as the plain-SQL view ``split_<name>`` (it works in the stock DuckDB shell)
and recorded in the ``splits`` table (sql/splits_registry.sql).

Writes: ``manifold_cells`` (sql/sampling/cells.sql: the finite programs of ``manifold``
with function, n_ops, depth, radii and their cell on each manifold; the sampling frame,
narrow so that splits over the full universe run in seconds), the sampling table macros
``sample_natural | sample_syntactic | sample_semantic | sample_diverse(pool, n, seed)``
(sql/sampling/), ``splits`` and one ``split_<name>`` view per split.

Sampling strategies draw from a pool of ``manifold_cells`` rows, so only programs whose
function is finite (``manifold.sem IS NOT NULL``): a program undefined somewhere on the
grid has no semantic coordinates and no complete input/output example. They are
deterministic for a seed because they order by ``hash(..., seed)``, never ``random()``:

- ``natural``: uniform over programs.
- ``syntactic`` / ``semantic``: uniform over the cells of the syntactic / semantic
  manifold: 8 equal-width bins on each of the first 3 coordinates between their 1st and
  99th percentile (512 cells; see sql/sampling/cells.sql), drawn round-robin, a uniform
  program within each cell.
- ``diverse``: uniform over functions, then uniform over the drawn function's programs.

Built-in splits (sql/splits/): ``density_<s>`` for each strategy and ``support_syntactic``,
``support_semantic``, ``support_joint``. Their sizes live in each file's ``params`` CTE:
train 50,000, val 2,000 and 2,000 for each ``test_*`` role, seed 0. On a smaller universe
a role gets what its pool holds and registration prints a notice.

Flatness (``gensynth split show``): the normalised entropy of a role's occupancy
histogram, H(p) / ln K, where p is the share of the role's finite programs in each cell
and K the number of cells the universe's finite programs occupy. 1 means the role covers
every occupied cell equally; a role dominated by a few dense cells is near 0. It is
computed on the syntactic grid, on the semantic grid and over functions (each function a
cell: the measure ``diverse`` flattens), and for the universe itself (the natural
density) as a reference.

Validation before anything runs (``parse_split``): sqlglot reads the SQL; it must be
exactly one SELECT (CTEs allowed) with no DDL/DML/ATTACH/COPY/PRAGMA/SET/..., call no
table function that reads files or the network (and no table function but ``range``,
``generate_series``, ``unnest`` and the warehouse's table macros), and name only
existing tables, views, CTEs and columns (qualified against the live schema, with a "did
you mean"). DuckDB's own parser then confirms one SELECT and binds it; the output must
be exactly ``program_id, role``. After running it: no program in two roles, no program
twice, ``train`` non-empty, roles well-formed, program ids that exist; a ``support``
split may share no function between ``train`` and any ``test_*`` role. A refused split
leaves the warehouse unchanged: ``add`` validates and runs the split on a read-only
connection with external access disabled before it opens the file for writing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import hashlib
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp

from gensynth.errors import GensynthError
from gensynth.sqldoc import select_column_docs
from gensynth.warehouse import SQL_DIR, open_warehouse, run_sql, sql_text

STRATEGIES = ("natural", "syntactic", "semantic", "diverse")
KINDS = ("density", "support")
# sql/sampling/ files in the order they are installed (cells first: the macros read it).
SAMPLING_FILES = ("cells",) + STRATEGIES
ROLE_RE = re.compile(r"^(train|val|test_[a-z0-9_]+)$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
CELLS_PER_AXIS, CELL_DIMS = 8, 3  # must match sql/sampling/cells.sql
# The grids flatness is measured on: name -> manifold_cells column.
GRIDS = {"syntactic": "syn_cell", "semantic": "sem_cell", "functions": "function_id"}

# Table functions that read or write files or reach the network (DuckDB core and extensions).
FILE_FUNCTIONS = {
    "read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "read_json", "read_json_auto",
    "read_json_objects", "read_json_objects_auto", "read_ndjson", "read_ndjson_auto",
    "read_ndjson_objects", "read_text", "read_blob", "glob", "sniff_csv", "iceberg_scan",
    "iceberg_metadata", "iceberg_snapshots", "delta_scan", "parquet_metadata", "parquet_schema",
    "parquet_file_metadata", "parquet_kv_metadata", "parquet_bloom_probe", "read_xlsx", "st_read",
    "sqlite_scan", "sqlite_attach", "postgres_scan", "postgres_attach", "mysql_scan", "read_duckdb",
    "readcsv", "readparquet", "readjson",
}
# Table functions that take SQL or a table name as a string, which cannot be checked
# before running (a string can even name a file, read by a replacement scan).
STRING_SQL_FUNCTIONS = {"query", "query_table"}
# Scalar functions whose value depends on the session or changes on every read: a view
# using them would not give the same split in training, evaluation and the shell.
UNSTABLE_FUNCTIONS = {
    "random": "returns a new value on every read, so the split would change between training and evaluation; order by hash(program_id, seed) instead",
    "rand": "returns a new value on every read, so the split would change between training and evaluation; order by hash(program_id, seed) instead",
    "setseed": "changes session state; order by hash(program_id, seed) instead",
    "uuid": "returns a new value on every read; use hash(program_id, seed)",
    "gen_random_uuid": "returns a new value on every read; use hash(program_id, seed)",
    "uuidv4": "returns a new value on every read; use hash(program_id, seed)",
    "uuidv7": "returns a new value on every read; use hash(program_id, seed)",
    "nextval": "changes a sequence on every read",
    "currval": "depends on session state",
    "getvariable": "reads a session variable, which the stock shell and later sessions do not have; write the value into the SQL (e.g. a params CTE)",
    "getenv": "reads the environment, which differs between machines; write the value into the SQL",
}
ALLOWED_TABLE_FUNCTIONS = {"range", "generate_series", "unnest", "generateseries"}
# Whole statements a split may not contain, by sqlglot expression class.
FORBIDDEN_NODES = tuple(
    cls for cls in (getattr(exp, n, None) for n in (
        "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "Copy", "Attach", "Detach",
        "Pragma", "Set", "Command", "Use", "Install", "Describe", "Export", "Transaction", "Commit",
        "Rollback", "TruncateTable", "Analyze", "Summarize", "Show", "Grant", "Revoke", "LoadData",
        "Kill", "Declare", "Cache", "Uncache", "Refresh"))
    if cls is not None
)
PATH_LIKE = re.compile(
    r"(://|^[~/.\\]|[/\\*?]|\.(csv|tsv|txt|parquet|json|jsonl|ndjson|db|duckdb|sqlite|xlsx|arrow|gz|zst)$)", re.I
)


# ----------------------------------------------------------------------------------------
# What a split is made of
# ----------------------------------------------------------------------------------------

@dataclass
class SplitSQL:
    """A split's SQL after static validation."""

    name: str
    kind: str
    description: str  # the header comment, without the `-- kind:` line
    text: str  # the file exactly as written (stored in splits.sql_text)
    body: str  # the one SELECT as DuckDB reads it, without a trailing semicolon
    columns: dict[str, str]  # selected column -> its trailing comment ('' if none)
    requested: dict[str, int]  # size asked for per role, from the params CTE (n_train, n_val, n_test, n_<role>)
    declared_roles: list[str]  # role literals of the top-level SELECTs, in order
    source: str = "builtin"

    @property
    def sql_hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def view(self) -> str:
        return f"split_{self.name}"


@dataclass
class SplitReport:
    """What running a split produced: roles, their sizes, and notices for the user."""

    name: str
    kind: str
    roles: dict[str, int]  # role -> programs
    functions: dict[str, int]  # role -> distinct functions
    train_overlap: dict[str, int]  # test_* role -> functions shared with train
    requested: dict[str, int]
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class RoleStats:
    """One row of `gensynth split show`."""

    role: str
    programs: int
    requested: int | None
    pool: int | None
    functions: int
    train_overlap: int | None  # functions shared with train (test roles only)
    nonfinite: int  # programs whose function is not finite (not on the semantic manifold)
    syn_radius: tuple[float, float, float] | None  # 10th, 50th, 90th percentile over the role's finite programs
    sem_radius: tuple[float, float, float] | None
    n_ops: dict[int, int]  # n_ops -> programs
    flatness: dict[str, float | None]  # grid ('syntactic', 'semantic', 'functions') -> normalised entropy
    cells: dict[str, int]  # grid -> distinct cells the role's finite programs occupy


@dataclass
class SplitStats:
    """Everything `gensynth split show` prints."""

    name: str
    kind: str
    description: str
    source: str
    sql_hash: str
    created_at: str
    notes: str
    columns: dict[str, str]
    roles: list[RoleStats]
    universe_flatness: dict[str, float | None]  # grid -> flatness of all finite programs (the natural density)
    occupied: dict[str, int]  # grid -> cells the universe's finite programs occupy


# ----------------------------------------------------------------------------------------
# Built-ins and installation
# ----------------------------------------------------------------------------------------

def builtin_names() -> list[str]:
    """Names of the built-in splits (sql/splits/*.sql), density first."""
    names = [p.stem for p in (SQL_DIR / "splits").glob("*.sql")]
    return sorted(names, key=lambda n: (not n.startswith("density_"), n))


def builtin_sql(name: str) -> str:
    """The text of built-in split ``name``."""
    return sql_text(f"splits/{name}.sql")


def install_sampling(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``splits`` table (if missing), ``manifold_cells`` and the sampling macros."""
    if not _relation_exists(con, "manifold"):
        raise GensynthError(
            "This warehouse has no `manifold` view, which splits are drawn from. Build the manifolds first "
            "(`gensynth build` runs every stage)."
        )
    run_sql(con, "splits_registry.sql")
    for name in SAMPLING_FILES:
        run_sql(con, f"sampling/{name}.sql")


def register_builtin_splits(con: duckdb.DuckDBPyConnection, stages=None, quiet: bool = False) -> list[str]:
    """Install sampling and register every built-in split on ``con`` (inside ``gensynth build``).

    ``stages`` (a ``gensynth.progress.Stages``) times each split as its own stage. A
    built-in whose rows fail a check on this universe (e.g. an empty train on a tiny
    one) is skipped with a notice; a built-in that fails static validation is a bug and
    raises. Returns the names registered.
    """
    quiet = quiet or bool(getattr(stages, "quiet", False))
    with _stage(stages, "split cells"):
        install_sampling(con)
    registered = []
    for name in builtin_names():
        with _stage(stages, f"split {name}"):
            split = parse_split(con, name, builtin_sql(name), source="builtin")
            try:
                report = register_split(con, split)
            except GensynthError as exc:
                _notice(f"Built-in split '{name}' was not registered on this universe: {exc}", quiet)
                continue
        for line in report.notices:
            _notice(f"split {name}: {line}", quiet)
        registered.append(name)
    return registered


def register_split(con: duckdb.DuckDBPyConnection, split: SplitSQL, report: SplitReport | None = None) -> SplitReport:
    """Create ``split_<name>`` and its ``splits`` row in one transaction on a writable ``con``.

    Without ``report`` the split is run and checked inside the transaction first; with
    one (from a dry run on a read-only connection) it is only registered. On any failure
    the transaction is rolled back.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        run_sql(con, "splits_registry.sql")
        _create_view(con, split.view, split.body)
        if report is None:
            report = materialise_and_check(con, split.view, split)
        con.execute(
            "INSERT OR REPLACE INTO splits VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [split.name, split.kind, split.description, split.text, split.sql_hash, split.source,
             json.dumps(report.roles), "\n".join(report.notices), dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return report


# ----------------------------------------------------------------------------------------
# Commands on an existing warehouse (what the CLI calls)
# ----------------------------------------------------------------------------------------

def add_split(path: Path, file: Path, name: str | None = None, replace: bool = False) -> SplitReport:
    """Validate, run and register the split in ``file``; the warehouse is untouched on refusal.

    Everything that can fail runs first on a read-only, sandboxed connection (TEMP view);
    only then is the file opened for writing to create the view and the registry row.
    """
    file = Path(file)
    if not file.is_file():
        raise GensynthError(f"No split file '{file}'. Pass the path of a .sql file holding one SELECT (see sql/splits/ for examples).")
    name = name or file.stem
    check_name(name)
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise GensynthError(f"Cannot read split file '{file}': {exc}. Save it as UTF-8 text.") from None
    con = open_warehouse(path, read_only=True)
    try:
        sandbox(con)
        _require_sampling(con, path)
        if not replace and name in registered_names(con):
            raise GensynthError(
                f"A split named '{name}' is already registered in '{path}'. Pass --replace to replace it, "
                f"--name to register this file under another name, or `gensynth split drop {name}` first."
            )
        split = parse_split(con, name, text, source=str(file))
        temp = "__gensynth_split_check"
        _create_view(con, temp, split.body, temp_view=True)
        try:
            report = materialise_and_check(con, temp, split)
        finally:
            with contextlib.suppress(duckdb.Error):
                con.execute(f"DROP VIEW IF EXISTS temp.{temp}")
    finally:
        con.close()
    con = open_warehouse(path, read_only=False)
    try:
        sandbox(con)
        if not replace and name in registered_names(con):
            raise GensynthError(f"A split named '{name}' was registered in '{path}' meanwhile. Pass --replace to replace it.")
        register_split(con, split, report)
    finally:
        con.close()
    return report


def check_split(con: duckdb.DuckDBPyConnection, name: str) -> SplitReport:
    """Re-validate a registered split against the warehouse as it is now and re-run its checks."""
    row = _registry_row(con, name)
    text, stored_hash, source = row["sql_text"], row["sql_hash"], row["source"]
    split = parse_split(con, name, text, source=source)
    if split.sql_hash != stored_hash:
        raise GensynthError(f"Split '{name}': the stored SQL does not match its stored hash; the `splits` row was edited by hand. Re-add it with `gensynth split add FILE --name {name} --replace`.")
    if not _relation_exists(con, split.view):
        raise GensynthError(f"Split '{name}' is registered but its view {split.view} is missing. Re-add it with `gensynth split add FILE --name {name} --replace`.")
    report = materialise_and_check(con, split.view, split)
    if source == "builtin" and (SQL_DIR / "splits" / f"{name}.sql").is_file() and builtin_sql(name) != text:
        report.notices.append(f"sql/splits/{name}.sql has changed since this warehouse was built; rebuild (`gensynth build`) to register the new version.")
    return report


def drop_split(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop ``split_<name>`` and its ``splits`` row (one transaction)."""
    _registry_row(con, name)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DROP VIEW IF EXISTS split_{name}")
        con.execute("DELETE FROM splits WHERE name = ?", [name])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def list_splits(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The ``splits`` table as dicts (``roles`` parsed), by name."""
    if not _relation_exists(con, "splits"):
        return []
    cur = con.execute("SELECT name, kind, description, source, roles, notes, created_at, sql_hash FROM splits ORDER BY name")
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    for r in rows:
        r["roles"] = json.loads(r["roles"])
    return rows


def registered_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names in the ``splits`` table (empty if the table does not exist)."""
    if not _relation_exists(con, "splits"):
        return []
    return [r[0] for r in con.execute("SELECT name FROM splits ORDER BY name").fetchall()]


def export_split(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> int:
    """Write the split, joined to its programs' text, to a Parquet file with DuckDB COPY.

    Columns: program_id, role, function_id, n_ops, depth, prefix, infix. Returns rows written.
    """
    _registry_row(con, name)
    path = Path(path)
    if path.is_dir():
        raise GensynthError(f"--parquet '{path}' is a directory. Give a file path, e.g. {path / (name + '.parquet')}.")
    if not path.resolve().parent.is_dir():
        raise GensynthError(f"Cannot write '{path}': directory '{path.resolve().parent}' does not exist. Create it or choose another --parquet path.")
    target = str(path).replace("'", "''")
    con.execute(
        f"COPY (SELECT s.program_id, s.role, p.function_id, p.n_ops, p.depth, p.prefix, p.infix "
        f"FROM split_{name} s JOIN programs p USING (program_id) ORDER BY s.role, s.program_id) "
        f"TO '{target}' (FORMAT parquet)"
    )
    return con.execute(f"SELECT count(*) FROM split_{name}").fetchone()[0]


def split_stats(con: duckdb.DuckDBPyConnection, name: str) -> SplitStats:
    """Per-role counts, functions, train overlap, radius/n_ops distributions and flatness."""
    row = _registry_row(con, name)
    split = parse_split(con, name, row["sql_text"], source=row["source"])
    rows = "__gensynth_split_rows"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {rows} AS SELECT program_id, role FROM split_{name}")
    try:
        report = _role_counts(con, rows)
        pools = _pool_sizes(con, split)
        dist = {r[0]: r[1:] for r in con.execute(f"""
            SELECT r.role,
                   count(*) FILTER (WHERE c.program_id IS NULL),
                   quantile_cont(c.syn_radius, [0.1, 0.5, 0.9]),
                   quantile_cont(c.sem_radius, [0.1, 0.5, 0.9])
            FROM {rows} r LEFT JOIN manifold_cells c USING (program_id) GROUP BY r.role""").fetchall()}
        n_ops: dict[str, dict[int, int]] = {}
        for role, ops, n in con.execute(f"""
                SELECT r.role, p.n_ops, count(*) FROM {rows} r JOIN programs p USING (program_id)
                GROUP BY ALL ORDER BY ALL""").fetchall():
            n_ops.setdefault(role, {})[int(ops)] = n
        flat, cells_hit, occupied, universe = flatness(con, rows)
    finally:
        con.execute(f"DROP TABLE IF EXISTS temp.{rows}")
    roles = []
    for role in _role_order(report.roles, split.declared_roles):
        nonfinite, syn_q, sem_q = dist.get(role, (0, None, None))
        roles.append(RoleStats(
            role=role, programs=report.roles.get(role, 0), requested=_requested(split.requested, role),
            pool=pools.get(role), functions=report.functions.get(role, 0),
            train_overlap=report.train_overlap.get(role) if role.startswith("test_") else None,
            nonfinite=int(nonfinite or 0),
            syn_radius=tuple(syn_q) if syn_q else None, sem_radius=tuple(sem_q) if sem_q else None,
            n_ops=n_ops.get(role, {}),
            flatness={g: flat.get((g, role)) for g in GRIDS},
            cells={g: cells_hit.get((g, role), 0) for g in GRIDS},
        ))
    return SplitStats(
        name=name, kind=split.kind, description=split.description, source=row["source"],
        sql_hash=row["sql_hash"], created_at=str(row["created_at"]), notes=row["notes"],
        columns=split.columns, roles=roles,
        universe_flatness=universe, occupied=occupied,
    )


def sandbox(con: duckdb.DuckDBPyConnection) -> None:
    """Forbid file and network access on ``con`` for the rest of its life (defence in depth)."""
    con.execute("SET enable_external_access = false")


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise GensynthError(
            f"'{name}' is not a valid split name: use lowercase letters, digits and underscores, starting with a "
            f"letter (it becomes the view split_{name}). Pass --name to choose one."
        )


# ----------------------------------------------------------------------------------------
# Static validation
# ----------------------------------------------------------------------------------------

def parse_split(con: duckdb.DuckDBPyConnection, name: str, text: str, source: str = "builtin") -> SplitSQL:
    """Validate a split's SQL against the live warehouse without running it.

    Raises ``GensynthError`` listing every problem found, each with its line, column and
    the offending fragment. Nothing is executed except DuckDB's parser and binder, and
    those only once the SQL is known to read nothing but the warehouse.
    """
    check_name(name)
    where = f"Split '{name}'" + (f" ({source})" if source and source != "builtin" else "")
    if not _strip_comments(text).strip().strip(";").strip():
        raise GensynthError(f"{where} is empty. A split is one SELECT returning program_id and role; see sql/splits/ for examples.")
    kind = _kind(text)
    if kind is None:
        raise GensynthError(f"{where} has no `-- kind:` line. Add a comment line `-- kind: density` or `-- kind: support` to its header.")
    if kind not in KINDS:
        guess = difflib.get_close_matches(kind, KINDS, n=1)
        raise GensynthError(f"{where} declares `-- kind: {kind}`, but the kinds are {' and '.join(KINDS)}" + (f" (did you mean '{guess[0]}'?)" if guess else "")
                            + ". Fix the line to `-- kind: density` or `-- kind: support`.")

    dialect = sqlglot.Dialect.get_or_raise("duckdb")
    try:
        tokens = dialect.tokenize(text)
    except sqlglot.errors.TokenError as exc:
        raise GensynthError(f"{where} cannot be read: {exc}. Check for an unterminated string or comment.") from None
    statements = _statements(tokens)
    problems: list[str] = []
    for i, stmt in enumerate(statements):
        first = stmt[0]
        frag = _fragment(text, first.start, stmt[-1].end + 1)
        line, col = _loc(text, first.start)
        if i == 0 and first.text.upper() not in ("SELECT", "WITH", "FROM", "("):
            problems.append(f"line {line}, column {col}: `{frag}`: {first.text.upper()} statements are not allowed; a split may only read (one SELECT, CTEs allowed)")
        elif i > 0:
            problems.append(f"line {line}, column {col}: a second statement `{frag}`; a split is exactly one SELECT, so remove everything after the first")
    if problems:
        raise _refusal(where, problems)

    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        parsed = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        err = exc.errors[0] if exc.errors else {}
        near = (err.get("highlight") or "").strip()
        raise GensynthError(
            f"{where} is not valid SQL: line {err.get('line', '?')}, column {err.get('col', '?')}"
            + (f" near `{near}`" if near else "") + f": {err.get('description') or exc}. Fix the syntax (a split is one DuckDB SELECT)."
        ) from None
    finally:
        logger.setLevel(level)
    if len(parsed) != 1 or not isinstance(parsed[0], exp.Query):
        kind_name = type(parsed[0]).__name__.upper() if parsed else "empty"
        raise _refusal(where, [f"line 1, column 1: the SQL is a statement of type {kind_name}, not a SELECT; a split is exactly one SELECT (CTEs allowed)"])
    root = parsed[0]

    schema = _warehouse_schema(con)
    macros = _table_macros(con)
    ctes = {c.alias_or_name.lower(): c for c in root.find_all(exp.CTE)}
    used: dict[str, int] = {}

    for node in root.walk():
        if isinstance(node, FORBIDDEN_NODES):
            off, frag = _node_location(text, tokens, node, used)
            line, col = _loc(text, off)
            problems.append(f"line {line}, column {col}: `{frag}`: {node.key.upper()} statements are not allowed; a split may only read")

    for node in root.find_all(exp.Func):
        fname = _func_name(node)
        is_table_fn = isinstance(node.parent, exp.Table) and node.parent.this is node
        spellings = _spellings(node)
        names = set(spellings) | {fname}
        off, frag = _call_location(text, tokens, spellings, used)
        line, col = _loc(text, off)
        at = f"line {line}, column {col}: `{frag}`"
        unstable = sorted(names & UNSTABLE_FUNCTIONS.keys())
        if names & FILE_FUNCTIONS:
            problems.append(f"{at} reads files or the network; a split may read only the warehouse's tables and views")
        elif names & STRING_SQL_FUNCTIONS:
            problems.append(f"{at} takes SQL or a table name as a string, which cannot be checked (a string may even name a file); refer to the table or CTE directly")
        elif unstable:
            problems.append(f"{at} {UNSTABLE_FUNCTIONS[unstable[0]]}")
        elif is_table_fn and fname not in ALLOWED_TABLE_FUNCTIONS and fname not in macros:
            allowed = ", ".join(sorted(m for m in macros) + ["range", "generate_series", "unnest"])
            problems.append(f"{at} is not a table function a split may use (allowed: {allowed})")
        elif is_table_fn and fname in macros:
            args = node.expressions
            for arg in args:
                if isinstance(arg, exp.Literal) and arg.is_string and PATH_LIKE.search(arg.this):
                    problems.append(f"{at} passes '{arg.this}', which looks like a file or URL; a split may read only the warehouse")
            if fname.startswith("sample_") and args:
                pool = args[0]
                if not (isinstance(pool, exp.Literal) and pool.is_string):
                    problems.append(f"{at}: the first argument of {fname} must be the quoted name of a CTE, table or view holding program_id, e.g. {fname}('train_pool', 1000, 0)")
                elif not PATH_LIKE.search(pool.this) and pool.this.lower() not in ctes and pool.this.lower() not in schema:
                    problems.append(f"{at}: pool '{pool.this}' names no CTE, table or view" + _did_you_mean(pool.this, list(ctes) + list(schema)))

    for table in root.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue
        tname = table.this.name
        off = table.this.meta.get("start")
        if off is None:
            off, _ = _word_location(text, tokens, tname, used)
        line, col = _loc(text, off)
        at = f"line {line}, column {col}: `{_fragment(text, off, off + len(tname) + 2)}`"
        db, catalog = table.args.get("db"), table.args.get("catalog")
        if PATH_LIKE.search(tname):
            problems.append(f"{at} reads a file or URL; a split may read only the warehouse's tables and views")
        elif (db is not None and db.name.lower() not in ("main",)) or catalog is not None:
            problems.append(f"{at} refers to another database or schema; a split may read only this warehouse's main schema")
        elif tname.lower() not in ctes and tname.lower() not in schema:
            problems.append(f"{at}: no table or view '{tname}' in the warehouse" + _did_you_mean(tname, list(ctes) + list(schema)))
    if problems:
        raise _refusal(where, problems)

    column_problems = _unknown_columns(text, root, schema, macros)

    # DuckDB's own parser decides what would run: it must agree that this is one SELECT.
    try:
        duck = con.extract_statements(text)
    except duckdb.Error as exc:
        raise GensynthError(f"{where} is not valid DuckDB SQL: {_first_line(exc)}. Fix the syntax.") from None
    if len(duck) != 1 or duck[0].type != duckdb.StatementType.SELECT:
        raise _refusal(where, [f"DuckDB reads {len(duck)} statement(s) of type {', '.join(s.type.name for s in duck)}; a split is exactly one SELECT"])
    body = duck[0].query.rstrip().rstrip(";")
    # Binding is safe now: the SQL reads nothing but the warehouse. sqlglot's column
    # findings (with their suggestions) stand when DuckDB agrees something is unbound;
    # when DuckDB binds the SQL, they were sqlglot not modelling a DuckDB feature.
    try:
        described = con.execute(f"DESCRIBE {body}\n").fetchall()
    except duckdb.Error as exc:
        if column_problems:
            raise _refusal(where, column_problems) from None
        raise GensynthError(f"{where}: DuckDB cannot bind the SQL: {_first_line(exc)} Fix the names or types it points at.") from None
    names = [r[0] for r in described]
    if sorted(n.lower() for n in names) != ["program_id", "role"]:
        raise _refusal(where, [f"it returns columns ({', '.join(names)}); a split returns exactly two columns, program_id and role (alias them: `... AS role`)"])
    types = {r[0].lower(): r[1] for r in described}
    if not re.search(r"INT", types["program_id"]) or types["role"] != "VARCHAR":
        raise _refusal(where, [f"program_id is {types['program_id']} and role is {types['role']}; program_id must be an integer (programs.program_id) and role text"])

    return SplitSQL(
        name=name, kind=kind, description=_description(text), text=text, body=body,
        columns=_column_docs(root), requested=_params(root), declared_roles=_declared_roles(root), source=source,
    )


def _unknown_columns(text: str, root, schema: dict[str, dict[str, str]], macros: dict[str, list[str]]) -> list[str]:
    """Qualify the query with sqlglot against the live schema; report unresolvable columns.

    Table-macro calls become placeholder tables with the macro's output columns. sqlglot
    is not DuckDB: anything it cannot judge is left for DuckDB's binder to decide.
    """
    from sqlglot.errors import OptimizeError
    from sqlglot.optimizer.qualify import qualify

    tree = root.copy()
    local = {t: dict(cols) for t, cols in schema.items()}
    for i, table in enumerate(list(tree.find_all(exp.Table))):
        if isinstance(table.this, exp.Func) and _func_name(table.this) in macros:
            placeholder = f"__macro_{i}"
            local[placeholder] = {c: "UNKNOWN" for c in macros[_func_name(table.this)]}
            new = exp.Table(this=exp.to_identifier(placeholder))
            if table.args.get("alias") is not None:
                new.set("alias", table.args["alias"].copy())
            table.replace(new)
    candidates = sorted({c for cols in local.values() for c in cols}
                        | {s for cte in tree.find_all(exp.CTE) for s in cte.this.named_selects if s})
    problems: list[str] = []
    for _ in range(20):
        try:
            qualify(tree.copy(), schema=local, dialect="duckdb", validate_qualify_columns=True)
            break
        except OptimizeError as exc:
            m = re.search(r"Column '(.+?)' could not be resolved", str(exc))
            if not m:
                break
            column = m.group(1).replace('"', "").split(".")[-1]
            nodes = [c for c in tree.find_all(exp.Column) if c.name.lower() == column.lower()]
            if not nodes:
                break
            off = nodes[0].this.meta.get("start", 0)
            line, col = _loc(text, off)
            problems.append(f"line {line}, column {col}: no column '{column}'" + _did_you_mean(column, candidates))
            for node in nodes:
                node.replace(exp.Null())
        except Exception:  # sqlglot cannot model this SQL; DuckDB's binder decides below
            break
    return problems


# ----------------------------------------------------------------------------------------
# Running and checking
# ----------------------------------------------------------------------------------------

def materialise_and_check(con: duckdb.DuckDBPyConnection, relation: str, split: SplitSQL) -> SplitReport:
    """Run the split once into a TEMP table and check its rows; raises on any violation."""
    start = time.perf_counter()
    rows = "__gensynth_split_rows"
    where = f"Split '{split.name}'" + (f" ({split.source})" if split.source != "builtin" else "")
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {rows} AS SELECT program_id, role FROM {relation}")
    except duckdb.Error as exc:
        raise GensynthError(f"{where} was not registered: it failed when run: {_first_line(exc)} Fix the SQL and retry; the warehouse was not changed.") from None
    try:
        problems = []
        nulls = con.execute(f"SELECT count(*) FROM {rows} WHERE program_id IS NULL OR role IS NULL").fetchone()[0]
        if nulls:
            problems.append(f"{nulls:,} rows have a NULL program_id or role")
        report = _role_counts(con, rows)
        report.name, report.kind, report.requested = split.name, split.kind, split.requested
        report.roles = {r: report.roles[r] for r in _role_order(report.roles, split.declared_roles) if r in report.roles}
        bad = sorted(r for r in report.roles if r is not None and not ROLE_RE.match(r))
        if bad:
            problems.append(f"roles {', '.join(repr(b) for b in bad)} are not train, val or test_<name> (lowercase letters, digits, _)")
        if not report.roles.get("train"):
            problems.append("train is empty; a split needs training programs")
        dupes = con.execute(f"""SELECT role, count(*) - count(DISTINCT program_id) FROM {rows}
                                GROUP BY role HAVING count(*) > count(DISTINCT program_id) ORDER BY role""").fetchall()
        for role, extra in dupes:
            problems.append(f"role {role} lists {extra:,} programs more than once (use SELECT DISTINCT)")
        shared, example = con.execute(f"""
            WITH multi AS (SELECT program_id, list(DISTINCT role ORDER BY role) AS roles FROM {rows}
                           GROUP BY program_id HAVING count(DISTINCT role) > 1)
            SELECT (SELECT count(*) FROM multi), (SELECT {{'id': program_id, 'roles': roles}} FROM multi ORDER BY program_id LIMIT 1)""").fetchone()
        if shared:
            what = "a density split draws every role from disjoint programs" if split.kind == "density" else "every program has one role"
            problems.append(f"{shared:,} programs are in more than one role (e.g. program {example['id']} in {' and '.join(example['roles'])}); {what}")
        unknown = con.execute(f"SELECT count(*) FROM {rows} r WHERE NOT EXISTS (SELECT 1 FROM programs p WHERE p.program_id = r.program_id)").fetchone()[0]
        if unknown:
            problems.append(f"{unknown:,} program_id values are not in programs")
        if split.kind == "support":
            for role, n in sorted(report.train_overlap.items()):
                if n:
                    problems.append(f"role {role} shares {n:,} functions with train; a support split's test roles must be function-disjoint from train")
        if problems:
            raise _refusal(where, problems, ran=True)
        clipped, empty = [], []
        for role in _role_order(report.roles, split.declared_roles):
            asked = _requested(split.requested, role)
            got = report.roles.get(role, 0)
            if got == 0:
                empty.append(role)
            elif asked is not None and got < asked:
                param = f"n_{role}" if f"n_{role}" in split.requested else ("n_test" if role.startswith("test_") else f"n_{role}")
                clipped.append(f"{role} {got:,} of {asked:,} ({param})")
        if clipped:
            report.notices.append(f"clipped to what the pools hold on this universe: {'; '.join(clipped)}")
        if empty:
            report.notices.append(f"empty on this universe: {', '.join(empty)}")
    finally:
        with contextlib.suppress(duckdb.Error):  # an aborted transaction is rolled back by the caller
            con.execute(f"DROP TABLE IF EXISTS temp.{rows}")
    report.seconds = time.perf_counter() - start
    return report


def _role_counts(con: duckdb.DuckDBPyConnection, rows: str) -> SplitReport:
    counts = {}
    functions = {}
    overlap = {}
    for role, n, nf, shared in con.execute(f"""
            WITH s AS (SELECT r.role, r.program_id, p.function_id FROM {rows} r LEFT JOIN programs p USING (program_id)),
                 train_functions AS (SELECT DISTINCT function_id FROM s WHERE role = 'train')
            SELECT role, count(*), count(DISTINCT function_id),
                   count(DISTINCT function_id) FILTER (WHERE function_id IN (SELECT function_id FROM train_functions))
            FROM s GROUP BY role ORDER BY role""").fetchall():
        counts[role], functions[role] = n, nf
        if isinstance(role, str) and role.startswith("test_"):
            overlap[role] = shared
    return SplitReport(name="", kind="", roles=counts, functions=functions, train_overlap=overlap, requested={})


def flatness(con: duckdb.DuckDBPyConnection, rows: str):
    """Normalised entropy of each role's occupancy histogram on each grid (module docstring).

    ``rows`` is a table or view of (program_id, role). Returns ``(flat, cells, occupied,
    universe)``: flat[(grid, role)], cells[(grid, role)], occupied[grid], universe[grid].
    """
    hist: dict[tuple[str, str], list[int]] = {}
    universe_hist: dict[str, list[int]] = {}
    for grid, column in GRIDS.items():
        for role, n in con.execute(
                f"SELECT r.role, count(*) FROM {rows} r JOIN manifold_cells c USING (program_id) GROUP BY r.role, c.{column}").fetchall():
            hist.setdefault((grid, role), []).append(n)
        universe_hist[grid] = [n for (n,) in con.execute(f"SELECT count(*) FROM manifold_cells GROUP BY {column}").fetchall()]
    occupied = {g: len(h) for g, h in universe_hist.items()}
    flat = {key: normalised_entropy(h, occupied[key[0]]) for key, h in hist.items()}
    cells = {key: len(h) for key, h in hist.items()}
    universe = {g: normalised_entropy(h, occupied[g]) for g, h in universe_hist.items()}
    return flat, cells, occupied, universe


def normalised_entropy(counts: list[int], cells: int) -> float | None:
    """H(p) / ln(cells) of a histogram; 1.0 = equal counts in all ``cells`` cells."""
    total = sum(counts)
    if total == 0 or cells < 2:
        return None
    h = -sum(c / total * math.log(c / total) for c in counts if c)
    return h / math.log(cells)


def _pool_sizes(con: duckdb.DuckDBPyConnection, split: SplitSQL) -> dict[str, int]:
    """Programs in each role's pool, for splits whose CTEs follow the `<role>_pool` convention."""
    try:
        root = sqlglot.parse_one(split.text, read="duckdb")
        ctes = {c.alias_or_name.lower() for c in root.find_all(exp.CTE)}
        roles = [r for r in split.declared_roles if f"{r}_pool" in ctes]
        with_ = root.args.get("with_") or root.args.get("with")  # the key's name varies across sqlglot versions
        if not roles or with_ is None:
            return {}
        counts = " UNION ALL ".join(f"SELECT '{r}' AS role, count(*) AS n FROM {r}_pool" for r in roles)
        query = f"{with_.sql(dialect='duckdb')} {counts}"
        return dict(con.execute(query).fetchall())
    except Exception:  # a pool we cannot count is left blank in `show`
        return {}


# ----------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------

def _stage(stages, name: str):
    return stages.stage(name) if stages is not None else contextlib.nullcontext()


def _notice(message: str, quiet: bool) -> None:
    if not quiet:
        from gensynth.progress import console

        console.print(f"[yellow]notice:[/yellow] {message}")


def _create_view(con: duckdb.DuckDBPyConnection, view: str, body: str, temp_view: bool = False) -> None:
    sql = f"CREATE OR REPLACE {'TEMP ' if temp_view else ''}VIEW {view} AS\n{body}\n"
    stmts = con.extract_statements(sql)
    if len(stmts) != 1 or stmts[0].type != duckdb.StatementType.CREATE:
        raise GensynthError(f"Refusing to create view {view}: its SQL does not form exactly one CREATE VIEW statement.")
    con.execute(sql)


def _relation_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the warehouse's main schema has a table or view called ``name``."""
    return con.execute(
        "SELECT (SELECT count(*) FROM duckdb_tables() WHERE table_name = $1 AND schema_name = 'main' AND database_name = current_database())"
        " + (SELECT count(*) FROM duckdb_views() WHERE view_name = $1 AND schema_name = 'main' AND database_name = current_database())",
        [name]).fetchone()[0] > 0


def _require_sampling(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    if not _relation_exists(con, "manifold_cells"):
        raise GensynthError(
            f"Warehouse '{path}' has no sampling tables (manifold_cells and the sample_* macros), which `gensynth build` "
            f"writes with the manifolds. Rebuild it with `gensynth build --warehouse {path}`."
        )


def _registry_row(con: duckdb.DuckDBPyConnection, name: str) -> dict:
    names = registered_names(con)
    if name not in names:
        hint = _did_you_mean(name, names) or "."
        raise GensynthError(
            f"No split named '{name}'{hint}"
            + (f" Registered: {', '.join(names)} (see `gensynth split list`)." if names else " This warehouse has no splits; add one with `gensynth split add FILE`.")
        )
    cur = con.execute("SELECT * FROM splits WHERE name = ?", [name])
    return dict(zip([d[0] for d in cur.description], cur.fetchone()))


def _warehouse_schema(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """{relation: {column: type}} for the warehouse's own tables and views (main schema)."""
    schema: dict[str, dict[str, str]] = {}
    for table, column, dtype in con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE NOT internal AND schema_name = 'main' AND database_name = current_database() ORDER BY table_name, column_index"
    ).fetchall():
        try:
            exp.DataType.build(dtype, dialect="duckdb")
        except Exception:
            dtype = "UNKNOWN"
        schema.setdefault(table.lower(), {})[column.lower()] = dtype
    return schema


def _table_macros(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """{macro: output columns} for the warehouse's table macros (the sampling strategies)."""
    macros = {}
    for name, definition in con.execute(
        "SELECT DISTINCT function_name, macro_definition FROM duckdb_functions() "
        "WHERE function_type = 'table_macro' AND NOT internal AND schema_name = 'main' AND database_name = current_database()"
    ).fetchall():
        try:
            macros[name.lower()] = [c for c in sqlglot.parse_one(definition, read="duckdb").named_selects if c]
        except Exception:
            macros[name.lower()] = []
    return macros


def _func_name(node) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return node.sql_name().lower()


def _spellings(node) -> list[str]:
    """Names a function node may have been written with (sqlglot maps random() to RAND)."""
    if isinstance(node, exp.Anonymous):
        return [str(node.this).lower()]
    return [n.lower() for n in type(node).sql_names()] or [node.sql_name().lower()]


def _statements(tokens) -> list[list]:
    from sqlglot.tokens import TokenType

    out, cur = [], []
    for tok in tokens:
        if tok.token_type == TokenType.SEMICOLON:
            if cur:
                out.append(cur)
            cur = []
        else:
            cur.append(tok)
    if cur:
        out.append(cur)
    return out


def _call_location(text: str, tokens, names: list[str], used: dict[str, int]) -> tuple[int, str]:
    """Offset and text of the next not-yet-reported call of any of ``names(...)``."""
    from sqlglot.tokens import TokenType

    seen, key = 0, "call:" + names[0]
    for i, tok in enumerate(tokens):
        if tok.text.lower() in names and i + 1 < len(tokens) and tokens[i + 1].token_type == TokenType.L_PAREN:
            if seen == used.get(key, 0):
                used[key] = seen + 1
                depth, end = 0, tok.end
                for t in tokens[i + 1:]:
                    depth += t.token_type == TokenType.L_PAREN
                    depth -= t.token_type == TokenType.R_PAREN
                    end = t.end
                    if depth == 0:
                        break
                return tok.start, _fragment(text, tok.start, end + 1)
            seen += 1
    return _word_location(text, tokens, names[0], used)


def _word_location(text: str, tokens, word: str, used: dict[str, int]) -> tuple[int, str]:
    key = "word:" + word.lower()
    hits = [t for t in tokens if t.text.lower() == word.lower()]
    if not hits:
        return 0, word
    tok = hits[min(used.get(key, 0), len(hits) - 1)]
    used[key] = used.get(key, 0) + 1
    return tok.start, _fragment(text, tok.start, tok.end + 1)


def _node_location(text: str, tokens, node, used: dict[str, int]) -> tuple[int, str]:
    keyword = node.key.split("_")[0]
    off, _ = _word_location(text, tokens, keyword, used)
    return off, _fragment(text, off, off + 60)


def _loc(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def _fragment(text: str, start: int, end: int, limit: int = 70) -> str:
    frag = " ".join(text[start:end].split())
    return frag if len(frag) <= limit else frag[: limit - 1] + "…"


def _strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", "", re.sub(r"--[^\n]*", "", text), flags=re.S)


def _kind(text: str) -> str | None:
    m = re.search(r"^\s*--\s*kind\s*:\s*([A-Za-z_]+)", text, re.M)
    return m.group(1).lower() if m else None


def _description(text: str) -> str:
    """The leading comment block, without the kind line, as one string per paragraph."""
    lines = []
    for line in text.splitlines():
        s = line.strip()
        if not s:
            lines.append("")
            continue
        if not s.startswith("--"):
            break
        body = s[2:].strip()
        if not re.match(r"kind\s*:", body):
            lines.append(body)
    paragraphs = " ".join(l if l else "\n" for l in lines).split("\n")
    return "\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def _leftmost_select(root):
    node = root
    while isinstance(node, exp.SetOperation):
        node = node.this
    if isinstance(node, exp.Subquery):
        node = node.this
    return node if isinstance(node, exp.Select) else None


def _top_selects(root) -> list:
    """The SELECTs whose rows a (UNION ALL of) SELECT(s) returns, left to right."""
    if isinstance(root, exp.SetOperation):
        return _top_selects(root.this) + _top_selects(root.expression)
    if isinstance(root, exp.Subquery):
        return _top_selects(root.this)
    return [root] if isinstance(root, exp.Select) else []


def _column_docs(root) -> dict[str, str]:
    return select_column_docs(_leftmost_select(root))


def _declared_roles(root) -> list[str]:
    roles = []
    for select in _top_selects(root):
        if len(select.expressions) == 2:
            proj = select.expressions[1]
            value = proj.this if isinstance(proj, exp.Alias) else proj
            if isinstance(value, exp.Literal) and value.is_string and value.this not in roles:
                roles.append(value.this)
    return roles


def _params(root) -> dict[str, int]:
    """Integer literals of the `params` CTE (n_train, n_val, n_test, n_<role>, seed, ...)."""
    for cte in root.find_all(exp.CTE):
        if cte.alias_or_name.lower() == "params" and isinstance(cte.this, exp.Select):
            out = {}
            for proj in cte.this.expressions:
                value = proj.this if isinstance(proj, exp.Alias) else proj
                if isinstance(value, exp.Literal) and not value.is_string:
                    with_int = value.this
                    if re.fullmatch(r"\d+", with_int):
                        out[proj.alias_or_name.lower()] = int(with_int)
            return out
    return {}


def _requested(params: dict[str, int], role: str) -> int | None:
    if f"n_{role}" in params:
        return params[f"n_{role}"]
    if role.startswith("test_"):
        return params.get("n_test")
    return None


def _role_order(counts: dict[str, int], declared: list[str]) -> list[str]:
    roles = list(declared) + sorted(r for r in counts if r not in declared and r is not None)
    rank = {"train": 0, "val": 1}
    return sorted(roles, key=lambda r: (rank.get(r, 2), roles.index(r)))


def _did_you_mean(name: str, candidates: list[str]) -> str:
    match = difflib.get_close_matches(name.lower(), [c.lower() for c in candidates], n=1, cutoff=0.6)
    return f" — did you mean '{match[0]}'?" if match else ""


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).strip().splitlines()[:2])


def _refusal(where: str, problems: list[str], ran: bool = False) -> GensynthError:
    items = "\n".join(f"  - {p}" for p in problems)
    verb = "Its rows break the split contract" if ran else "It was refused before running"
    return GensynthError(f"{where} was not registered. {verb}:\n{items}\nFix the SQL and retry; the warehouse was not changed.")
