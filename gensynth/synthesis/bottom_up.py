"""Exact bottom-up search: the enumerative method's engine for what the residue lane cannot do.

``gensynth.synthesis.enumerative`` hands a task to this engine when the grammar has
operators outside + - * / and negation (sqrt, abs, max, any float ufunc) or when the
target is undefined at a shown point. Everything here is exact rational arithmetic
(``gensynth.universe.rational``): slower, but any operator and undefined cells work.

Given only a grammar and a task's examples (outputs at some grid points), find a
smallest program consistent with them. It never reads a warehouse: everything is built
from the grammar's leaves and operators (tests run it on grammars no warehouse exists for).

How it searches, in order of size n = 0, 1, 2, ...:

* A *bank* keeps, for each size, the observationally distinct values (exact rationals at
  the example points, ``gensynth.universe.rational``) of programs of exactly that size, one
  representative program each: two programs equal on every example are interchangeable
  inside any larger program, so only the smallest is kept.
* To test size n it does not enumerate every pair. For an operator with a known exact
  inverse it runs the operator backwards from the target: for ``a + b = t`` and every
  banked ``a`` it computes the one ``b = t - a`` that would work and looks it up in the
  bank by hash (top-down deduction). Pairs the inverse cannot pin down (``a * b = t``
  where ``a`` has a zero; targets undefined somewhere; operators without an inverse) are
  enumerated forwards and compared with the target.
* If no program of size n fits, the bank's level n is built by forward enumeration of
  all operator applications over smaller levels, deduplicated against everything banked.

The first hit is therefore a smallest consistent program. Every value row computed
counts as one candidate evaluation against the budget (as does every inverse lookup).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from gensynth.errors import GensynthError
from gensynth.synthesis.budget import Budget, Meter, OutOfBudget
from gensynth.universe.functions import PairIndex, distinct_pairs, leaf_values, row_hashes
from gensynth.universe.grammar import Grammar
from gensynth.universe.rational import Evaluator, Values

CHUNK = 100_000  # candidate rows evaluated per vectorised call
INVERTIBLE = {"add", "subtract", "multiply", "divide", "true_divide"}


@dataclass
class SearchResult:
    """Outcome of one search."""

    prefix: str | None  # the program found (prefix tokens), None if none
    status: str  # 'solved', 'budget' (candidates spent), 'timeout', 'exhausted' (max_ops reached)
    candidates: int  # candidates evaluated (value rows, inverse lookups), as charged to the meter
    seconds: float
    n_ops: int | None = None
    exact_up_to: int | None = None  # no program of at most this many operators fits (other than the one found)
    how: str = ""  # how the program was reached


def _exact_op(name: str, arity: int = 2):
    """An exact operator by numpy name, used to run inverses (it need not be in the grammar)."""
    from gensynth.universe.grammar import Operator

    return Operator(token=name, arity=arity, numpy=name)


def exact_target(values: np.ndarray) -> Values | None:
    """Recover exact rationals from float examples (NaN = undefined); None if some value is not one.

    A float x is taken as the rational with the smallest denominator (≤ 10^12) that rounds
    to exactly x. Values of this grammar family are such rationals; infinities are not.
    """
    num = np.zeros((1, len(values)), np.int64)
    den = np.zeros((1, len(values)), np.int64)
    for j, x in enumerate(np.asarray(values, dtype=np.float64).tolist()):
        if np.isnan(x):
            continue  # undefined: num = den = 0
        if not np.isfinite(x):
            return None
        r = Fraction(x).limit_denominator(10**12)
        if float(r) != x or abs(r.numerator) >= 2**62:
            return None
        num[0, j], den[0, j] = r.numerator, r.denominator
    return Values(num, den, np.where(den > 0, num / np.where(den > 0, den, 1), np.nan))


class _Bank:
    """Distinct values by program size, each with the representative program that made it."""

    def __init__(self) -> None:
        self.levels: list[Values] = []
        self.sym: list[np.ndarray] = []  # root symbol per row
        self.left: list[np.ndarray] = []  # global id of the first child (-1)
        self.right: list[np.ndarray] = []  # global id of the second child (-1)
        self.start: list[int] = [0]
        self.index = PairIndex()  # both hash halves of every banked row -> its global id

    def add_level(self, values: Values, sym, left, right) -> None:
        h1, h2 = row_hashes(values)
        self.levels.append(values)
        self.sym.append(sym)
        self.left.append(left)
        self.right.append(right)
        gid = np.arange(self.start[-1], self.start[-1] + len(values))
        self.start.append(self.start[-1] + len(values))
        self.index.add(h1, h2, gid)

    def lookup(self, h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
        """Global id of the banked row with these hashes (both halves equal), or -1."""
        return self.index.lookup(h1, h2)

    def level_of(self, gid: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.array(self.start), gid, side="right") - 1

    def program(self, gid: int, grammar: Grammar) -> list[str]:
        """Prefix tokens of the representative program of a banked row."""
        lvl = int(self.level_of(np.array([gid]))[0])
        k = gid - self.start[lvl]
        tokens = [grammar.symbols[int(self.sym[lvl][k])]]
        for child in (int(self.left[lvl][k]), int(self.right[lvl][k])):
            if child >= 0:
                tokens += self.program(child, grammar)
        return tokens


class BottomUpSearch:
    """Bottom-up search over one grammar on a fixed set of example points."""

    def __init__(self, grammar: Grammar, points: np.ndarray, budget: Budget, meter: Meter | None = None) -> None:
        self.grammar = grammar
        self.points = np.asarray(points, dtype=np.int64)
        self.budget = budget
        self.meter = meter
        self.evaluator = Evaluator()
        self.bank = _Bank()
        self.exhausted_up_to: int | None = None

    @property
    def candidates(self) -> int:
        return self.meter.candidates

    def solve(self, target_values: np.ndarray) -> SearchResult:
        """Smallest program whose values at the example points equal ``target_values``."""
        if len(target_values) != len(self.points):
            raise GensynthError(f"The target has {len(target_values)} values but {len(self.points)} example points were given; "
                                f"pass the target's values at exactly those points.")
        if self.meter is None:
            self.meter = Meter(self.budget)
        target = exact_target(target_values)
        if target is None:
            return SearchResult(None, "exhausted", self.candidates, self.meter.elapsed())
        self.set_target(target)
        try:
            return self.search()
        except OutOfBudget as stop:
            return SearchResult(None, stop.status, self.candidates, self.meter.elapsed())

    def set_target(self, target: Values) -> None:
        """The exact target at the example points (the bank does not depend on it and is kept)."""
        self.t1, self.t2 = (h[0] for h in row_hashes(target))
        self.target = target

    def search(self) -> SearchResult:
        """Sizes 0, 1, ... up to max_ops; banked levels are reused, missing ones built (raises OutOfBudget)."""
        self.exhausted_up_to = None
        for n in range(self.budget.max_ops + 1):
            hit = self._find_at_size(n)
            if hit is not None:
                return SearchResult(" ".join(hit), "solved", self.candidates, self.meter.elapsed(), n,
                                    exact_up_to=self.exhausted_up_to, how="bottom-up")
            self.exhausted_up_to = n
            if n < self.budget.max_ops and len(self.bank.levels) <= n:
                self._bank_level(n)
        return SearchResult(None, "exhausted", self.candidates, self.meter.elapsed(), exact_up_to=self.exhausted_up_to)

    def build_levels(self, n: int) -> None:
        """Bank every level up to size ``n`` (raises OutOfBudget)."""
        for k in range(len(self.bank.levels), n + 1):
            self._bank_level(k)

    # --- budget -------------------------------------------------------------------

    def _spend(self, rows: int) -> None:
        self.meter.spend(rows)

    # --- levels ---------------------------------------------------------------------

    def _leaves(self) -> Values:
        v = leaf_values(self.grammar)
        cols = self.points
        return Values(v.num[:, cols], v.den[:, cols], v.flt[:, cols])

    def _applications(self, n: int):
        """(operator index, left level, right level or None) of every way to make size n."""
        for k, op in enumerate(self.grammar.operators):
            if op.arity == 1:
                yield k, n - 1, None
            else:
                for i in range(n):
                    yield k, i, n - 1 - i

    def _find_at_size(self, n: int) -> list[str] | None:
        if n == 0:
            leaves = self._leaves()
            self._spend(len(leaves))
            h1, h2 = row_hashes(leaves)
            hit = np.flatnonzero((h1 == self.t1) & (h2 == self.t2))
            return [self.grammar.leaf_tokens[int(hit[0])]] if len(hit) else None
        for k, i, j in self._applications(n):
            op = self.grammar.operators[k]
            found = self._invert(k, i, j) if self._invertible(op) else None
            if found is None and not (self._invertible(op)):
                found = self._forward_match(k, i, j, None)
            if found is not None:
                return found
        return None

    def _invertible(self, op) -> bool:
        finite_target = bool((self.target.den > 0).all())
        return op.arity == 2 and op.numpy in INVERTIBLE and finite_target

    def _invert(self, k: int, i: int, j: int) -> list[str] | None:
        """Known left operand at level i; the right one is solved for and looked up (levels ≤ j)."""
        op = self.grammar.operators[k]
        a = self.bank.levels[i]
        t = Values(np.repeat(self.target.num, len(a), 0), np.repeat(self.target.den, len(a), 0), np.repeat(self.target.flt, len(a), 0))
        self._spend(len(a))
        defined = (a.den > 0).all(axis=1)
        name = op.numpy
        sub, div = _exact_op("subtract"), _exact_op("divide")
        if name == "add":
            need = self.evaluator.apply(sub, t, a)  # b = t - a
            ambiguous = np.zeros(len(a), bool)
        elif name == "subtract":
            need = self.evaluator.apply(sub, a, t)  # b = a - t
            ambiguous = np.zeros(len(a), bool)
        elif name == "multiply":
            need = self.evaluator.apply(div, t, a)  # b = t / a, unless a has a zero
            ambiguous = defined & (a.num == 0).any(axis=1)
        else:  # divide: t = a / b  →  b = a / t, unless t has a zero
            need = self.evaluator.apply(div, a, t)
            ambiguous = defined & (self.target.num == 0).any()
        ok = defined & ~ambiguous & (need.den > 0).all(axis=1)
        gid = np.full(len(a), -1)
        if ok.any():
            h1, h2 = row_hashes(need.take(np.flatnonzero(ok)))
            gid[ok] = self.bank.lookup(h1, h2)
            gid[ok & (gid >= 0)] = np.where(self.bank.level_of(gid[ok & (gid >= 0)]) <= j, gid[ok & (gid >= 0)], -1)
        hits = np.flatnonzero(gid >= 0)
        if len(hits):
            # Confirm by running the operator forwards: an inverse can be right only where
            # the forward operation is defined (a / b with b = a / t fails when a = 0).
            b_level = self.bank.level_of(gid[hits])
            b_rows = gid[hits] - np.array(self.bank.start)[b_level]
            b = Values(*(np.concatenate([getattr(self.bank.levels[lv], f)[[r]] for lv, r in zip(b_level, b_rows)]) for f in ("num", "den", "flt")))
            self._spend(len(hits))
            h1, h2 = row_hashes(self.evaluator.apply(op, a.take(hits), b))
            good = np.flatnonzero((h1 == self.t1) & (h2 == self.t2))
            if len(good):
                h = int(good[0])
                left = self.bank.start[i] + int(hits[h])
                return [op.token] + self.bank.program(left, self.grammar) + self.bank.program(int(gid[hits[h]]), self.grammar)
        if ambiguous.any():
            return self._forward_match(k, i, j, np.flatnonzero(ambiguous))
        return None

    def _pairs(self, i: int, j: int | None, left_rows: np.ndarray | None, symmetric: bool):
        """Chunks of (left rows, right rows) index arrays over levels i and j."""
        na = len(self.bank.levels[i]) if left_rows is None else len(left_rows)
        if j is None:
            for lo in range(0, na, CHUNK):
                rows = np.arange(lo, min(na, lo + CHUNK))
                yield (rows if left_rows is None else left_rows[rows]), None
            return
        nb = len(self.bank.levels[j])
        total = na * nb
        for lo in range(0, total, CHUNK):
            idx = np.arange(lo, min(total, lo + CHUNK))
            ia, ib = idx // nb, idx % nb
            if symmetric:  # op(a, b) == op(b, a) on equal levels: one order suffices
                keep = ia <= ib
                ia, ib = ia[keep], ib[keep]
            yield (ia if left_rows is None else left_rows[ia]), ib

    def _apply_rows(self, k: int, i: int, j: int | None, ia, ib) -> Values:
        op = self.grammar.operators[k]
        a = self.bank.levels[i].take(ia)
        b = self.bank.levels[j].take(ib) if j is not None else None
        self._spend(len(ia))
        return self.evaluator.apply(op, a, b)

    def _forward_match(self, k: int, i: int, j: int | None, left_rows) -> list[str] | None:
        """Enumerate op(a, b) over levels (i, j) and compare with the target."""
        op = self.grammar.operators[k]
        for ia, ib in self._pairs(i, j, left_rows, op.commutative and i == j):
            h1, h2 = row_hashes(self._apply_rows(k, i, j, ia, ib))
            hit = np.flatnonzero((h1 == self.t1) & (h2 == self.t2))
            if len(hit):
                h = int(hit[0])
                self.meter.settle(len(ia), h + 1)  # the rows after the hit were not needed
                tokens = [op.token] + self.bank.program(self.bank.start[i] + int(ia[h]), self.grammar)
                if j is not None:
                    tokens += self.bank.program(self.bank.start[j] + int(ib[h]), self.grammar)
                return tokens
        return None

    def _bank_level(self, n: int) -> None:
        """Bank every value first reached at size n (forward enumeration, deduplicated)."""
        if n == 0:
            leaves = self._leaves()
            first, _ = distinct_pairs(*row_hashes(leaves))  # observationally distinct leaves, in symbol order
            self.bank.add_level(leaves.take(first), first.astype(np.int16), np.full(len(first), -1), np.full(len(first), -1))
            return
        parts, seen = [], PairIndex()  # hashes of the rows this level has banked so far
        for k, i, j in self._applications(n):
            op = self.grammar.operators[k]
            for ia, ib in self._pairs(i, j, None, op.commutative and i == j):
                if op.commutative and j is not None and i > j:
                    break  # op(a, b) with a bigger than b repeats op(b, a) of the mirrored split
                v = self._apply_rows(k, i, j, ia, ib)
                h1, h2 = row_hashes(v)
                new = (self.bank.lookup(h1, h2) < 0) & (seen.lookup(h1, h2) < 0)
                first, _ = distinct_pairs(h1[new], h2[new])
                rows = np.flatnonzero(new)[first]
                if len(rows):
                    seen.add(h1[rows], h2[rows], rows)
                    parts.append((v.take(rows), np.full(len(rows), self.grammar.n_leaves + k, np.int16),
                                  self.bank.start[i] + ia[rows], self.bank.start[j] + ib[rows] if j is not None else np.full(len(rows), -1)))
        if not parts:
            g = len(self.points)
            empty = Values(np.empty((0, g), np.int64), np.empty((0, g), np.int64), np.empty((0, g)))
            self.bank.add_level(empty, np.empty(0, np.int16), np.empty(0, np.int64), np.empty(0, np.int64))
            return
        values = Values(*(np.concatenate([getattr(p[0], f) for p in parts]) for f in ("num", "den", "flt")))
        self.bank.add_level(values, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]),
                            np.concatenate([p[3] for p in parts]))


def solve_bottom_up(grammar: Grammar, points: np.ndarray, target: Values, meter: Meter) -> SearchResult:
    """Smallest program of ``grammar`` whose exact values at grid ``points`` equal ``target``."""
    search = BottomUpSearch(grammar, points, meter.budget, meter)
    search.set_target(target)
    try:
        return search.search()
    except OutOfBudget as stop:
        return SearchResult(None, stop.status, search.candidates, meter.elapsed(), exact_up_to=search.exhausted_up_to)


def tree_size(tree: tuple) -> int:
    """Number of operator nodes."""
    return 0 if len(tree) == 1 else 1 + sum(tree_size(c) for c in tree[1:])

