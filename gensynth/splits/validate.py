"""Static validation of a split's SQL (sqlglot), before anything runs.

``parse_split`` reads the SQL with sqlglot; it must be exactly one SELECT (CTEs allowed)
with no DDL/DML/ATTACH/COPY/PRAGMA/SET/..., call no table function that reads files or
the network (and no table function but ``range``, ``generate_series``, ``unnest`` and
the warehouse's table macros), and name only existing tables, views, CTEs and columns
(qualified against the live schema, with a "did you mean"). DuckDB's own parser then
confirms one SELECT and binds it; the output must be exactly ``program_id, role``.
Nothing is executed but DuckDB's parser and binder, and those only once the SQL is known
to read nothing but the warehouse. The checks on a split's rows, after it runs, are in
``gensynth.splits.contract``.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import re
from dataclasses import dataclass

import duckdb
import sqlglot
from sqlglot import exp

from gensynth.errors import GensynthError
from gensynth.splits.inputs import hand_made_macros, readable_split_views, refused_reason, split_inputs, unstable_functions
from gensynth.splits.sqltext import (call_location, column_docs, declared_roles, description, fragment, func_name,
                                     kind_of, loc, node_location, params_of, spellings, statements, strip_comments,
                                     word_location)

KINDS = ("density", "support")
ROLE_RE = re.compile(r"^(train|val|test_[a-z0-9_]+)$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

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
REGISTER = "was not registered"  # the `action` of add (and of a build registering built-ins)
CHECK = "fails its checks on this warehouse"  # the `action` of `split check`
CARRY = "could not be carried over to the rebuilt warehouse"  # the `action` of a rebuild
REEMBED = "no longer passes on the re-embedded manifolds (`gensynth embed`)"  # the `action` of embed
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


def check_name(name: str) -> None:
    """Refuse a split name that cannot be a view name ``split_<name>``."""
    if not NAME_RE.match(name):
        raise GensynthError(
            f"'{name}' is not a valid split name: use lowercase letters, digits and underscores, starting with a "
            f"letter (it becomes the view split_{name}). Pass --name to choose one."
        )


# ----------------------------------------------------------------------------------------
# parse_split: header, statements, sqlglot tree, names, DuckDB's binder
# ----------------------------------------------------------------------------------------

def parse_split(con: duckdb.DuckDBPyConnection, name: str, text: str, source: str = "builtin",
                action: str = REGISTER) -> SplitSQL:
    """Validate a split's SQL against the live warehouse without running it.

    Raises ``GensynthError`` listing every problem found, each with its line, column and
    the offending fragment; ``action`` says what the refusal means ("was not registered"
    for add, "no longer passes its checks" for check).
    """
    check_name(name)
    where = f"Split '{name}'" + (f" ({source})" if source and source != "builtin" else "")
    kind = _check_header(where, text)
    tokens = _tokens(where, text)
    problems = _statement_problems(text, tokens)
    if problems:
        raise refusal(where, problems, action=action)
    root = _parse_one(where, text, action)
    schema, macros = warehouse_schema(con), table_macros(con)
    ctes = {c.alias_or_name.lower(): c for c in root.find_all(exp.CTE)}
    used: dict[str, int] = {}
    calls = Callable(unstable_functions(con), hand_made_macros(con))
    problems = (_forbidden_problems(text, tokens, root, used)
                + _function_problems(text, tokens, root, schema, macros, ctes, used, calls)
                + _table_problems(text, tokens, root, schema, ctes, used, split_inputs() | readable_split_views(con)))
    if problems:
        raise refusal(where, problems, action=action)
    column_problems = _unknown_columns(text, root, schema, macros)
    body = _bind(con, where, text, column_problems, action)
    return SplitSQL(
        name=name, kind=kind, description=description(text), text=text, body=body,
        columns=column_docs(root), requested=params_of(root), declared_roles=declared_roles(root), source=source,
    )


def _check_header(where: str, text: str) -> str:
    """The split's kind from its ``-- kind:`` line; refuses empty SQL and unknown kinds."""
    if not strip_comments(text).strip().strip(";").strip():
        raise GensynthError(f"{where} is empty. A split is one SELECT returning program_id and role; see sql/splits/ for examples.")
    kind = kind_of(text)
    if kind is None:
        raise GensynthError(f"{where} has no `-- kind:` line. Add a comment line `-- kind: density` or `-- kind: support` to its header.")
    if kind not in KINDS:
        guess = difflib.get_close_matches(kind, KINDS, n=1)
        raise GensynthError(f"{where} declares `-- kind: {kind}`, but the kinds are {' and '.join(KINDS)}" + (f" (did you mean '{guess[0]}'?)" if guess else "")
                            + ". Fix the line to `-- kind: density` or `-- kind: support`.")
    return kind


