"""The exact lane beyond + − × ÷: numpy ufuncs whose value is rational at rational inputs.

``gensynth.universe.rational`` evaluates add, subtract, multiply, divide, negative,
absolute, square and sqrt itself. This module adds every other ufunc for which gensynth
can *prove* the result at a rational input is rational, and compute it exactly:

* order: ``maximum``, ``minimum`` (the result is one of the operands; an undefined
  operand makes the result undefined, as NaN does in numpy), ``fmax``, ``fmin`` (the
  same, except that they ignore an undefined operand and return the other, as numpy's
  fmax/fmin ignore NaN), ``heaviside`` (0 below zero, 1 above, the second operand at
  an exact zero; 0 or 1 whatever the second operand, even undefined, as numpy);
* ``copysign`` (±|a| by the sign of b where b is a nonzero rational; 0 where a = 0);
* ``power`` and ``float_power``: 1 where the exponent is exactly 0 or the base exactly
  1, whatever the other operand (numpy: nan**0 = 1**nan = 1); aⁿ for an exact base and
  an integer exponent n (both powers of the reduced numerator and denominator within
  int64); 0 for base 0 and a positive exponent; undefined for base 0 and a negative
  exponent (a pole, like 1/0); other cells are evaluated in float;
* rounding: ``floor``, ``ceil``, ``trunc``, ``rint`` (half to even, as numpy), ``sign``,
  ``positive``, ``conjugate`` (a real's is itself), ``fabs`` — integers or ±the operand;
* ``reciprocal`` (1/a, undefined at an exact zero like ``divide``), ``floor_divide``
  (⌊a/b⌋), ``remainder`` / ``mod`` (a − b⌊a/b⌋, the divisor's sign, as numpy) and
  ``fmod`` (a − b·trunc(a/b)), all undefined where b is an exact zero;
* ``cbrt`` where numerator and denominator are perfect cubes;
* transcendental functions at the only rational inputs where their value is rational
  (Lindemann–Weierstrass: exp, log, the circular and hyperbolic functions and their
  inverses are transcendental at every algebraic argument other than the trivial one;
  Gelfond–Schneider for the others): exp(0) = 1, expm1(0) = 0, exp2(n) = 2ⁿ for integer
  n (2^(p/q) is irrational for q > 1), log(1) = log1p(0) = 0, log2(2ᵏ) = k and
  log10(10ᵏ) = k for integer k (log₂ r is rational only for r a power of 2), sin, tan,
  arcsin, arctan, sinh, tanh, arcsinh, arctanh, deg2rad, rad2deg, degrees, radians at
  0 → 0, cos, cosh at 0 → 1, arccos(1) = arccosh(1) = 0. Everywhere else these stay
  inexact.

Agreement with numpy. Wherever numpy's float64 result at the same inputs (an undefined
cell read as NaN) is a value that does not depend on the sign of a zero, the exact lane
gives that value and numpy's definedness: NaN is undefined, anything else defined. Two
deliberate differences, both where numpy's answer is not a function of the values:

* a pole (division, reciprocal, floor_divide by an exact zero, 0 to a negative power)
  is undefined, where numpy gives ±inf with the sign of the zero;
* an exact rational has no signed zero (x − x and remainder(x, −2) are the same 0,
  which numpy writes +0.0 and −0.0), and an undefined cell no signed NaN, so a result
  that depends on the sign of a zero or of a NaN is undefined: here ``copysign(a, b)``
  for a ≠ 0 where b is zero or undefined; in the float lane (``rational.Evaluator``)
  every cell whose numpy result changes when a zero or NaN operand changes sign
  (arctan2(0, −1) = ±π, 1/±0.0 = ±inf for an inexact zero). Results that are zero of
  either sign (remainder(2, −2), trunc(−1/2), sign(−0.0)) are the one exact 0, whose
  float is +0.0.

``tests/test_exact_numpy.py`` checks this for every accepted ufunc on random rational,
zero, negative, undefined and inexact inputs.

The rule for float results (documented in ``gensynth.universe.rational``): a cell is exact
only where the mathematics says its value is the rational computed here; a float result
is never declared exact because it happens to equal a short rational (cos(1e-9) rounds to
1.0 but is irrational). The one mixed case decided from floats is an order operation
between an exact and an inexact operand that differ by far more than rounding (more
than ``ORDER_MARGIN`` = 1e-9 times the larger magnitude, and more than 1e-9 absolutely):
then the result *is* the exact operand (max(sin x, 2) = 2), and gets its key.
"""

