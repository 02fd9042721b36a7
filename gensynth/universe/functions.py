"""Stage 2: evaluate every program on the grid and group programs into functions.

Reads the program DAG from ``gensynth.universe.programs``; produces each program's
``function_id`` and the ``functions`` rows (outputs, finiteness, size of the class, the
smallest program). The value of ``op(a, b)`` depends only on the *functions* of ``a`` and
``b``, so each level evaluates one value matrix per distinct (operator, function(a),
function(b)) triple, not per program: far fewer rows than programs.

Classes are keyed by a 128-bit hash of each row's exact values: two independent 64-bit
hashes of the reduced (num, den) pairs (``row_hashes``), compared together everywhere a
hash stands for equality (``PairIndex``; ``functions.value_hash``/``value_hash2``). Equal
rows always hash equal, so programs that are equal on the grid always share a class.
Two different rows merge only if both halves collide; for hashes that behave like
random functions of the row that happens with probability about F² / 2¹²⁹ over F
functions (about 1e-27 for F = 10⁶). That is a heuristic, not a proof: splitmix64 is
not a cryptographic hash, but no structure in (num, den) — such as the linear relations
that broke an earlier scheme — maps distinct rows to equal hashes.
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


@dataclass
class Functions:
    """Semantic classes, indexed by function_id (ordered by their smallest program)."""

    outputs: np.ndarray  # (F, G) float64, NaN where undefined
    finite: np.ndarray  # (F,) bool: every output is finite
    n_programs: np.ndarray  # (F,) int64: programs in the class
    smallest_program: np.ndarray  # (F,) int64: smallest program id (fewest ops, then lowest id)
    value_hash: np.ndarray  # (F,) int64: first half of the 128-bit hash of the exact values (row_hashes)
    value_hash2: np.ndarray  # (F,) int64: second half; a function's identity is the pair

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


# Per half: (numerator key, denominator key, denominator multiplier, position seed).
_HALVES = ((0x243F6A8885A308D3, 0x13198A2E03707344, 0xA4093822299F31D1, 0x1234567),
           (0x082EFA98EC4E6C89, 0x452821E638D01377, 0xBE5466CF34E90C6D, 0x89ABCDEF))


def row_hashes(values: Values) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes (uint64) of each row's exact cell states (num, den): equal rows hash equal.

    Per half, numerator and denominator are mixed separately, each by splitmix64 of the
    word xored with a key of that half, and combined as mix(num) xor mix(den)·m (m odd);
    the row hash is splitmix64 of the sum of the cells weighted by odd per-position
    multipliers. Both halves use different keys, so they are independent mixes. Nothing
    is linear in (num, den) before a mix: an earlier scheme hashed num·c1 + den·c2 once
    for both halves, and every (Δnum, Δden) with Δnum·c1 + Δden·c2 ≡ 0 (mod 2⁶⁴) — 31-bit
    pairs exist, see tests/test_functions.py — collided in all 128 bits at once.
    """
    with np.errstate(over="ignore"):
        num = values.num.view(np.uint64)
        den = values.den.view(np.uint64)
        positions = np.arange(1, values.num.shape[1] + 1, dtype=np.uint64)
        hashes = []
        for num_key, den_key, den_mult, seed in _HALVES:
            cell = _splitmix(num ^ np.uint64(num_key)) ^ (_splitmix(den ^ np.uint64(den_key)) * np.uint64(den_mult))
            weight = _splitmix(positions * np.uint64(seed)) | np.uint64(1)
            hashes.append(_splitmix((cell * weight).sum(axis=1, dtype=np.uint64)))
        return hashes[0], hashes[1]


