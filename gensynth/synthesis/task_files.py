"""Reads task files and writes the ``tasks`` table (sql/tasks.sql): targets users bring.

Two kinds of file, told apart by the extension:

* **Formulas** (any extension but .csv/.parquet): one target per line, ``name: formula``
  or a bare formula (named ``line<N>``); blank lines and lines starting with ``#`` are
  skipped. Formulas are described in ``gensynth.synthesis.formulas``.
* **Values** (``.csv``, ``.parquet``): one row per task and grid point, with a column per
  grammar variable (the point's coordinates, e.g. ``x, y``), ``value`` (a number or a
  rational such as ``1/3``; empty or ``nan`` where undefined) and optionally ``name``
  (default: one task called ``values``). Every task must give every grid point once.

The whole file is read and checked first; a problem anywhere is reported with its line
(or row) and nothing is written. A file already stored for this universe (same sha256,
same data version) is not stored twice: its task ids are reused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from gensynth.errors import GensynthError
from gensynth.universe.functions import row_hashes
from gensynth.universe.grammar import Grammar
from gensynth.universe.rational import Values

VALUE_SUFFIXES = (".csv", ".parquet")


@dataclass
class UserTask:
    """One target read from a file."""

    name: str
    formula: str | None
    line: int | None
    exact: Values  # one row, every grid point


def read_task_file(path: Path, grammar: Grammar) -> list[UserTask]:
    """Every task of a file, or one GensynthError naming the file, line and problem."""
    path = Path(path)
    if not path.is_file():
        raise GensynthError(f"No task file '{path}'. Pass a file of formulas (one per line) or a CSV/Parquet of values.")
    tasks = _read_values(path, grammar) if path.suffix.lower() in VALUE_SUFFIXES else _read_formulas(path, grammar)
    if not tasks:
        raise GensynthError(f"Task file '{path}' has no tasks (only blank lines or # comments); write one formula per "
                            f"line, e.g. 'cubic: x^3 - 2*x*y + 1/2'.")
    names = [t.name for t in tasks]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise GensynthError(f"Task file '{path}' names several tasks {', '.join(map(repr, dup))}; give each task its own name.")
    return tasks


def _read_formulas(path: Path, grammar: Grammar) -> list[UserTask]:
    from gensynth.synthesis.formulas import FormulaError, evaluate_formula, parse_formula

    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise GensynthError(f"Task file '{path}' is not text; formulas go one per line in a text file, "
                            f"values in a .csv or .parquet file.") from None
    tasks = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, formula, offset = f"line{number}", line, raw.index(line[0])
        if ":" in line:
            head, formula = line.split(":", 1)
            name, offset = head.strip(), offset + len(head) + 1 + (len(formula) - len(formula.lstrip()))
            formula = formula.strip()
            if not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
                raise GensynthError(f"{path}, line {number}: task name {name!r} must be letters, digits, '_', '-' or '.'; "
                                    f"write 'name: formula'. Nothing was stored.")
        try:
            node = parse_formula(formula, grammar)
        except FormulaError as exc:
            msg = str(exc)
            col = int(msg.split()[1].rstrip(":")) + offset if msg.startswith("column ") else None
            where = f"line {number}, column {col}" if col is not None else f"line {number}"
            detail = msg.split(": ", 1)[1] if col is not None else msg
            raise GensynthError(f"{path}, {where}: {detail}.\n  {raw}\nFix the line and run again; nothing was stored.") from None
        tasks.append(UserTask(name, formula, number, evaluate_formula(node, grammar)))
    return tasks


def _read_values(path: Path, grammar: Grammar) -> list[UserTask]:
    import duckdb

    con = duckdb.connect()
    try:
        src = str(path).replace("'", "''")
        reader = f"read_csv('{src}', all_varchar = true, header = true)" if path.suffix.lower() == ".csv" \
            else f"read_parquet('{src}')"
        try:
            rel = con.sql(f"SELECT * FROM {reader}")
            columns = [c.lower() for c in rel.columns]
            rows = rel.fetchall()
        except duckdb.Error as exc:
            raise GensynthError(f"Cannot read task file '{path}': {exc}") from None
    finally:
        con.close()
    need = [v.lower() for v in grammar.variables] + ["value"]
    missing = [c for c in need if c not in columns]
    if missing:
        raise GensynthError(f"Task file '{path}' lacks column(s) {', '.join(missing)}: a values file has one column per "
                            f"variable ({', '.join(grammar.variables)}), 'value' and optionally 'name'.")
    col = {c: columns.index(c) for c in columns}
    point_of = {tuple(p): i for i, p in enumerate(grammar.grid_points)}
    axes = [sorted({p[k] for p in grammar.grid_points}) for k in range(len(grammar.variables))]
    found: dict[str, dict[int, Fraction | None]] = {}
    for r, row in enumerate(rows, start=2 if path.suffix.lower() == ".csv" else 1):
        where = f"{path}, {'line' if path.suffix.lower() == '.csv' else 'row'} {r}"
        cells = [row[col[v.lower()]] for v in grammar.variables]
        coords = tuple(_on_axis(_rational(c, f"{where}, column {v}"), axis) for c, v, axis in zip(cells, grammar.variables, axes))
        if coords not in point_of:
            raise GensynthError(f"{where}: ({', '.join(map(str, cells))}) is not a point of the grammar's grid; "
                                f"values are given at grid points only. Nothing was stored.")
        name = str(row[col["name"]]) if "name" in col and row[col["name"]] is not None else "values"
        given = found.setdefault(name, {})
        p = point_of[coords]
        if p in given:
            raise GensynthError(f"{where}: task {name!r} gives grid point {coords} twice. Nothing was stored.")
        given[p] = _rational(row[col["value"]], f"{where}, column value")
    return [UserTask(name, None, None, _values_row(cells, grammar, f"{path}: task {name!r}")) for name, cells in found.items()]


def _on_axis(value: Fraction | None, axis: list[Fraction]) -> Fraction | None:
    """The grid coordinate a cell names: equal to it, or to its float64 value (coordinates written as floats)."""
    if value is None:
        return None
    for a in axis:
        if a == value or float(a) == float(value):
            return a
    return value


def _rational(cell, where: str) -> Fraction | None:
    """A cell as an exact rational (None: undefined).

    A float, or a decimal with more than 6 places, stands for the simplest rational that
    rounds to the same float64 (0.14285714285714285 is 1/7); other texts are exact
    (0.1 is 1/10, 1/3 is 1/3).
    """
    if cell is None:
        return None
    if isinstance(cell, (int, np.integer)):
        return Fraction(int(cell))
    if isinstance(cell, (float, np.floating)):
        if not np.isfinite(cell):
            return None
        r = Fraction(float(cell)).limit_denominator(10**12)
        return r if float(r) == float(cell) else Fraction(float(cell))
    text = str(cell).strip()
    if text == "" or text.lower() in ("nan", "null", "none", "undefined"):
        return None
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise GensynthError(f"{where}: {text!r} is not a number (write e.g. 3, -0.5, 1/3, or leave it empty where "
                            f"undefined). Nothing was stored.") from None
    if "/" not in text and value.denominator > 10**6:
        simple = value.limit_denominator(10**12)
        if float(simple) == float(value):
            return simple
    return value


def _values_row(cells: dict[int, Fraction | None], grammar: Grammar, where: str) -> Values:
    missing = [p for p in range(grammar.n_points) if p not in cells]
    if missing:
        raise GensynthError(f"{where} lacks {len(missing)} of the {grammar.n_points} grid points (e.g. point "
                            f"{grammar.grid_points[missing[0]]}); give a value (or an empty cell) at every point.")
    num = np.zeros((1, grammar.n_points), np.int64)
    den = np.zeros((1, grammar.n_points), np.int64)
    for p, v in cells.items():
        if v is not None:
            if abs(v.numerator) >= 2**62 or v.denominator >= 2**62:
                raise GensynthError(f"{where}: the value at grid point {grammar.grid_points[p]} is too large for exact "
                                    f"arithmetic (|numerator| and denominator must be below 2^62).")
            num[0, p], den[0, p] = v.numerator, v.denominator
    return Values(num, den, np.where(den > 0, num / np.where(den > 0, den, 1), np.nan))


def exact_text(values: Values) -> list[str | None]:
    """'p/q' per cell of one row (None where undefined)."""
    return [None if d == 0 else f"{n}/{d}" for n, d in zip(values.num[0].tolist(), values.den[0].tolist())]


def values_of_text(cells: list[str | None]) -> Values:
    num = np.array([[0 if c is None else int(c.split("/")[0]) for c in cells]], np.int64)
    den = np.array([[0 if c is None else int(c.split("/")[1]) for c in cells]], np.int64)
    return Values(num, den, np.where(den > 0, num / np.where(den > 0, den, 1), np.nan))


def store_tasks(con, path: Path, tasks: list[UserTask], data_version: str) -> list[int]:
    """Insert the file's tasks into ``tasks`` (one transaction) unless stored already; their task ids, in file order."""
    from gensynth.warehouse import run_sql

    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    run_sql(con, "tasks.sql")
    have = con.execute("SELECT name, task_id FROM tasks WHERE source_hash = ? AND data_version = ?",
                       [digest, data_version]).fetchall()
    if have:
        ids = dict(have)
        return [int(ids[t.name]) for t in tasks]
    start = con.execute("SELECT coalesce(max(task_id) + 1, 0) FROM tasks").fetchone()[0]
    known = set(con.execute("SELECT value_hash, value_hash2 FROM functions").fetchall())  # a function is both halves
    now = dt.datetime.now(dt.timezone.utc)
    rows = []
    for i, t in enumerate(tasks):
        h1, h2 = (int(h.view(np.int64)[0]) for h in row_hashes(t.exact))
        rows.append((start + i, t.name, t.formula, str(path), digest, t.line, t.exact.flt[0].tolist(), exact_text(t.exact),
                     bool((t.exact.den > 0).all()), h1, h2, (h1, h2) in known, data_version, now))
    con.execute("BEGIN TRANSACTION")
    try:
        con.executemany(f"INSERT INTO tasks VALUES ({', '.join('?' * 14)})", rows)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return [start + i for i in range(len(tasks))]