def _tokens(where: str, text: str):
    try:
        return sqlglot.Dialect.get_or_raise("duckdb").tokenize(text)
    except sqlglot.errors.TokenError as exc:
        raise GensynthError(f"{where} cannot be read: {exc}. Check for an unterminated string or comment.") from None


def _statement_problems(text: str, tokens) -> list[str]:
    """A split is one statement, and it must start like a SELECT."""
    problems = []
    for i, stmt in enumerate(statements(tokens)):
        first = stmt[0]
        frag = fragment(text, first.start, stmt[-1].end + 1)
        line, col = loc(text, first.start)
        if i == 0 and first.text.upper() not in ("SELECT", "WITH", "FROM", "("):
            problems.append(f"line {line}, column {col}: `{frag}`: {first.text.upper()} statements are not allowed; a split may only read (one SELECT, CTEs allowed)")
        elif i > 0:
            problems.append(f"line {line}, column {col}: a second statement `{frag}`; a split is exactly one SELECT, so remove everything after the first")
    return problems


def _parse_one(where: str, text: str, action: str):
    """sqlglot's tree of the one query (its parse errors become one located message)."""
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
        raise refusal(where, [f"line 1, column 1: the SQL is a statement of type {kind_name}, not a SELECT; a split is exactly one SELECT (CTEs allowed)"], action=action)
    return parsed[0]


def _forbidden_problems(text: str, tokens, root, used: dict[str, int]) -> list[str]:
    problems = []
    for node in root.walk():
        if isinstance(node, FORBIDDEN_NODES):
            off, frag = node_location(text, tokens, node, used)
            line, col = loc(text, off)
            problems.append(f"line {line}, column {col}: `{frag}`: {node.key.upper()} statements are not allowed; a split may only read")
    return problems


@dataclass(frozen=True)
class Callable:
    """What ``_function_problems`` refuses beyond its fixed lists (gensynth.splits.inputs)."""

    unstable: dict[str, str]  # function -> why its value changes between queries or machines
    hand_made: set[str]  # macros of the warehouse gensynth did not install


def _function_problems(text: str, tokens, root, schema: dict, macros: dict, ctes: dict, used: dict[str, int],
                       calls: Callable) -> list[str]:
    """Functions that read files or the network, take SQL as a string, change between reads or
    machines, or are macros made by hand; table functions other than the allowed ones."""
    problems = _keyword_problems(text, tokens, root, schema, used, calls)
    macros = {m: cols for m, cols in macros.items() if m not in calls.hand_made}
    for node in root.find_all(exp.Func):
        fname = func_name(node)
        is_table_fn = isinstance(node.parent, exp.Table) and node.parent.this is node
        written = spellings(node)
        names = set(written) | {fname}
        off, frag = call_location(text, tokens, written, used)
        line, col = loc(text, off)
        at = f"line {line}, column {col}: `{frag}`"
        unstable = sorted(names & UNSTABLE_FUNCTIONS.keys())
        if names & FILE_FUNCTIONS:
            problems.append(f"{at} reads files or the network; a split may read only the warehouse's tables and views")
        elif names & STRING_SQL_FUNCTIONS:
            problems.append(f"{at} takes SQL or a table name as a string, which cannot be checked (a string may even name a file); refer to the table or CTE directly")
        elif unstable:
            problems.append(f"{at} {UNSTABLE_FUNCTIONS[unstable[0]]}")
        elif names & calls.unstable.keys():
            problems.append(f"{at} {calls.unstable[sorted(names & calls.unstable.keys())[0]]}")
        elif names & calls.hand_made:
            problems.append(f"{at} is a macro made by hand in this warehouse, not one gensynth installs: what it reads and "
                            f"whether it changes cannot be checked; write its body into the split's SQL instead")
        elif is_table_fn and fname not in ALLOWED_TABLE_FUNCTIONS and fname not in macros:
            allowed = ", ".join(sorted(m for m in macros) + ["range", "generate_series", "unnest"])
            problems.append(f"{at} is not a table function a split may use (allowed: {allowed})")
        elif is_table_fn and fname in macros:
            problems += _macro_argument_problems(at, fname, node.expressions, schema, ctes)
    return problems


def _keyword_problems(text: str, tokens, root, schema: dict, used: dict[str, int], calls: Callable) -> list[str]:
    """``user``, ``current_role``, ... written without parentheses read as columns to sqlglot:
    refuse them when no relation of the warehouse has a column of that name."""
    columns = {c for cols in schema.values() for c in cols}
    problems = []
    for node in root.find_all(exp.Column):
        name = node.name.lower()
        if not node.table and name in calls.unstable and name not in columns:
            off, frag = word_location(text, tokens, node.name, used)
            line, col = loc(text, off)
            problems.append(f"line {line}, column {col}: `{frag}` {calls.unstable[name]}")
    return problems


