"""The bank: every observationally distinct value of the programs up to k operators.

For a grammar and a set of shown grid points, level n holds one representative program
(the first found, so a smallest one) of every value row, defined at every shown point,
first reached with n operators: two programs equal on every example are interchangeable
inside any larger program. Values are residue rows (``gensynth.synthesis.field``) keyed
by linear forms; an index sorted by key answers "which banked program has this value
(on these cells)?" for millions of queries at once.

* *Residue levels* (0..R) keep each value's residues: they serve as siblings in
  inversions and as terminals of lookups under any care mask.
* A *key level* (R + 1, optional) keeps only the keys of its values, computed from the
  levels below without forming the rows (keys are linear: ``key(a + b) = key(a) + key(b)``,
  and ``key(a * b)`` for a block of pairs is one matrix product). It is four to ten
  times larger than level R and serves as a terminal of full-care lookups only.

How many levels to build is the search's choice (by cost), bounded by a memory budget.
Building a level evaluates one candidate per operator application (deduplication is
free), charged to the meter. A bank depends only on the grammar and the shown points, so
it is cached per process and reused by later tasks with the same points; each task is
still charged every level it uses (the candidates and the seconds its build took).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field as dc_field

import numpy as np

from gensynth.synthesis import field
from gensynth.synthesis.budget import Meter
from gensynth.synthesis.field import P
from gensynth.universe.functions import leaf_values
from gensynth.universe.grammar import Grammar

PAIRS = 1 << 17  # operator applications evaluated per vectorised call
RES_BYTES_PER_CELL = 40  # residues, inverses and their float halves per cell of a residue level
KEY_BYTES_PER_ROW = 64  # keys, back-pointers and index entries per row of a key level


@dataclass
class Level:
    """One program size's distinct values."""

    size: int
    keys: np.ndarray  # (N, FORMS) int64 full-care keys
    sym: np.ndarray  # (N,) int16 root symbol
    left: np.ndarray  # (N,) int64 global id of the first child, -1 for leaves
    right: np.ndarray  # (N,) int64 global id of the second child, -1
    start: int  # global id of row 0
    cost: int  # candidates evaluated to build it
    seconds: float  # wall time the build took
    res: np.ndarray | None = None  # (N, G) residues; None on a key level
    cache: dict = dc_field(default_factory=dict)  # inverses, zero masks, float halves

    def __len__(self) -> int:
        return len(self.keys)

    def inv(self) -> np.ndarray:
        if "inv" not in self.cache:
            self.cache["inv"] = field.inverse(self.res)
        return self.cache["inv"]

    def zeros(self) -> np.ndarray:
        """(N, G) bool: cells where the value is 0."""
        if "zeros" not in self.cache:
            self.cache["zeros"] = self.res == 0
        return self.cache["zeros"]

    def zero_free(self) -> np.ndarray:
        if "zero_free" not in self.cache:
            self.cache["zero_free"] = ~self.zeros().any(axis=1)
        return self.cache["zero_free"]

    def halves(self, which: str = "res") -> tuple[np.ndarray, np.ndarray]:
        key = "halves_" + which
        if key not in self.cache:
            self.cache[key] = field.halves(self.res if which == "res" else self.inv())
        return self.cache[key]