def distinct_pairs(h1: np.ndarray, h2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (h1, h2) pairs: the index of each one's first occurrence (ascending) and each row's pair number.

    Like ``np.unique(..., return_index=True, return_inverse=True)`` on the 128-bit pair,
    with pairs numbered in order of first occurrence.
    """
    if len(h1) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order = np.lexsort((h2, h1))  # stable: within equal pairs the first occurrence comes first
    a, b = h1[order], h2[order]
    starts = np.ones(len(order), bool)
    starts[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    group = np.cumsum(starts) - 1  # pair number in sorted order, per sorted row
    first = order[starts]  # first occurrence of each pair (sorted-pair order)
    rank = np.empty(len(first), np.int64)
    by_first = np.argsort(first, kind="stable")
    rank[by_first] = np.arange(len(first))
    inverse = np.empty(len(order), np.int64)
    inverse[order] = rank[group]
    return first[by_first], inverse


class PairIndex:
    """A sorted index from 128-bit (h1, h2) row hashes to ids: the one place a row hash means equality."""

    def __init__(self) -> None:
        self.h1 = np.empty(0, np.uint64)  # sorted by (h1, h2)
        self.h2 = np.empty(0, np.uint64)
        self.ids = np.empty(0, np.int64)

    def __len__(self) -> int:
        return len(self.h1)

    def add(self, h1: np.ndarray, h2: np.ndarray, ids: np.ndarray) -> None:
        """Add pairs (not already present) with their ids."""
        h1, h2 = np.concatenate([self.h1, h1]), np.concatenate([self.h2, h2])
        order = np.lexsort((h2, h1))
        self.h1, self.h2, self.ids = h1[order], h2[order], np.concatenate([self.ids, ids])[order]

    def lookup(self, h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
        """The id of each (h1, h2) pair, or -1 where the index does not hold it (both halves compared)."""
        n = len(self.h1)
        if n == 0:
            return np.full(len(h1), -1, np.int64)
        lo = np.searchsorted(self.h1, h1, side="left")
        hi = np.searchsorted(self.h1, h1, side="right")
        pos = lo.copy()
        for i in np.flatnonzero(hi - lo > 1):  # first halves equal for different rows: ~n²/2⁶⁵, rare
            pos[i] = lo[i] + np.searchsorted(self.h2[lo[i] : hi[i]], h2[i])
        safe = np.minimum(pos, n - 1)
        hit = (pos < hi) & (self.h2[safe] == h2)
        return np.where(hit, self.ids[safe], -1)


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
        self.index = PairIndex()
        self.outputs: list[np.ndarray] = []
        self.hashes: list[np.ndarray] = []  # (n, 2) uint64 per level: both halves of each new function
        self.exact = Values(np.empty((0, 0), np.int64), np.empty((0, 0), np.int64), np.empty((0, 0)))
        self.count = 0

    def add_level(self, rows: Values | _Rows, keep_exact: bool) -> np.ndarray:
        """Class every row (new hashes become new functions); return each row's temporary id."""
        chunks = rows.chunks if isinstance(rows, _Rows) else [rows]
        row_ids, new_h, new_rows, new_exact = [], [], [], []
        for v in chunks:
            h1, h2 = row_hashes(v)
            ids = self.index.lookup(h1, h2)
            new = np.flatnonzero(ids < 0)
            # Several rows of this chunk may be the same new function: keep the first.
            first, inv = distinct_pairs(h1[new], h2[new])
            ids[new] = -2 - (sum(len(x) for x in new_h) + inv)  # provisional, resolved below
            new_h.append(np.stack([h1[new[first]], h2[new[first]]], axis=1))
            new_rows.append(v.flt[new[first]])
            if keep_exact:
                new_exact.append(v.take(new[first]))
            row_ids.append(ids)
        return self._commit(row_ids, new_h, new_rows, new_exact, keep_exact)

    def _commit(self, row_ids, new_h, new_rows, new_exact, keep_exact) -> np.ndarray:
        """Merge the level's new functions (deduplicated across chunks) into the table."""
        cand = np.concatenate(new_h) if new_h else np.empty((0, 2), np.uint64)
        keep, inv = distinct_pairs(cand[:, 0], cand[:, 1])  # temporary ids follow discovery order
        new_ids = self.count + np.arange(len(keep))
        ids = np.concatenate(row_ids)
        provisional = ids <= -2
        ids[provisional] = new_ids[inv[-2 - ids[provisional]]]
        self.outputs.append(np.concatenate(new_rows)[keep])
        self.hashes.append(cand[keep])
        if keep_exact:
            ex = Values(*(np.concatenate([getattr(e, f) for e in new_exact])[keep] for f in ("num", "den", "flt")))
            self.exact = ex if len(self.exact) == 0 else Values(
                *(np.concatenate([getattr(self.exact, f), getattr(ex, f)]) for f in ("num", "den", "flt")))
        self.index.add(cand[keep, 0], cand[keep, 1], new_ids)
        self.count += len(keep)
        return ids

    def finish(self, fid: np.ndarray) -> tuple[Functions, np.ndarray]:
        """Renumber functions by their smallest program and build the Functions table."""
        outputs = np.concatenate(self.outputs)
        hashes = np.concatenate(self.hashes)[:, 0]
        hashes2 = np.concatenate(self.hashes)[:, 1]
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
            value_hash2=hashes2[order].view(np.int64),
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
        "value_hash2": functions.value_hash2,
    }
    # One column per grid point (o0, o1, ...): sql/build/functions.sql packs them into a list.
    columns |= {f"o{j}": np.ascontiguousarray(functions.outputs[:, j]) for j in range(len(points))}
    con.register("function_cols", columns)
    try:
        run_sql(con, "build/functions.sql")
    finally:
        con.unregister("function_cols")