from __future__ import annotations

from fractions import Fraction
from math import trunc

import numpy as np

ORDER = frozenset({"maximum", "minimum", "fmax", "fmin"})
ROUNDING = frozenset({"floor", "ceil", "trunc", "rint", "sign", "positive", "conjugate", "fabs"})
DIVISION = frozenset({"floor_divide", "remainder", "fmod"})
SPECIAL = {  # ufunc: ((rational input, rational result), ...)
    "exp": ((0, 1),), "expm1": ((0, 0),), "log": ((1, 0),), "log1p": ((0, 0),),
    **{f: ((0, 0),) for f in ("sin", "tan", "arcsin", "arctan", "sinh", "tanh", "arcsinh", "arctanh",
                              "deg2rad", "rad2deg", "degrees", "radians")},
    "cos": ((0, 1),), "cosh": ((0, 1),), "arccos": ((1, 0),), "arccosh": ((1, 0),),
}
POWERS = frozenset({"exp2", "log2", "log10"})
EXTENDED_UFUNCS = ORDER | ROUNDING | DIVISION | POWERS | frozenset(SPECIAL) | {
    "heaviside", "copysign", "reciprocal", "cbrt", "power", "float_power"}
# An inexact operand of an order operation is trusted to be on one side of an exact one
# only when they differ by more than this times the larger magnitude, and by more than
# this absolutely (a magnitude below 1 counts as 1): float rounding is ~1e-16 relative,
# and near zero a cancelled inexact value (sqrt 2 · sqrt 2 − 2 is 0, its float 4.4e-16)
# has an absolute, not a relative, error.
ORDER_MARGIN = 1e-9
_SAFE = float(2**62)