def carry_over_tasks(old_path: Path, con) -> int:
    """Copy the ``tasks`` of the warehouse at ``old_path`` into ``con`` (a new build); return how many.

    Tasks users brought are irreplaceable (runs on them refer to their task ids), so a
    rebuild keeps every row unchanged, with the data version it was computed for:
    ``--view tasks`` solves only the current universe's, and ``solve --tasks FILE`` stores
    the file again (new ids, exact values on the new grid) for a universe that lacks it.
    """
    from gensynth.results.migrations import quote_path
    from gensynth.warehouse import relation_exists, run_sql

    old_path = Path(old_path)
    if not old_path.is_file():
        return 0
    con.execute(f"ATTACH '{quote_path(old_path)}' AS old_tasks (READ_ONLY)")
    try:
        if not relation_exists(con, "tasks", database="old_tasks", kind="table"):
            return 0
        run_sql(con, "tasks.sql")
        con.execute("INSERT INTO tasks BY NAME SELECT * FROM old_tasks.tasks")
        return con.execute("SELECT count(*) FROM old_tasks.tasks").fetchone()[0]
    finally:
        con.execute("DETACH old_tasks")


def user_tasks(con, grammar: Grammar, data_version: str, ids: list[int] | None = None, limit: int | None = None) -> list:
    """Tasks of ``tasks`` for the current universe (the given ids, or all in hashed order)."""
    from gensynth.synthesis.tasks import Task
    from gensynth.warehouse import relation_exists

    if not relation_exists(con, "tasks", kind="table"):
        raise GensynthError("This warehouse has no `tasks` table yet; add tasks with `gensynth solve --tasks FILE ...`.")
    if ids is not None:
        rows = con.execute("SELECT task_id, formula, exact FROM tasks WHERE list_contains(?, task_id) ORDER BY task_id",
                           [ids]).fetchall()
    else:
        rows = con.execute("SELECT task_id, formula, exact FROM tasks WHERE data_version = ? "
                           "ORDER BY hash(task_id), task_id LIMIT ?", [data_version, limit or 2**31]).fetchall()
    out = []
    for task_id, formula, cells in rows:
        out.append(Task(int(task_id), "", values_of_text(cells), -1, formula=formula or ""))
    return out