def _macro_argument_problems(at: str, fname: str, args: list, schema: dict, ctes: dict) -> list[str]:
    problems = []
    for arg in args:
        if isinstance(arg, exp.Literal) and arg.is_string and PATH_LIKE.search(arg.this):
            problems.append(f"{at} passes '{arg.this}', which looks like a file or URL; a split may read only the warehouse")
    if fname.startswith("sample_") and args:
        pool = args[0]
        if not (isinstance(pool, exp.Literal) and pool.is_string):
            problems.append(f"{at}: the first argument of {fname} must be the quoted name of a CTE, table or view holding program_id, e.g. {fname}('train_pool', 1000, 0)")
        elif not PATH_LIKE.search(pool.this) and pool.this.lower() not in ctes and pool.this.lower() not in schema:
            problems.append(f"{at}: pool '{pool.this}' names no CTE, table or view" + did_you_mean(pool.this, list(ctes) + list(schema)))
    return problems


def _table_problems(text: str, tokens, root, schema: dict, ctes: dict, used: dict[str, int], allowed: set[str]) -> list[str]:
    """Tables that are files, URLs, other databases, not in the warehouse, or not split inputs
    (``allowed``: gensynth.splits.inputs)."""
    problems = []
    for table in root.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue
        tname = table.this.name
        off = table.this.meta.get("start")
        if off is None:
            off, _ = word_location(text, tokens, tname, used)
        line, col = loc(text, off)
        quoted = 2 if text[off:off + 1] in ('"', '`') else 0  # a quoted identifier's fragment keeps its quotes
        at = f"line {line}, column {col}: `{fragment(text, off, off + len(tname) + quoted)}`"
        db, catalog = table.args.get("db"), table.args.get("catalog")
        if PATH_LIKE.search(tname):
            problems.append(f"{at} reads a file or URL; a split may read only the warehouse's tables and views")
        elif (db is not None and db.name.lower() not in ("main",)) or catalog is not None:
            problems.append(f"{at} refers to another database or schema; a split may read only this warehouse's main schema")
        elif tname.lower() not in ctes and tname.lower() in schema and tname.lower() not in allowed:
            problems.append(f"{at} reads {tname}, {refused_reason(tname)}")
        elif tname.lower() not in ctes and tname.lower() not in schema:
            problems.append(f"{at}: no table or view '{tname}' in the warehouse" + did_you_mean(tname, list(ctes) + list(schema)))
    return problems


def _bind(con: duckdb.DuckDBPyConnection, where: str, text: str, column_problems: list[str], action: str) -> str:
    """DuckDB's parser and binder decide what would run; returns the body of the one SELECT."""
    try:
        duck = con.extract_statements(text)
    except duckdb.Error as exc:
        raise GensynthError(f"{where} is not valid DuckDB SQL: {first_line(exc)}. Fix the syntax.") from None
    if len(duck) != 1 or duck[0].type != duckdb.StatementType.SELECT:
        raise refusal(where, [f"DuckDB reads {len(duck)} statement(s) of type {', '.join(s.type.name for s in duck)}; a split is exactly one SELECT"], action=action)
    body = duck[0].query.rstrip().rstrip(";")
    # Binding is safe now: the SQL reads nothing but the warehouse. sqlglot's column
    # findings (with their suggestions) stand when DuckDB agrees something is unbound;
    # when DuckDB binds the SQL, they were sqlglot not modelling a DuckDB feature.
    try:
        described = con.execute(f"DESCRIBE {body}\n").fetchall()
    except duckdb.Error as exc:
        if column_problems:
            raise refusal(where, column_problems, action=action) from None
        raise GensynthError(f"{where}: DuckDB cannot bind the SQL: {first_line(exc)} Fix the names or types it points at.") from None
    names = [r[0] for r in described]
    if sorted(n.lower() for n in names) != ["program_id", "role"]:
        raise refusal(where, [f"it returns columns ({', '.join(names)}); a split returns exactly two columns, program_id and role (alias them: `... AS role`)"], action=action)
    types = {r[0].lower(): r[1] for r in described}
    if not re.search(r"INT", types["program_id"]) or types["role"] != "VARCHAR":
        raise refusal(where, [f"program_id is {types['program_id']} and role is {types['role']}; program_id must be an integer (programs.program_id) and role text"], action=action)
    return body


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
        if isinstance(table.this, exp.Func) and func_name(table.this) in macros:
            placeholder = f"__macro_{i}"
            local[placeholder] = {c: "UNKNOWN" for c in macros[func_name(table.this)]}
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
            problems.append(_column_problem(text, nodes[0], column.lower(), tree, local, candidates))
            for node in nodes:
                node.replace(exp.Null())
        except Exception:  # sqlglot cannot model this SQL; DuckDB's binder decides below
            break
    return problems