def apply_extended(name: str, args: list, exact_in: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Fill num/den (den 0 = undefined) where ``name``'s result is an exact rational; return that mask."""
    an = np.where(exact_in, args[0].num, 0)
    ad = np.where(exact_in, args[0].den, 1)
    if len(args) == 1:
        return _unary(name, an, ad, exact_in, num, den)
    bn = np.where(exact_in, args[1].num, 0)
    bd = np.where(exact_in, args[1].den, 1)
    if name in ORDER:
        return _order(name, args, an, ad, bn, bd, exact_in, num, den)
    if name in DIVISION:
        return _division(name, an, ad, bn, bd, exact_in, num, den)
    if name in ("power", "float_power"):
        return _power(args, exact_in, num, den)
    a, b = args
    if name == "heaviside":  # 0 / 1 off zero whatever b is (numpy: heaviside(2, nan) = 1); b at an exact zero
        off = (a.den > 0) & (a.num != 0)
        at_zero = exact_in & (a.num == 0)
        num[off], den[off] = (a.num[off] > 0), 1
        num[at_zero], den[at_zero] = b.num[at_zero], b.den[at_zero]
        return off | at_zero
    if name == "copysign":  # 0 whatever b is; ±|a| by a nonzero b; undefined by an exact zero b (the float
        # lane's sign rule, rational._sign_dependent, makes an undefined or inexact-zero b undefined too)
        zero_a = (a.den > 0) & (a.num == 0)
        signed = exact_in & (b.num != 0)
        unsigned = exact_in & (b.num == 0) & (a.num != 0)
        num[zero_a], den[zero_a] = 0, 1
        num[signed], den[signed] = np.where(b.num < 0, -np.abs(a.num), np.abs(a.num))[signed], a.den[signed]
        num[unsigned], den[unsigned] = 0, 0
        return zero_a | signed | unsigned
    raise AssertionError(name)  # pragma: no cover - EXTENDED_UFUNCS and this dispatch are kept in sync


def _unary(name, an, ad, ok, num, den) -> np.ndarray:
    if name in ("positive", "conjugate", "fabs"):  # the conjugate of a real is itself
        rn, rd = (np.abs(an) if name == "fabs" else an), ad
    elif name == "sign":
        rn, rd = np.sign(an), np.ones_like(ad)
    elif name in ("floor", "ceil", "trunc", "rint"):
        rn, rd = _round(name, an, ad), np.ones_like(ad)
    elif name == "reciprocal":  # 1/(n/d) = d/n with a positive denominator; undefined at 0
        rn, rd = np.where(an < 0, -ad, ad), np.abs(an)
    elif name == "cbrt":
        return _cbrt(an, ad, ok, num, den)
    elif name in POWERS:
        return _powers(name, an, ad, ok, num, den)
    else:  # transcendental: exact only at its special points
        hit = np.zeros_like(ok)
        for x, y in SPECIAL[name]:
            at = ok & (an == x) & (ad == 1)
            num[at], den[at] = y, 1
            hit |= at
        return hit
    num[ok], den[ok] = rn[ok], rd[ok]  # reciprocal of 0: den 0 = undefined
    return ok.copy()


def _round(name: str, an: np.ndarray, ad: np.ndarray) -> np.ndarray:
    """floor / ceil / trunc / rint (half to even) of n/d, d > 0, as int64."""
    q = an // ad  # floor
    if name == "floor":
        return q
    r = an - q * ad  # 0 <= r < d
    if name == "ceil":
        return q + (r > 0)
    if name == "trunc":
        return np.where((an < 0) & (r > 0), q + 1, q)
    up = (2 * r > ad) | ((2 * r == ad) & (q % 2 == 1))
    return q + up


def _cbrt(an, ad, ok, num, den) -> np.ndarray:
    rn = np.round(np.cbrt(an.astype(np.float64))).astype(np.int64)
    rd = np.round(np.cbrt(ad.astype(np.float64))).astype(np.int64)
    hit = ok & (rn**3 == an) & (rd**3 == ad) & (np.abs(an) < 2**52) & (ad < 2**52)
    num[hit], den[hit] = rn[hit], rd[hit]
    return hit


def _powers(name, an, ad, ok, num, den) -> np.ndarray:
    hit = np.zeros_like(ok)
    if name == "exp2":  # 2**n for integer n with |n| < 62
        k = ok & (ad == 1) & (np.abs(an) < 62)
        e = np.abs(an[k])
        num[k] = np.where(an[k] >= 0, np.left_shift(1, e), 1)
        den[k] = np.where(an[k] >= 0, 1, np.left_shift(1, e))
        return k
    base = 2 if name == "log2" else 10
    for e in range(0, 62 if base == 2 else 19):
        p = base**e
        for n_, d_, y in ((p, 1, e), (1, p, -e)):
            at = ok & (an == n_) & (ad == d_)
            num[at], den[at] = y, 1
            hit |= at
    return hit


def _power(args, exact_in, num, den) -> np.ndarray:
    """power / float_power: 1 at exponent 0 or base 1 (whatever the other operand), exact integer powers, 0 and poles at base 0."""
    a, b = args
    one = ((b.den > 0) & (b.num == 0)) | ((a.den > 0) & (a.num == 1) & (a.den == 1))
    integer = exact_in & (b.den == 1) & ~one
    e = np.where(integer, np.abs(b.num), 0)
    zero_base = exact_in & (a.num == 0) & ~one
    pole = zero_base & (b.num < 0)  # 0 to a negative power: undefined, like 1/0
    nonzero = integer & ~zero_base
    with np.errstate(over="ignore", divide="ignore"):
        fits = nonzero & (e < 64) & (np.abs(a.num).astype(np.float64) ** np.minimum(e, 64) < _SAFE) \
            & (a.den.astype(np.float64) ** np.minimum(e, 64) < _SAFE)
    e = np.where(fits, e, 0)
    pn, pd = np.power(np.where(fits, a.num, 1), e), np.power(np.where(fits, a.den, 1), e)  # lowest terms stay lowest
    negative = b.num < 0
    rn, rd = np.where(negative, np.sign(pn) * pd, pn), np.where(negative, np.abs(pn), pd)
    num[fits], den[fits] = rn[fits], rd[fits]
    num[one], den[one] = 1, 1
    num[zero_base], den[zero_base] = 0, np.where(pole, 0, 1)[zero_base]
    return one | fits | zero_base


def _order(name, args, an, ad, bn, bd, exact_in, num, den) -> np.ndarray:
    """max/min of two exact operands by an exact comparison; mixed exact/inexact by a clear float margin.

    fmax/fmin ignore an undefined operand: the result is the other one (exact here; an
    inexact one is left to the float lane, whose fmax returns it).
    """
    big = _products_big(an, bd, bn, ad) & exact_in
    exact = exact_in & ~big
    take_max = name in ("maximum", "fmax")
    a_lt_b = an * bd < bn * ad  # denominators are positive
    pick_b = a_lt_b == take_max
    num[exact] = np.where(pick_b, bn, an)[exact]
    den[exact] = np.where(pick_b, bd, ad)[exact]
    for r, c in zip(*np.nonzero(big)):  # products past int64: compare as Fractions
        x, y = (Fraction(int(v.num[r, c]), int(v.den[r, c])) for v in args)
        z = max(x, y) if take_max else min(x, y)
        num[r, c], den[r, c] = z.numerator, z.denominator
    a, b = args
    fa, fb = a.flt, b.flt
    with np.errstate(invalid="ignore", over="ignore"):
        clear = np.abs(fa - fb) > ORDER_MARGIN * np.maximum(np.maximum(np.abs(fa), np.abs(fb)), 1.0)
        pick_b = (fa < fb) == take_max
    mixed = clear & np.isfinite(fa) & np.isfinite(fb)
    use_b = mixed & (b.den > 0) & (a.den < 0) & pick_b  # the exact operand wins
    use_a = mixed & (a.den > 0) & (b.den < 0) & ~pick_b
    if name in ("fmax", "fmin"):  # numpy's fmax/fmin ignore NaN
        use_b |= (a.den == 0) & (b.den > 0)
        use_a |= (b.den == 0) & (a.den > 0)
    num[use_b], den[use_b] = b.num[use_b], b.den[use_b]
    num[use_a], den[use_a] = a.num[use_a], a.den[use_a]
    return exact_in | use_a | use_b


def _division(name, an, ad, bn, bd, exact_in, num, den) -> np.ndarray:
    """floor_divide, remainder and fmod of exact operands; undefined where b = 0."""
    zero = exact_in & (bn == 0)
    ok = exact_in & ~zero
    p, q = an * bd, ad * np.where(bn == 0, 1, bn)  # a / b = p / q
    p, q = np.where(q < 0, -p, p), np.abs(q)
    big = ok & (_shadow(an, bd) | _shadow(ad, bn))
    quot = p // q  # floor(a / b)
    if name == "fmod":
        quot = np.where((p < 0) & (p % q != 0), quot + 1, quot)  # trunc
    if name == "floor_divide":
        rn, rd = quot, np.ones_like(quot)
    else:  # a - b * quot = (an*bd - quot*bn*ad) / (ad*bd)
        big |= ok & (_shadow(ad, bd) | _shadow(bn, ad)
                     | (np.abs(quot.astype(np.float64) * bn.astype(np.float64) * ad.astype(np.float64)) >= _SAFE))
        rn, rd = an * bd - quot * bn * ad, ad * bd
        g = np.gcd(rn, rd)
        g[g == 0] = 1
        rn, rd = rn // g, rd // g
    small = ok & ~big
    num[small], den[small] = rn[small], rd[small]
    num[zero], den[zero] = 0, 0
    done = small | zero
    py = {"floor_divide": lambda x, y: Fraction(x // y), "remainder": lambda x, y: x % y,
          "fmod": lambda x, y: x - y * trunc(x / y)}[name]
    for r, c in zip(*np.nonzero(big)):
        z = py(Fraction(int(an[r, c]), int(ad[r, c])), Fraction(int(bn[r, c]), int(bd[r, c])))
        if abs(z.numerator) < 2**62 and z.denominator < 2**62:
            num[r, c], den[r, c] = z.numerator, z.denominator
            done[r, c] = True
    return done


def _shadow(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cells where the int64 product x*y might overflow (checked in float64)."""
    return np.abs(x.astype(np.float64) * y.astype(np.float64)) >= _SAFE


def _products_big(an, bd, bn, ad) -> np.ndarray:
    return _shadow(an, bd) | _shadow(bn, ad)