class Bank:
    """Levels of distinct values for one grammar on one set of shown points."""

    def __init__(self, grammar: Grammar, points: np.ndarray, memory_bytes: float) -> None:
        self.grammar = grammar
        self.points = np.asarray(points, np.int64)
        self.forms = field.Forms(len(self.points))
        self.memory_bytes = memory_bytes
        self.levels: list[Level] = []
        self._index = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64))  # packed, k2, gid
        self._masked: dict[bytes, tuple] = {}
        self.starts = np.zeros(1, np.int64)

    # --- sizes --------------------------------------------------------------------

    @property
    def residue_levels(self) -> int:
        """How many levels keep residues (R + 1)."""
        return sum(1 for lv in self.levels if lv.res is not None)

    def applications(self, n: int) -> int:
        """Operator applications (candidates) that building level n evaluates, from the sizes below."""
        sizes = [len(lv) for lv in self.levels]
        total = 0
        for op in self.grammar.operators:
            if op.arity == 1:
                total += sizes[n - 1]
                continue
            for i in range(n):
                j = n - 1 - i
                if op.commutative and i > j:
                    continue
                total += sizes[i] * (sizes[j] + 1) // 2 if (op.commutative and i == j) else sizes[i] * sizes[j]
        return total

    def memory(self) -> float:
        g = len(self.points)
        return sum(len(lv) * (g * RES_BYTES_PER_CELL if lv.res is not None else KEY_BYTES_PER_ROW) for lv in self.levels)

    def fits(self, n: int, residues: bool) -> bool:
        """Whether level n (built from the levels below) stays within the memory budget (an upper bound)."""
        rows = self.applications(n)
        per = len(self.points) * RES_BYTES_PER_CELL if residues else KEY_BYTES_PER_ROW
        return self.memory() + rows * per <= self.memory_bytes

    # --- building and charging --------------------------------------------------------

    def charge(self, upto: int, paid: int, meter: Meter, residues: bool = True) -> int:
        """Make levels 0..upto available to a task that has paid for ``paid`` of them; returns upto + 1.

        Levels already built are charged at their recorded cost and seconds; missing ones
        are built now, charged as they are evaluated (raises OutOfBudget).
        """
        for n in range(paid, upto + 1):
            if n < len(self.levels):
                meter.spend(self.levels[n].cost)
                meter.charge_seconds(self.levels[n].seconds)
            elif n == 0:
                leaves = self._leaves()
                meter.spend(leaves.cost)
                self._add(leaves)
            else:
                self._add(self._build(n, meter, residues and self.levels[-1].res is not None))
        return upto + 1

    def _leaves(self) -> Level:
        v = leaf_values(self.grammar)
        res = field.residues(v.take(np.arange(len(v))))[:, self.points]
        keys = self.forms.keys(res)
        _, first = np.unique(field.pack(keys), return_index=True)
        first = np.sort(first)
        return Level(0, keys[first], first.astype(np.int16), np.full(len(first), -1), np.full(len(first), -1),
                     0, len(res), 0.0, res[first])

    def _add(self, level: Level) -> None:
        level.start = int(self.starts[-1])
        self.levels.append(level)
        self._masked.clear()  # masked indexes cover the residue levels banked so far
        self.starts = np.append(self.starts, level.start + len(level))
        packed, k2, gid = self._index
        packed = np.concatenate([packed, field.pack(level.keys)])
        k2 = np.concatenate([k2, level.keys[:, 2]])
        gid = np.concatenate([gid, level.start + np.arange(len(level))])
        order = np.argsort(packed, kind="stable")
        self._index = (packed[order], k2[order], gid[order])

    def _splits(self, n: int):
        """(operator index, left level, right level or None) of every way to make size n."""
        for k, op in enumerate(self.grammar.operators):
            if op.arity == 1:
                yield k, n - 1, None
                continue
            for i in range(n):
                if not (op.commutative and i > n - 1 - i):
                    yield k, i, n - 1 - i

    def _pairs(self, na: int, nb: int | None, triangle: bool):
        """Chunks of (left rows, right rows) over two levels (one level when nb is None)."""
        if nb is None:
            for lo in range(0, na, PAIRS):
                yield np.arange(lo, min(na, lo + PAIRS)), None
            return
        for lo in range(0, na * nb, PAIRS):
            idx = np.arange(lo, min(na * nb, lo + PAIRS))
            ia, ib = idx // nb, idx % nb
            if triangle:
                keep = ia <= ib
                ia, ib = ia[keep], ib[keep]
            yield ia, ib

    def _build(self, n: int, meter: Meter, residues: bool) -> Level:
        started = time.perf_counter()
        self._want_rows = residues
        parts, cost = [], 0
        for k, i, j in self._splits(n):
            op = self.grammar.operators[k]
            a, b = self.levels[i], (self.levels[j] if j is not None else None)
            blocks = self._row_blocks if residues or op.numpy in ("add", "subtract", "negative") else self._bilinear_blocks
            for keys, res, ia, ib, spent in blocks(op, a, b, i == j):
                cost += spent
                meter.spend(spent)
                parts.append((keys, res, np.full(len(keys), self.grammar.n_leaves + k, np.int16),
                              a.start + ia, (b.start + ib) if b is not None else np.full(len(keys), -1)))
        keys = np.concatenate([p[0] for p in parts]) if parts else np.empty((0, field.FORMS), np.int64)
        packed = field.pack(keys)
        order = np.argsort(packed, kind="stable")
        ps, k2 = packed[order], keys[order, 2]
        same = np.zeros(len(ps), bool)
        same[1:] = (ps[1:] == ps[:-1]) & (k2[1:] == k2[:-1])
        first = order[~same]
        first = np.sort(first[self.find(keys[first]) < 0])  # new values, first program reaching each (enumeration order)
        offsets = np.cumsum([0] + [len(p[0]) for p in parts])
        picks = [first[(first >= lo) & (first < hi)] - lo for lo, hi in zip(offsets[:-1], offsets[1:])]

        def cat(f: int, empty):
            chosen = [p[f][sel] for p, sel in zip(parts, picks) if len(sel)]
            return np.concatenate(chosen) if chosen else empty

        res = cat(1, np.empty((0, len(self.points)), np.int64)) if residues else None
        return Level(n, keys[first], cat(2, np.empty(0, np.int16)), cat(3, np.empty(0, np.int64)),
                     cat(4, np.empty(0, np.int64)), 0, cost, time.perf_counter() - started, res)

    def _row_blocks(self, op, a: Level, b: Level | None, same_level: bool):
        """(keys, residues or None, left rows, right rows, candidates) per chunk of operator applications."""
        name = op.numpy
        for ia, ib in self._pairs(len(a), None if b is None else len(b), op.commutative and same_level):
            spent = len(ia)
            if a.res is None or (b is not None and b.res is None):
                raise AssertionError("residue rows are built from residue levels")
            if not self._want_rows:  # a key level: keys of sums and differences are sums and differences of keys
                if b is None:
                    keys = (P - a.keys[ia]) % P
                else:
                    keys = (a.keys[ia] + (b.keys[ib] if name == "add" else P - b.keys[ib])) % P
                yield keys, None, ia, ib, spent
                continue
            binv = b.inv()[ib] if name in ("divide", "true_divide") else None
            res = field.apply(name, a.res[ia], None if b is None else b.res[ib], binv)
            ok = (res < P).all(axis=1)  # defined at every shown point (no division by zero)
            res, ia = res[ok], ia[ok]
            ib = ib[ok] if ib is not None else None
            yield self.forms.keys(res), res, ia, ib, spent

    def _bilinear_blocks(self, op, a: Level, b: Level, same_level: bool):
        """Keys of a * b or a / b for blocks of a's rows against all of b, one matrix product each."""
        divide = op.numpy in ("divide", "true_divide")
        b_rows = np.flatnonzero(b.zero_free()) if divide else np.arange(len(b))
        right = field.halves((b.inv() if divide else b.res)[b_rows].T)  # (G, Nb)
        step = max(1, PAIRS // max(len(b_rows), 1))
        for lo in range(0, len(a), step):
            ia_rows = np.arange(lo, min(len(a), lo + step))
            w = self.forms.weighted(a.res[ia_rows], np.ones(len(self.points), bool))  # (blk * L, G)
            k = field.dot(w, right).reshape(len(ia_rows), field.FORMS, len(b_rows))  # (blk, L, Nb)
            ia = np.repeat(ia_rows, len(b_rows))
            ib = np.tile(b_rows, len(ia_rows))
            keys = k.transpose(0, 2, 1).reshape(-1, field.FORMS)
            if op.commutative and same_level:
                keep = ia <= ib
                ia, ib, keys = ia[keep], ib[keep], keys[keep]
            yield keys, None, ia, ib, len(ia)

    # --- lookups ----------------------------------------------------------------------

    def find(self, keys: np.ndarray) -> np.ndarray:
        """Global id of the banked value with these full-care keys, or -1."""
        packed, k2, gid = self._index
        if len(packed) == 0 or len(keys) == 0:
            return np.full(len(keys), -1, np.int64)
        q = field.pack(keys)
        pos = np.minimum(np.searchsorted(packed, q), len(packed) - 1)
        hit = (packed[pos] == q) & (k2[pos] == keys[:, 2])
        return np.where(hit, gid[pos], -1)

    def level_of(self, gid: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.starts, gid, side="right") - 1

    def find_all(self, keys: np.ndarray, care: np.ndarray | None, max_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Every (query, gid) whose value equals the query's on the care cells, size <= max_size.

        Full care: the whole index (key level included). A care mask: the residue levels
        only, by an index of keys over those cells built once per mask (cached).
        """
        if care is None or care.all():
            gid = self.find(keys)
            q = np.flatnonzero(gid >= 0)
            g = gid[q]
        else:
            packed, k2, gids = self._masked_index(care)
            qp = field.pack(keys)
            lo, hi = np.searchsorted(packed, qp, "left"), np.searchsorted(packed, qp, "right")
            counts = hi - lo
            q = np.repeat(np.arange(len(keys)), counts)
            pos = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
            ok = k2[pos] == keys[q, 2]
            q, g = q[ok], gids[pos[ok]]
        keep = self.level_of(g) <= max_size
        return q[keep], g[keep]

    def _masked_index(self, care: np.ndarray) -> tuple:
        key = np.packbits(care).tobytes()
        if key not in self._masked:
            levels = [lv for lv in self.levels if lv.res is not None]
            keys = np.concatenate([self.forms.keys(lv.res, care) for lv in levels])
            gid = np.concatenate([lv.start + np.arange(len(lv)) for lv in levels])
            packed = field.pack(keys)
            order = np.argsort(packed, kind="stable")
            if len(self._masked) > 64:
                self._masked.clear()
            self._masked[key] = (packed[order], keys[order, 2], gid[order])
        return self._masked[key]

    # --- programs ---------------------------------------------------------------------

    def tree(self, gid: int) -> tuple:
        """The representative program of a banked value."""
        lvl = int(self.level_of(np.array([gid]))[0])
        lv, k = self.levels[lvl], gid - self.levels[lvl].start
        kids = [c for c in (int(lv.left[k]), int(lv.right[k])) if c >= 0]
        return (int(lv.sym[k]), *[self.tree(c) for c in kids])


_CACHE: dict[tuple, Bank] = {}


def bank_for(grammar: Grammar, points: np.ndarray, memory_bytes: float) -> Bank:
    """The process's bank for this grammar and these shown points (at most two kept)."""
    key = (grammar.hash, np.asarray(points, np.int64).tobytes(), memory_bytes)
    if key not in _CACHE:
        if len(_CACHE) >= 2:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = Bank(grammar, points, memory_bytes)
    return _CACHE[key]
