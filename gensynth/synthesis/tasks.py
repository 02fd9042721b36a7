"""Tasks beyond the enumerated universe: writes ``tasks_beyond`` (sql/beyond_tables.sql).

Programs with max_ops + 1 operators are drawn uniformly (a uniform index into that
level is decoded into operator, split and children, exactly like the enumeration
order), evaluated exactly, and kept when finite and function-disjoint from the
warehouse. A neural model trained on the warehouse has never seen a program that large.
"""

from __future__ import annotations

import numpy as np

from gensynth.universe.programs import count_programs
from gensynth.errors import GensynthError
from gensynth.universe.functions import row_hashes
from gensynth.universe.grammar import Grammar
from gensynth.universe.syntax import evaluate_trees, to_prefix
from gensynth.warehouse import run_sql


def random_program(grammar: Grammar, n_ops: int, rng: np.random.Generator) -> tuple:
    """A uniformly random tree with exactly ``n_ops`` operators."""
    counts = count_programs(grammar, n_ops)

    def draw(n: int, index: int) -> tuple:
        if n == 0:
            return (index,)
        for k, op in enumerate(grammar.operators):
            sym = grammar.n_leaves + k
            if op.arity == 1:
                if index < counts[n - 1]:
                    return (sym, draw(n - 1, index))
                index -= counts[n - 1]
                continue
            for i in range(n):
                block = counts[i] * counts[n - 1 - i]
                if index < block:
                    left, right = divmod(index, counts[n - 1 - i])  # left-major, as enumerated
                    return (sym, draw(i, left), draw(n - 1 - i, right))
                index -= block
        raise AssertionError("index beyond the level")

    return draw(n_ops, int(rng.integers(0, counts[n_ops])))


def beyond_rows(con, limit: int) -> list[tuple]:
    """(task_id, prefix, -1) of the first ``limit`` tasks of ``tasks_beyond``, in hashed order."""
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'tasks_beyond'").fetchone()[0]
    if not exists:
        raise GensynthError("This warehouse has no `tasks_beyond` table; create it with `gensynth beyond --tasks 200`.")
    return con.execute("SELECT task_id, prefix, -1 FROM tasks_beyond ORDER BY hash(task_id), task_id LIMIT ?",
                       [limit]).fetchall()


def tasks_of_programs(rows: list[tuple], grammar: Grammar) -> list:
    """Tasks of (id, prefix, function_id) rows: each program evaluated exactly on the whole grid."""
    from gensynth.synthesis.solve import Task
    from gensynth.universe.syntax import parse_prefix

    if not rows:
        return []
    values = evaluate_trees([parse_prefix(r[1], grammar) for r in rows], grammar)
    return [Task(int(r[0]), r[1], values.take(np.array([i])), int(r[2])) for i, r in enumerate(rows)]


def offgrid_values(tasks: list, grammar: Grammar, points: np.ndarray) -> None:
    """Fill each task's float64 values at the off-grid points, where it has a defining program."""
    from gensynth.universe.syntax import evaluate_float, parse_prefix

    for task in tasks:
        if task.offgrid is None and task.prefix:
            task.offgrid = evaluate_float(parse_prefix(task.prefix, grammar), grammar, points)


def role_of(config) -> str:
    """predictions.role of a solve run's tasks: the split's role, or test_beyond for tasks_beyond."""
    return "test_beyond" if config.view == "tasks_beyond" else config.role


def make_beyond_tasks(con, grammar: Grammar, n_tasks: int, seed: int = 0) -> int:
    """Draw up to ``n_tasks`` tasks of size max_ops + 1 into ``tasks_beyond``; return how many."""
    if n_tasks < 1:
        raise GensynthError(f"--tasks must be >= 1, got {n_tasks}.")
    max_ops = int(con.execute("SELECT value FROM meta WHERE key = 'max_ops'").fetchone()[0])
    known = set(con.execute("SELECT value_hash FROM functions").fetchnumpy()["value_hash"].tolist())
    rng = np.random.default_rng(seed)
    kept: dict[int, tuple] = {}
    for _ in range(50):  # rounds of draws; most draws are new functions at this size
        trees = [random_program(grammar, max_ops + 1, rng) for _ in range(4 * n_tasks)]
        values = evaluate_trees(trees, grammar)
        h1 = row_hashes(values)[0].view(np.int64)
        finite = (values.den > 0).all(axis=1)
        for t, h, ok, outs in zip(trees, h1.tolist(), finite, values.flt):
            if ok and h not in known and h not in kept and len(kept) < n_tasks:
                kept[h] = (to_prefix(t, grammar), outs.tolist())
        if len(kept) >= n_tasks:
            break
    run_sql(con, "beyond_tables.sql")
    con.executemany("INSERT INTO tasks_beyond VALUES (?, ?, ?, ?, ?)",
                    [(i, p, max_ops + 1, outs, h) for i, (h, (p, outs)) in enumerate(kept.items())])
    return len(kept)
