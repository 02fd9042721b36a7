"""Stage 2: evaluate every program on the grid and group programs into functions.

Reads the program DAG from ``gensynth.universe.programs``; produces each program's
``function_id`` and the ``functions`` rows (outputs, finiteness, size of the class, the
smallest program). The value of ``op(a, b)`` depends only on the *functions* of ``a`` and
``b``, so each level evaluates one value matrix per distinct (operator, function(a),
function(b)) triple, not per program: far fewer rows than programs.

Classes are keyed by a 128-bit hash of each row's exact values (two independent 64-bit
hashes of the reduced (num, den) pairs, see ``gensynth.universe.rational``). Equal rows always hash
equal, so programs that are equal on the grid always share a class; two different rows
would have to collide on 128 bits to merge (probability about F^2 / 2^129, about 1e-26
for F = 10^6 functions), and a collision on the first 64 bits alone is detected and
reported rather than silently merged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gensynth.universe.programs import ProgramDag
from gensynth.errors import GensynthError
from gensynth.universe.grammar import Grammar
from gensynth.universe.rational import Evaluator, Values, from_fractions

# Rows evaluated per chunk: bounds the working memory at about 200 bytes * points * rows.
CHUNK_ROWS = 200_000
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass
class Functions:
    """Semantic classes, indexed by function_id (ordered by their smallest program)."""

    outputs: np.ndarray  # (F, G) float64, NaN where undefined
    finite: np.ndarray  # (F,) bool: every output is finite
    n_programs: np.ndarray  # (F,) int64: programs in the class
    smallest_program: np.ndarray  # (F,) int64: smallest program id (fewest ops, then lowest id)
    value_hash: np.ndarray  # (F,) int64: 64-bit hash of the exact values (first of row_hashes)

    def __len__(self) -> int:
        return len(self.finite)


@dataclass
class Evaluation:
    """Output of the evaluation stage."""

    function_id: np.ndarray  # (N,) int32 per program
    functions: Functions
    distinct_evaluations: int  # value rows computed (distinct operator/argument-function triples)
    overflow_cells: int  # cells recomputed with Python Fractions after an int64 overflow


def leaf_values(grammar: Grammar) -> Values:
    """Exact value matrix of every leaf symbol (variables, then constants) on the grid."""
    points = grammar.grid_points
    rows = [[p[i] for p in points] for i in range(len(grammar.variables))]
    rows += [[c] * len(points) for c in grammar.constants]
    return from_fractions(rows)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijective mix of uint64 words (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def row_hashes(values: Values) -> tuple[np.ndarray, np.ndarray]:
    """Two 64-bit hashes of each row's exact cell states (num, den): equal rows hash equal.

    Each cell (num, den) is mixed once; the two row hashes are sums of the mixed cells
    weighted by two independent sets of odd per-position multipliers.
    """
    with np.errstate(over="ignore"):
        num = values.num.view(np.uint64)
        den = values.den.view(np.uint64)
        cell = _splitmix(num * np.uint64(0x9E3779B97F4A7C15) + den * np.uint64(0xD6E8FEB86659FD93))
        positions = np.arange(1, values.num.shape[1] + 1, dtype=np.uint64)
        hashes = []
        for seed in (0x1234567, 0x89ABCDEF):
            weight = _splitmix(positions * np.uint64(seed)) | np.uint64(1)
            hashes.append(_splitmix((cell * weight).sum(axis=1, dtype=np.uint64)))
        return hashes[0], hashes[1]


def evaluate_programs(grammar: Grammar, dag: ProgramDag, progress=None) -> Evaluation:
    """Evaluate every program of ``dag`` exactly on the grammar's grid and class them."""
    evaluator = Evaluator()
    classes = _ClassTable()
    leaves = leaf_values(grammar)
    fid = np.empty(len(dag), np.int64)
    fid[dag.level(0)] = classes.add_level(leaves, keep_exact=True)
    evaluations = len(leaves)
    max_ops = len(dag.level_start) - 2
    for n in range(1, max_ops + 1):
        block = dag.level(n)
        triples, inverse = _distinct_triples(grammar, dag, fid, block)
        evaluations += len(triples)
        rows = _evaluate_triples(grammar, evaluator, classes, triples, progress)
        fid[block] = classes.add_level(rows, keep_exact=n < max_ops)[inverse]
        if progress is not None:
            progress(n, max_ops)
    functions, renumber = classes.finish(fid)
    return Evaluation(renumber[fid].astype(np.int32), functions, evaluations, evaluator.overflow_cells)


