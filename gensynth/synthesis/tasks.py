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
from gensynth.limits import MAX_BEYOND_TASKS
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


def check_task_count(n_tasks: int) -> None:
    """Refuse, before any work, a task count below 1 or above ``MAX_BEYOND_TASKS`` (gensynth.limits)."""
    if n_tasks < 1:
        raise GensynthError(f"--tasks must be >= 1, got {n_tasks}.")
    if n_tasks > MAX_BEYOND_TASKS:
        raise GensynthError(
            f"--tasks {n_tasks:,} is more than the cap of {MAX_BEYOND_TASKS:,} tasks beyond the universe (each draw "
            f"round evaluates 4 random programs per task). Use --tasks {MAX_BEYOND_TASKS:,} or fewer."
        )


def make_beyond_tasks(con, grammar: Grammar, n_tasks: int, seed: int = 0) -> int:
    """Draw up to ``n_tasks`` tasks of size max_ops + 1 into ``tasks_beyond``; return how many."""
    check_task_count(n_tasks)
    max_ops = int(con.execute("SELECT value FROM meta WHERE key = 'max_ops'").fetchone()[0])
    known = set(con.execute("SELECT value_hash, value_hash2 FROM functions").fetchall())  # both halves: a function's identity
    rng = np.random.default_rng(seed)
    kept: dict[tuple[int, int], tuple] = {}  # (value_hash, value_hash2) -> (prefix, outputs)
    for _ in range(50):  # rounds of draws; most draws are new functions at this size
        trees = [random_program(grammar, max_ops + 1, rng) for _ in range(4 * n_tasks)]
        values = evaluate_trees(trees, grammar)
        h1, h2 = (h.view(np.int64).tolist() for h in row_hashes(values))
        finite = (values.den > 0).all(axis=1)
        for t, h, ok, outs in zip(trees, zip(h1, h2), finite, values.flt):
            if ok and h not in known and h not in kept and len(kept) < n_tasks:
                kept[h] = (to_prefix(t, grammar), outs.tolist())
        if len(kept) >= n_tasks:
            break
    run_sql(con, "beyond_tables.sql")
    if kept:  # a small grammar may have no new function one operator larger
        con.executemany("INSERT INTO tasks_beyond VALUES (?, ?, ?, ?, ?, ?)",
                        [(i, p, max_ops + 1, outs, h[0], h[1]) for i, (h, (p, outs)) in enumerate(kept.items())])
    return len(kept)
