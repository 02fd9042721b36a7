"""Stage 1: exhaustive enumeration of every program up to ``max_ops`` operators.

Writes (through ``gensynth.pipeline``) the structural columns of ``programs``. Programs are
enumerated bottom-up as a DAG: a program with n operators is an operator applied to
programs with fewer operators, so each one is stored as (root symbol, left child id,
right child id). Ids are dense and ordered by (n_ops, operator, left size, left id,
right id); every block of same-shaped programs is produced by a numpy repeat/tile, never
by a Python loop over programs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gensynth.errors import GensynthError
from gensynth.universe.budget import check_memory
from gensynth.universe.grammar import Grammar

# The largest universe gensynth will build in one go (about 2x the full 4-op default
# universe); larger ones do not fit the memory budget of a 24 GiB, 2-core machine.
MAX_PROGRAMS = 25_000_000


def count_programs(grammar: Grammar, max_ops: int) -> list[int]:
    """Exact number of programs with exactly n operators, for n = 0..max_ops (no enumeration).

    c(0) = leaves; c(n) = unary * c(n-1) + binary * sum_i c(i) c(n-1-i).
    """
    n_unary = sum(op.arity == 1 for op in grammar.operators)
    n_binary = sum(op.arity == 2 for op in grammar.operators)
    counts = [grammar.n_leaves]
    for n in range(1, max_ops + 1):
        pairs = sum(counts[i] * counts[n - 1 - i] for i in range(n))
        counts.append(n_unary * counts[n - 1] + n_binary * pairs)
    return counts


def check_size(grammar: Grammar, max_ops: int, cap: int = MAX_PROGRAMS) -> int:
    """Validate ``--max-ops`` before any work; return the total program count."""
    if max_ops < 0:
        raise GensynthError(f"--max-ops must be 0 or more, got {max_ops}. Use e.g. --max-ops 3.")
    # Stop counting as soon as the cap is passed: the counts grow exponentially.
    total, n = 0, 0
    while n <= max_ops:
        total = sum(count_programs(grammar, n))
        if total > cap:
            break
        n += 1
    if total > cap:
        largest = n - 1
        raise GensynthError(
            f"--max-ops {max_ops} would enumerate at least {total:,} programs with grammar '{grammar.name}' "
            f"(up to {n} operators), over the cap of {cap:,} programs (gensynth.universe.programs.MAX_PROGRAMS, "
            f"sized for a 24 GiB machine). Use --max-ops {largest} or less."
        )
    check_memory(grammar, max_ops)  # every stage's estimated peak, before any work
    return total


@dataclass
class ProgramDag:
    """Every program as a DAG node: root symbol id and child program ids (-1: none)."""

    symbol: np.ndarray  # (N,) int16: symbol id of the root (grammar.symbols order)
    left: np.ndarray  # (N,) int32: first child's program id, -1 for leaves
    right: np.ndarray  # (N,) int32: second child's program id, -1 for leaves and unary nodes
    n_ops: np.ndarray  # (N,) int8: number of operator nodes
    depth: np.ndarray  # (N,) int8: edges on the longest root-to-leaf path (a leaf has depth 0)
    level_start: np.ndarray  # (max_ops + 2,) int64: programs with n ops are ids level_start[n]:level_start[n+1]

    def __len__(self) -> int:
        return len(self.symbol)

    def level(self, n: int) -> slice:
        """The id range of programs with exactly n operators."""
        return slice(int(self.level_start[n]), int(self.level_start[n + 1]))


def enumerate_programs(grammar: Grammar, max_ops: int) -> ProgramDag:
    """Enumerate every program with at most ``max_ops`` operators, each exactly once."""
    check_size(grammar, max_ops)
    counts = count_programs(grammar, max_ops)
    start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    total = int(start[-1])
    symbol = np.empty(total, np.int16)
    left = np.full(total, -1, np.int32)
    right = np.full(total, -1, np.int32)
    n_ops = np.empty(total, np.int8)
    symbol[: grammar.n_leaves] = np.arange(grammar.n_leaves)
    n_ops[: grammar.n_leaves] = 0

    def ids(n: int) -> np.ndarray:
        return np.arange(start[n], start[n + 1], dtype=np.int32)

    for n in range(1, max_ops + 1):
        pos = int(start[n])
        for k, op in enumerate(grammar.operators):
            sym = grammar.n_leaves + k
            if op.arity == 1:
                child = ids(n - 1)
                block = slice(pos, pos + len(child))
                left[block] = child
            else:
                for i in range(n):
                    a, b = ids(i), ids(n - 1 - i)
                    block = slice(pos, pos + len(a) * len(b))
                    left[block] = np.repeat(a, len(b))  # left-major: all right children of a[0] first
                    right[block] = np.tile(b, len(a))
                    symbol[block] = sym
                    pos = block.stop
                continue
            symbol[block] = sym
            pos = block.stop
        assert pos == start[n + 1], "enumeration block sizes disagree with count_programs"
        n_ops[start[n] : start[n + 1]] = n
    depth = _depths(left, right, start)
    return ProgramDag(symbol, left, right, n_ops, depth, start)


def _depths(left: np.ndarray, right: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Tree depth of every program, level by level (children always precede parents)."""
    depth = np.zeros(len(left), np.int8)
    for n in range(1, len(start) - 1):
        block = slice(int(start[n]), int(start[n + 1]))
        lc, rc = left[block], right[block]
        child_depth = depth[lc]
        has_right = rc >= 0
        child_depth = np.where(has_right, np.maximum(child_depth, depth[np.where(has_right, rc, 0)]), child_depth)
        depth[block] = child_depth + 1
    return depth


def write_programs(con, grammar: Grammar, dag: ProgramDag, function_id: np.ndarray) -> None:
    """Write ``symbols`` and ``programs`` (text built level by level in SQL from the DAG)."""
    from gensynth.warehouse import run_sql

    write_symbols(con, grammar)
    con.register("dag", {
        "program_id": np.arange(len(dag), dtype=np.int32),
        "root_symbol": dag.symbol,
        "left_id": dag.left,
        "right_id": dag.right,
        "n_ops": dag.n_ops,
        "depth": dag.depth,
        "function_id": function_id.astype(np.int32),
    })
    try:
        run_sql(con, "build/program_leaves.sql")
        max_ops = len(dag.level_start) - 2
        for n in range(1, max_ops + 1):
            run_sql(con, "build/child_text.sql", {"n_ops": n - 1})
            run_sql(con, "build/program_text.sql", {"n_ops": n})
    finally:
        con.unregister("dag")
        con.execute("DROP TABLE IF EXISTS child_text; DROP TABLE IF EXISTS symbol_text")


def write_symbols(con, grammar: Grammar) -> None:
    """Write the ``symbols`` table: one row per token in symbol-id order."""
    rows = [(i, v, "variable", 0, None, None) for i, v in enumerate(grammar.variables)]
    rows += [(len(rows) + i, t, "constant", 0, None, str(c))
             for i, (t, c) in enumerate(zip(grammar.constant_tokens, grammar.constants))]
    rows += [(len(rows) + i, op.token, "operator", op.arity, op.numpy, None) for i, op in enumerate(grammar.operators)]
    con.executemany("INSERT INTO symbols VALUES (?, ?, ?, ?, ?, ?)", rows)