def _distinct_triples(grammar: Grammar, dag: ProgramDag, fid: np.ndarray, block: slice):
    """Distinct (symbol, function of left, function of right) over a level, and each program's index."""
    sym = dag.symbol[block].astype(np.int64)
    fl = fid[dag.left[block]]
    right = dag.right[block]
    fr = np.where(right >= 0, fid[np.maximum(right, 0)], -1)
    commutative = np.array([False] * grammar.n_leaves + [op.commutative for op in grammar.operators])
    swap = commutative[sym] & (fl > fr)  # op(a, b) == op(b, a): evaluate one order only
    fl, fr = np.where(swap, fr, fl), np.where(swap, fl, fr)
    n_fun = int(fid[: block.start].max()) + 2
    if len(grammar.symbols) * n_fun * n_fun >= 2**63:
        raise GensynthError("Too many functions to key evaluation triples in int64; lower --max-ops.")
    key = (sym * n_fun + fl) * n_fun + (fr + 1)
    unique, inverse = np.unique(key, return_inverse=True)
    triples = np.stack([unique // (n_fun * n_fun), unique // n_fun % n_fun, unique % n_fun - 1], axis=1)
    return triples, inverse


def _evaluate_triples(grammar: Grammar, evaluator: Evaluator, classes: "_ClassTable", triples: np.ndarray, progress) -> "_Rows":
    """Evaluate each distinct triple's value row, chunk by chunk, grouped by operator."""
    out = _Rows()
    for start in range(0, len(triples), CHUNK_ROWS):
        chunk = triples[start : start + CHUNK_ROWS]
        parts = []
        for sym in np.unique(chunk[:, 0]):
            sel = np.nonzero(chunk[:, 0] == sym)[0]
            op = grammar.operators[int(sym) - grammar.n_leaves]
            a = classes.exact.take(chunk[sel, 1])
            b = classes.exact.take(chunk[sel, 2]) if op.arity == 2 else None
            parts.append((sel, evaluator.apply(op, a, b)))
        out.add(parts, len(chunk))
    return out


class _Rows:
    """Value rows of one level, in triple order, accumulated chunk by chunk."""

    def __init__(self) -> None:
        self.chunks: list[Values] = []

    def add(self, parts: list[tuple[np.ndarray, Values]], n: int) -> None:
        g = parts[0][1].num.shape[1]
        v = Values(np.empty((n, g), np.int64), np.empty((n, g), np.int64), np.empty((n, g), np.float64))
        for sel, part in parts:
            v.num[sel], v.den[sel], v.flt[sel] = part.num, part.den, part.flt
        self.chunks.append(v)


class _ClassTable:
    """Known functions: 128-bit hash → temporary id, outputs, and exact rows for reuse."""

    def __init__(self) -> None:
        self.h1 = np.empty(0, np.uint64)  # sorted
        self.h2 = np.empty(0, np.uint64)  # aligned with h1
        self.ids = np.empty(0, np.int64)  # aligned with h1
        self.outputs: list[np.ndarray] = []
        self.hashes: list[np.ndarray] = []
        self.exact = Values(np.empty((0, 0), np.int64), np.empty((0, 0), np.int64), np.empty((0, 0)))
        self.count = 0

    def add_level(self, rows: Values | _Rows, keep_exact: bool) -> np.ndarray:
        """Class every row (new hashes become new functions); return each row's temporary id."""
        chunks = rows.chunks if isinstance(rows, _Rows) else [rows]
        row_ids, new_h1, new_h2, new_rows, new_exact = [], [], [], [], []
        for v in chunks:
            h1, h2 = row_hashes(v)
            ids = self._lookup(h1, h2)
            new = ids < 0
            # Several rows of this chunk may be the same new function: keep the first.
            u, first, inv = np.unique(h1[new], return_index=True, return_inverse=True)
            rows_new = np.nonzero(new)[0][first]
            self._check_collisions(h1[new], h2[new], u, inv, h2[rows_new])
            ids[new] = -2 - (sum(len(x) for x in new_h1) + inv)  # provisional, resolved below
            new_h1.append(u)
            new_h2.append(h2[rows_new])
            new_rows.append(v.flt[rows_new])
            if keep_exact:
                new_exact.append(v.take(rows_new))
            row_ids.append(ids)
        return self._commit(row_ids, new_h1, new_h2, new_rows, new_exact, keep_exact)

    def _lookup(self, h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.h1, h1)
        pos_ok = np.minimum(pos, max(len(self.h1) - 1, 0))
        found = (pos < len(self.h1)) & (self.h1[pos_ok] == h1) if len(self.h1) else np.zeros(len(h1), bool)
        if found.any() and (self.h2[pos_ok][found] != h2[found]).any():
            raise GensynthError("64-bit hash collision between two different functions; report this bug.")
        return np.where(found, self.ids[pos_ok] if len(self.h1) else -1, -1)

    @staticmethod
    def _check_collisions(h1, h2, u, inv, h2_first) -> None:
        if len(h1) and (h2 != h2_first[inv]).any():
            raise GensynthError("64-bit hash collision between two different functions; report this bug.")

    def _commit(self, row_ids, new_h1, new_h2, new_rows, new_exact, keep_exact) -> np.ndarray:
        """Merge the level's new functions (deduplicated across chunks) into the table."""
        cand_h1 = np.concatenate(new_h1)
        cand_h2 = np.concatenate(new_h2)
        u, first, inv = np.unique(cand_h1, return_index=True, return_inverse=True)
        self._check_collisions(cand_h1, cand_h2, u, inv, cand_h2[first])
        # Temporary ids of the level's new functions follow discovery order (first occurrence).
        order = np.argsort(first, kind="stable")
        rank = np.empty(len(u), np.int64)
        rank[order] = np.arange(len(u))
        new_ids = self.count + rank  # per unique new hash
        cand_ids = new_ids[inv]  # per candidate
        ids = np.concatenate(row_ids)
        provisional = ids <= -2
        ids[provisional] = cand_ids[-2 - ids[provisional]]
        keep = first[order]
        self.outputs.append(np.concatenate(new_rows)[keep])
        self.hashes.append(cand_h1[keep])
        if keep_exact:
            ex = Values(*(np.concatenate([getattr(e, f) for e in new_exact])[keep] for f in ("num", "den", "flt")))
            self.exact = ex if len(self.exact) == 0 else Values(
                *(np.concatenate([getattr(self.exact, f), getattr(ex, f)]) for f in ("num", "den", "flt")))
        merged_h1 = np.concatenate([self.h1, u])
        merged_h2 = np.concatenate([self.h2, cand_h2[first]])
        merged_ids = np.concatenate([self.ids, new_ids])
        order = np.argsort(merged_h1, kind="stable")
        self.h1, self.h2, self.ids = merged_h1[order], merged_h2[order], merged_ids[order]
        self.count += len(u)
        return ids

    def finish(self, fid: np.ndarray) -> tuple[Functions, np.ndarray]:
        """Renumber functions by their smallest program and build the Functions table."""
        outputs = np.concatenate(self.outputs)
        hashes = np.concatenate(self.hashes)
        n_programs = np.bincount(fid, minlength=self.count)
        _, first_program = np.unique(fid, return_index=True)  # programs are ordered by size, so first = smallest
        order = np.argsort(first_program, kind="stable")
        renumber = np.empty(self.count, np.int64)
        renumber[order] = np.arange(self.count)
        outputs = outputs[order]
        functions = Functions(
            outputs=outputs,
            finite=np.isfinite(outputs).all(axis=1),
            n_programs=n_programs[order],
            smallest_program=first_program[order],
            value_hash=hashes[order].view(np.int64),
        )
        return functions, renumber


def write_functions(con, grammar: Grammar, functions: Functions) -> None:
    """Write ``grid`` and ``functions`` (outputs assembled into lists by sql/build/functions.sql)."""
    from gensynth.warehouse import run_sql

    points = grammar.grid_points
    con.executemany(
        "INSERT INTO grid VALUES (?, ?, ?)",
        [(i, [float(c) for c in p], [str(c) for c in p]) for i, p in enumerate(points)],
    )
    n_fun = len(functions)
    columns = {
        "function_id": np.arange(n_fun, dtype=np.int32),
        "finite": functions.finite,
        "n_programs": functions.n_programs.astype(np.int32),
        "smallest_program": functions.smallest_program.astype(np.int32),
        "value_hash": functions.value_hash,
    }
    # One column per grid point (o0, o1, ...): sql/build/functions.sql packs them into a list.
    columns |= {f"o{j}": np.ascontiguousarray(functions.outputs[:, j]) for j in range(len(points))}
    con.register("function_cols", columns)
    try:
        run_sql(con, "build/functions.sql")
    finally:
        con.unregister("function_cols")