JOIN_KEYS = ("program_id", "function_id")  # how warehouse relations join (programs, functions, manifold, ...)


def _column_problem(text: str, node, column: str, tree, local: dict[str, dict[str, str]], candidates: list[str]) -> str:
    """Why ``column`` does not resolve: ambiguous between the relations in scope, in another
    warehouse relation (say which and how to join it), or unknown (with a "did you mean")."""
    line, col = loc(text, node.this.meta.get("start", 0))
    at = f"line {line}, column {col}"
    select = node.find_ancestor(exp.Select)
    sources = _scope_sources(select, tree, local) if select is not None else {}
    having = [(alias, rel) for alias, (rel, cols) in sources.items() if cols is not None and column in cols]
    if len(having) >= 2:
        both = " and ".join(f"{a}.{column}" + (f" ({rel})" if rel != a else "") for a, rel in having)
        return (f"{at}: column '{column}' is ambiguous: it is in {both}; qualify it with the relation you mean, "
                f"e.g. {having[0][0]}.{column}")
    in_scope = {rel for rel, _ in sources.values()}
    elsewhere = [rel for rel, cols in local.items() if column in cols and rel not in in_scope and not rel.startswith("__macro_")]
    if not having and elsewhere and all(cols is not None for _, cols in sources.values()):
        scope_keys = {k for _, cols in sources.values() for k in JOIN_KEYS if k in (cols or {})}
        elsewhere.sort(key=lambda r: (not (scope_keys & set(local[r])), r))
        rel = elsewhere[0]
        key = next((k for k in JOIN_KEYS if k in scope_keys and k in local[rel]), None)
        how = f"`JOIN {rel} USING ({key})`" if key else f"a JOIN with {rel}"
        here = " or ".join(sorted(in_scope)) or "the relations this SELECT reads"
        also = f" (also in {', '.join(elsewhere[1:])})" if len(elsewhere) > 1 else ""
        return f"{at}: no column '{column}' in {here}; it is a column of {rel}{also}: add {how} to read {rel}.{column}"
    return f"{at}: no column '{column}'" + did_you_mean(column, [c for c in candidates if c.lower() != column])


def _scope_sources(select, tree, local: dict[str, dict[str, str]]) -> dict[str, tuple[str, dict | None]]:
    """alias -> (relation name, its columns or None when unknown) for the FROM and JOINs of ``select``."""
    ctes = {c.alias_or_name.lower(): c for c in tree.find_all(exp.CTE)}
    from_ = select.args.get("from_") or select.args.get("from")
    items = ([from_.this] if from_ is not None else []) + [j.this for j in select.args.get("joins") or []]
    sources: dict[str, tuple[str, dict | None]] = {}
    for item in items:
        alias = item.alias_or_name.lower()
        if isinstance(item, exp.Table):
            name = item.name.lower()
            if name in ctes:
                selects = ctes[name].this.named_selects
                cols = None if "*" in selects or not selects else {c.lower(): "" for c in selects}
            else:
                cols = local.get(name)
            sources[alias] = (name, cols)
        elif isinstance(item, exp.Subquery):
            selects = item.this.named_selects if isinstance(item.this, exp.Query) else []
            sources[alias] = (alias, None if "*" in selects or not selects else {c.lower(): "" for c in selects})
    return sources


# ----------------------------------------------------------------------------------------
# The live schema
# ----------------------------------------------------------------------------------------

def warehouse_schema(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
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


def table_macros(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
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


def did_you_mean(name: str, candidates: list[str]) -> str:
    match = difflib.get_close_matches(name.lower(), [c.lower() for c in candidates], n=1, cutoff=0.6)
    return f" — did you mean '{match[0]}'?" if match else ""


def first_line(exc: Exception) -> str:
    return " ".join(str(exc).strip().splitlines()[:2])


def refusal(where: str, problems: list[str], ran: bool = False, action: str = REGISTER) -> GensynthError:
    """One message listing every problem, saying what the refusal means (``action``) and how to fix it."""
    items = "\n".join(f"  - {p}" for p in problems)
    verb = ("Its rows break the split contract" if ran else "It was refused before running") if action == REGISTER else \
        ("Its rows break the split contract" if ran else "Its SQL does not pass validation")
    fix = {REGISTER: "Fix the SQL and retry; the warehouse was not changed.",
           CHECK: "Fix the SQL and re-add it (`gensynth split add FILE --name NAME --replace`); nothing was changed.",
           }.get(action, "Fix the SQL and re-add it (`gensynth split add FILE --name NAME --replace`).")
    return GensynthError(f"{where} {action}. {verb}:\n{items}\n{fix}")
