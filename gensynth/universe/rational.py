"""Exact, vectorised arithmetic on grid values.

A *value matrix* holds one program's (or function's) value at every grid point, one row
per program. Each cell is in one of three states, encoded in three parallel arrays:

* exact rational: ``den > 0``, ``num/den`` in lowest terms (int64), ``flt = num/den``;
* undefined: ``den == 0`` and ``num == 0`` (division by an exact zero, sqrt of a
  negative number, a NaN from a float-only ufunc, a result that only the sign of a zero
  would decide); ``flt = NaN``, and every operator treats it as numpy treats NaN;
* inexact real: ``den == -1`` (an irrational value such as sqrt(2), any value of a
  float-only ufunc, or a rational too large for int64); ``flt`` holds the float64 value
  (possibly ±inf) and ``num`` holds a rounded copy of its bits, used as its class key.

Grid points and constants are rational, so for grammars built from add, subtract,
multiply, divide, negative, absolute and square every cell is exact or undefined and
semantic classes are exact: no tolerance is involved. Products whose float shadow
reaches 2**62 are recomputed cell by cell with Python's ``Fraction`` (rare; counted in
``overflow_cells``) and kept exact when the reduced result fits int64.

The exact lane also holds every ufunc whose value at rational inputs is provably
rational (``gensynth.universe.exact_ops``: maximum, minimum, fmax, fmin, floor, ceil,
trunc, rint, sign, reciprocal, floor_divide, remainder, fmod, heaviside, copysign,
power at integer exponents, cbrt of perfect cubes, and transcendental functions at their
rational points such as exp(0) = 1 or log2(8) = 3), so ``max x x`` and ``x`` are one
function.

Agreement with numpy's float semantics: wherever numpy's result at the same inputs
(undefined read as NaN) is a value that does not depend on the sign of a zero, gensynth
gives that value and numpy's definedness. So an undefined operand does not always make
the result undefined: fmax/fmin return the other operand, 1**nan = nan**0 = 1,
heaviside(2, nan) = 1, exactly as in numpy. Exact rationals have one zero, without a
sign (numpy writes remainder(8, −2) as −0.0 and x − x as +0.0): where a result would
depend on the sign of a zero or of a NaN (copysign(a, 0), arctan2(0, −1)) it is
undefined, and a pole (1/0, 0**−1) is undefined where numpy gives ±inf. Both are stated
and tested with ``exact_ops``.

The rule for float results: a cell is exact only where gensynth computed its exact
rational value from exact operands by a rule that is true of the mathematics. A float
result is never declared exact because the float happens to equal a short rational:
cos(1e-9) is irrational but rounds to 1.0, and sqrt(2)·sqrt(2) is 2 but its float is
not. Such cells stay inexact (keyed by rounding): classes may be split (``sqrt 2 * sqrt
2`` is not ``2``) but never wrongly merged. The one decision taken from floats is an
order operation (max, min, ...) between an exact and an inexact operand that differ by
more than ``exact_ops.ORDER_MARGIN`` (1e-9 of the larger magnitude, and 1e-9 absolutely
below magnitude 1: far above rounding): the result is
then the exact operand and gets its key (max(sin x, 2) is the constant 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from gensynth.universe.exact_ops import EXTENDED_UFUNCS, apply_extended
from gensynth.universe.grammar import Operator

# A float64 shadow of any int64 product must stay below this for the int64 result to be
# trusted (2**63 is the int64 limit; the margin absorbs the shadow's rounding error).
SAFE = float(2**62)
# Low mantissa bits cleared when an inexact float becomes a class key: values equal to
# about 1 part in 2**32 share a key. Only used for irrational / float-only grammars.
INEXACT_KEY_BITS = 20


@dataclass
class Values:
    """A value matrix: (rows, points) arrays num, den (int64) and flt (float64)."""

    num: np.ndarray
    den: np.ndarray
    flt: np.ndarray

    def take(self, rows: np.ndarray) -> "Values":
        """The sub-matrix of the given rows."""
        return Values(self.num[rows], self.den[rows], self.flt[rows])

    def __len__(self) -> int:
        return len(self.num)


def from_fractions(rows: list[list[Fraction]]) -> Values:
    """Build an exact value matrix from lists of Fractions (small inputs: leaves, tests)."""
    num = np.array([[f.numerator for f in r] for r in rows], dtype=np.int64)
    den = np.array([[f.denominator for f in r] for r in rows], dtype=np.int64)
    return Values(num, den, num / den)


def inexact_key(flt: np.ndarray) -> np.ndarray:
    """Class key of inexact cells: the float's bits rounded to ~32 mantissa bits."""
    bits = np.ascontiguousarray(flt, dtype=np.float64).view(np.int64)
    half = np.int64(1 << (INEXACT_KEY_BITS - 1))
    mask = ~np.int64((1 << INEXACT_KEY_BITS) - 1)
    return (bits + half) & mask


class Evaluator:
    """Applies grammar operators to value matrices; counts cells that overflowed int64."""

    def __init__(self) -> None:
        self.overflow_cells = 0

    def apply(self, op: Operator, a: Values, b: Values | None = None) -> Values:
        """Value matrix of ``op(a, b)`` (``b`` is None for unary operators), row by row.

        An undefined operand is NaN to numpy, and the result is whatever numpy's float
        semantics make of it: undefined where numpy gives NaN (most operators), the
        other operand for fmax/fmin, 1 for 1**nan (``gensynth.universe.exact_ops``).
        """
        args = [a] if b is None else [a, b]
        exact_in = np.ones(a.num.shape, bool)
        for v in args:
            exact_in &= v.den > 0
        with np.errstate(all="ignore"):
            flt = op.ufunc(*[v.flt for v in args])  # undefined operands are NaN
        num = np.zeros(a.num.shape, np.int64)
        den = np.full(a.num.shape, -1, np.int64)
        # decided: cells whose state the exact lane fixed, exact (den > 0) or undefined (den == 0:
        # division by an exact zero, sqrt of a negative number, a signed zero's sign).
        decided = self._exact(op, args, exact_in, num, den) if op.exact else np.zeros(a.num.shape, bool)
        undefined = decided & (den == 0)
        exact_ok = decided & ~undefined
        # Every other cell is numpy's float result: undefined where it is NaN (an undefined
        # operand propagates unless numpy ignores it), else inexact.
        rest = ~decided
        undefined |= rest & np.isnan(flt)
        undefined |= _sign_dependent(op.ufunc, args, rest & ~undefined, flt)
        inexact = rest & ~undefined
        num[inexact] = inexact_key(flt[inexact])
        den[inexact] = -1
        num[undefined] = 0
        den[undefined] = 0
        flt = np.where(exact_ok, num / np.where(den > 0, den, 1), flt)
        flt[undefined] = np.nan
        return Values(num, den, flt)

    def _exact(self, op: Operator, args: list[Values], exact_in: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
        """Fill num/den where the result is an exact rational; return that mask."""
        # Work on exact inputs only; other cells get placeholder 0/1 so int math is safe.
        an = np.where(exact_in, args[0].num, 0)
        ad = np.where(exact_in, args[0].den, 1)
        if len(args) == 2:
            bn = np.where(exact_in, args[1].num, 0)
            bd = np.where(exact_in, args[1].den, 1)
        name = op.ufunc.__name__  # np.true_divide is divide, np.abs is absolute
        if name in EXTENDED_UFUNCS:
            return apply_extended(name, args, exact_in, num, den)
        ok = exact_in.copy()
        if name in ("add", "subtract"):
            sign = 1 if name == "add" else -1
            same = ad == bd  # the common case on a grid with one denominator: no product needed
            rn = np.where(same, an + sign * bn, an * bd + sign * bn * ad)
            rd = np.where(same, ad, ad * bd)
            # Same denominators: only the sum itself can overflow (e.g. 6e18 + 6e18).
            big = np.where(same, _sum_shadow(an, bn), _shadow(an, bd) | _shadow(bn, ad) | _shadow(ad, bd))
        elif name == "multiply":
            rn, rd = an * bn, ad * bd
            big = _shadow(an, bn) | _shadow(ad, bd)
        elif name == "divide":
            zero = ok & (bn == 0)
            ok &= ~zero  # division by an exact zero is undefined, never inf
            rn = an * np.where(bn < 0, -bd, bd)  # keep the denominator positive
            rd = ad * np.abs(bn)
            big = _shadow(an, bd) | _shadow(ad, bn)
            rd = np.where(zero, 1, rd)
        elif name == "negative":
            rn, rd, big = -an, ad, np.zeros_like(ok)
        elif name == "absolute":
            rn, rd, big = np.abs(an), ad, np.zeros_like(ok)
        elif name == "square":
            rn, rd = an * an, ad * ad
            big = _shadow(an, an) | _shadow(ad, ad)
        elif name == "sqrt":
            return self._sqrt(an, ad, exact_in, num, den)
        else:  # pragma: no cover - EXACT_UFUNCS and this dispatch are kept in sync
            raise AssertionError(name)
        big &= ok
        ok &= ~big
        g = _gcd(rn, rd)
        num[ok] = (rn // g)[ok]
        den[ok] = (rd // g)[ok]
        if big.any():
            ok |= self._overflow(op, args, big, num, den)
        if name == "divide":
            num[zero], den[zero] = 0, 0  # undefined
            ok |= zero
        return ok

    def _sqrt(self, an, ad, exact_in, num, den) -> np.ndarray:
        """sqrt is exact where num and den are perfect squares, undefined below zero."""
        negative = exact_in & (an < 0)
        rn = np.round(np.sqrt(np.abs(an).astype(np.float64))).astype(np.int64)
        rd = np.round(np.sqrt(ad.astype(np.float64))).astype(np.int64)
        ok = exact_in & ~negative & (rn * rn == an) & (rd * rd == ad) & (an < 2**52)
        num[ok], den[ok] = rn[ok], rd[ok]
        num[negative], den[negative] = 0, 0
        return ok | negative

    def _overflow(self, op: Operator, args: list[Values], big: np.ndarray, num, den) -> np.ndarray:
        """Recompute int64-overflowing cells with Fractions; keep those whose result fits."""
        rows, cols = np.nonzero(big)
        self.overflow_cells += len(rows)
        fits = np.zeros(big.shape, bool)
        py = {"add": lambda x, y: x + y, "subtract": lambda x, y: x - y, "multiply": lambda x, y: x * y,
              "divide": lambda x, y: x / y, "square": lambda x: x * x}[op.ufunc.__name__]
        for r, c in zip(rows.tolist(), cols.tolist()):
            operands = [Fraction(int(v.num[r, c]), int(v.den[r, c])) for v in args]
            value = py(*operands)
            if abs(value.numerator) < 2**62 and value.denominator < 2**62:
                num[r, c], den[r, c] = value.numerator, value.denominator
                fits[r, c] = True
        return fits


def _sign_dependent(ufunc: np.ufunc, args: list[Values], cells: np.ndarray, flt: np.ndarray) -> np.ndarray:
    """Cells among ``cells`` whose float result changes when a zero or NaN operand changes sign.

    gensynth's zeros and undefined cells carry no sign (an exact zero's float is +0.0
    whatever numpy would have computed), so a result that the sign decides
    (arctan2(±0, −1) = ±π, copysign(1, ±nan), 1/±0.0) is not a value of the operands:
    such cells are undefined. Only cells with a zero or NaN operand are recomputed.
    """
    if not cells.any():  # the common case: every cell was decided exactly or is NaN
        return cells
    signless = [(v.flt == 0) | (v.den == 0) for v in args]
    candidates = cells & np.logical_or.reduce(signless)
    if not candidates.any():
        return candidates
    at = np.nonzero(candidates)
    base = flt[at]
    operands = [v.flt[at] for v in args]
    flipped = [np.where(s[at], np.negative(x), x) for s, x in zip(signless, operands)]  # -0.0, -nan
    flips = [(i,) for i in range(len(args))] + ([(0, 1)] if len(args) == 2 else [])
    changed = np.zeros(len(base), bool)
    with np.errstate(all="ignore"):
        for flip in flips:
            result = ufunc(*[flipped[i] if i in flip else x for i, x in enumerate(operands)])
            changed |= ~((result == base) | (np.isnan(result) & np.isnan(base)))
    out = np.zeros(cells.shape, bool)
    out[at] = changed
    return out


def _gcd(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise gcd, never 0 (so it can divide); int32 when the values fit (about 1.6x faster)."""
    if max(np.abs(x).max(initial=0), np.abs(y).max(initial=0)) < 2**31 - 1:
        g = np.gcd(x.astype(np.int32), y.astype(np.int32)).astype(np.int64)
    else:
        g = np.gcd(x, y)
    g[g == 0] = 1
    return g


def _sum_shadow(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cells where the int64 sum x+y might overflow (checked in float64)."""
    if float(np.abs(x).max(initial=0)) + float(np.abs(y).max(initial=0)) < SAFE:
        return np.zeros(x.shape, bool)
    return np.abs(x.astype(np.float64)) + np.abs(y.astype(np.float64)) >= SAFE


def _shadow(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cells where the int64 product x*y might overflow (checked in float64)."""
    # Cheap whole-matrix bound first: usually no cell can overflow and the check is free.
    if float(np.abs(x).max(initial=0)) * float(np.abs(y).max(initial=0)) < SAFE:
        return np.zeros(x.shape, bool)
    return np.abs(x.astype(np.float64) * y.astype(np.float64)) >= SAFE
