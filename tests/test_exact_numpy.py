"""Review A8: the exact lane agrees with numpy's float semantics wherever numpy gives a value.

For every ufunc a grammar may use (every elementwise float64 ufunc of one or two
arguments, so every operator of the exact lane and the float lane), on random rational
inputs with zeros, negative values, undefined cells (NaN to numpy) and inexact cells,
gensynth's ``Evaluator`` is compared with numpy on the same inputs as floats:

* numpy's result depends on the sign of a zero or NaN operand (±0.0 or ±NaN substituted
  give different values: copysign(1, ±0), copysign(1, ±nan), 1/±0, arctan2(±0, −1)) →
  undefined: gensynth's zero has no sign, so no value would be right for both programs
  that compute it;
* numpy gives NaN → undefined (definedness exactly);
* numpy gives ±inf → undefined (a pole) or that inexact infinity;
* numpy gives a finite value → defined, equal to float tolerance.

Discontinuous functions (floor_divide(1, 0.2) is 4.0 in float64: 0.2 is above 1/5) can
only be compared where the floats are the rationals, so the value check uses dyadic
rationals (denominators 1, 2, 4, 8: exact in float64) for every operator and other
rationals for the continuous ones; definedness is checked on both.
"""

from fractions import Fraction

import numpy as np
import pytest

from gensynth.universe.grammar import EXACT_UFUNCS, Operator
from gensynth.universe.rational import Evaluator, Values, inexact_key

ACCEPTED = sorted({u.__name__ for u in vars(np).values() if isinstance(u, np.ufunc) and u.nin in (1, 2)
                   and u.nout == 1 and u.signature is None and ("d" * u.nin + "->d") in u.types})
DISCONTINUOUS = {"floor_divide", "remainder", "fmod", "floor", "ceil", "trunc", "rint", "sign", "heaviside"}
INEXACT = [np.sqrt(2.0), -np.sqrt(3.0), np.pi, -np.e, 0.0, 1.0, 1e-3 * np.sqrt(5.0)]  # 0.0 and 1.0: inexact cells that round to them


def _pool(dyadic: bool, seed: int) -> list:
    """Cells: Fractions (exact), None (undefined), floats (inexact)."""
    rng = np.random.default_rng(seed)
    dens = [1, 2, 4, 8] if dyadic else [3, 5, 6, 7, 9]
    cells = [Fraction(int(n), int(rng.choice(dens))) for n in rng.integers(-24, 25, 30)]
    cells += [Fraction(v) for v in (0, 0, 1, -1, 2, -2, 3, 10, Fraction(1, 2), Fraction(-1, 2), Fraction(1, 8), 2**40 + 1)]
    if not dyadic:
        cells += [Fraction(1, 3), Fraction(-2, 3), Fraction(1, 10), Fraction(2**31 + 1, 3)]
    return cells + [None, None] + INEXACT


def _values(cells: list) -> Values:
    num, den, flt = [], [], []
    for c in cells:
        if c is None:
            num.append(0), den.append(0), flt.append(np.nan)
        elif isinstance(c, Fraction):
            num.append(c.numerator), den.append(c.denominator), flt.append(c.numerator / c.denominator)
        else:
            num.append(int(inexact_key(np.array([c]))[0])), den.append(-1), flt.append(c)
    return Values(np.array([num], np.int64), np.array([den], np.int64), np.array([flt]))


def _numpy(ufunc, args: list[Values]):
    """numpy's result at +0.0 and +NaN, and whether −0.0 or −NaN for some zero or NaN operand changes it."""
    floats = [v.flt[0] for v in args]
    results = []
    for signs in np.ndindex(*(2,) * len(args)):
        with np.errstate(all="ignore"):
            results.append(ufunc(*[np.where((x == 0) | np.isnan(x), np.copysign(x, -1.0 if s else 1.0), x)
                                   for s, x in zip(signs, floats)]))
    base = results[0]
    same = np.all([(r == base) | (np.isnan(r) & np.isnan(base)) for r in results], axis=0)
    return base, ~same


def _check(name: str, cells_a: list, cells_b: list | None, values: bool) -> list[str]:
    ufunc = getattr(np, name)
    a, b = _values(cells_a), (None if cells_b is None else _values(cells_b))
    args = [a] if b is None else [a, b]
    out = Evaluator().apply(Operator(token=name, arity=ufunc.nin, numpy=name), a, b)
    ref, signed = _numpy(ufunc, args)
    den, flt = out.den[0], out.flt[0]
    scale = 1 + np.nanmax(np.abs(np.stack([np.where(np.isfinite(v.flt[0]), v.flt[0], 0) for v in args])), axis=0)
    problems = []
    for j in range(len(ref)):
        inputs = tuple(c[j] for c in ([cells_a] if cells_b is None else [cells_a, cells_b]))
        state = "undefined" if den[j] == 0 else ("exact" if den[j] > 0 else "inexact")
        if signed[j] or np.isnan(ref[j]):
            ok = den[j] == 0
        elif np.isinf(ref[j]):
            ok = den[j] == 0 or (den[j] < 0 and flt[j] == ref[j])
        else:
            ok = den[j] != 0 and (not values or abs(flt[j] - ref[j]) <= 1e-9 * abs(ref[j]) + 1e-12 * scale[j])
        if not ok:
            problems.append(f"{name}{inputs}: gensynth {state} {flt[j]!r}, numpy {ref[j]!r}{' (depends on the sign of a zero)' if signed[j] else ''}")
    return problems


def test_every_exact_operator_is_checked():
    assert EXACT_UFUNCS <= set(ACCEPTED), EXACT_UFUNCS - set(ACCEPTED)
    assert {"power", "float_power", "fmax", "fmin", "copysign", "heaviside"} <= EXACT_UFUNCS


@pytest.mark.parametrize("name", ACCEPTED)
def test_exact_lane_agrees_with_numpy(name):
    problems = []
    for dyadic in (True, False):
        pool = _pool(dyadic, seed=ACCEPTED.index(name))
        values = dyadic or name not in DISCONTINUOUS
        if getattr(np, name).nin == 1:
            problems += _check(name, pool, None, values)
        else:
            left, right = (list(x) for x in zip(*[(p, q) for p in pool for q in pool]))
            problems += _check(name, left, right, values)
    assert not problems, f"{len(problems)} cells disagree, e.g.\n" + "\n".join(problems[:12])


@pytest.mark.parametrize("prefix,x,numpy_value", [
    ("fmax x (rem x y)", (5, 0), 5.0),  # the review's three cases (12-operator grammar, vs syntax.evaluate_float)
    ("power 1 (power x x)", (-1 / 2, 0), 1.0),
])
def test_review_cases(prefix, x, numpy_value):
    """fmax ignores the undefined remainder by zero; 1 to an undefined power is 1."""
    from gensynth.universe.grammar import parse_grammar
    from gensynth.universe.syntax import evaluate_float, evaluate_trees, parse_prefix

    g = parse_grammar({
        "variables": ["x", "y"], "constants": ["1", "-2"],
        "operators": [{"token": "fmax", "arity": 2, "numpy": "fmax"}, {"token": "rem", "arity": 2, "numpy": "remainder"},
                      {"token": "power", "arity": 2, "numpy": "power"}, {"token": "copysign", "arity": 2, "numpy": "copysign"}],
        "grid": {"x": {"values": [str(Fraction(x[0]))]}, "y": {"values": [str(x[1])]}},
    })
    tree = parse_prefix(prefix.replace("(", "").replace(")", ""), g)
    assert evaluate_float(tree, g, np.array([x], np.float64))[0] == numpy_value
    assert evaluate_trees([tree], g).flt[0, 0] == numpy_value


def test_copysign_of_a_computed_zero_is_undefined():
    """copysign x (rem x -2) at x = 8: numpy −8 (remainder writes −0.0), and +8 for copysign x (- x x): one rational 0, no value."""
    from gensynth.universe.grammar import parse_grammar
    from gensynth.universe.syntax import evaluate_float, evaluate_trees, parse_prefix

    g = parse_grammar({
        "variables": ["x"], "constants": ["-2"],
        "operators": [{"token": "rem", "arity": 2, "numpy": "remainder"}, {"token": "-", "arity": 2, "numpy": "subtract"},
                      {"token": "copysign", "arity": 2, "numpy": "copysign"}],
        "grid": {"x": {"values": ["8", "3"]}},
    })
    a, b = (parse_prefix(p, g) for p in ("copysign x rem x -2", "copysign x - x x"))
    points = np.array([[8.0], [3.0]])
    assert evaluate_float(a, g, points).tolist() == [-8.0, -3.0] and evaluate_float(b, g, points).tolist() == [8.0, 3.0]
    va, vb = evaluate_trees([a, b], g).den
    assert va.tolist() == [0, 1] and vb.tolist() == [0, 0]  # rem 3 -2 = -1: copysign 3 -1 = -3, exact


def test_order_margin_is_relative_and_absolute():
    """Review B11: max/min takes the exact operand only when the two are more than ORDER_MARGIN apart,
    relative to the larger magnitude and at least 1 (so absolutely too): near zero, a cancelled inexact
    value (sqrt 2 · sqrt 2 − 2 is 0, its float 4.4e-16) is not trusted to be above an exact 1e-16."""
    from gensynth.universe.exact_ops import ORDER_MARGIN
    from gensynth.universe.grammar import parse_grammar
    from gensynth.universe.syntax import evaluate_trees, parse_prefix

    g = parse_grammar({
        "variables": ["x"], "constants": ["2", "1/10000000000000000", "3"],
        "operators": [{"token": "sqrt", "arity": 1, "numpy": "sqrt"}, {"token": "*", "arity": 2, "numpy": "multiply"},
                      {"token": "-", "arity": 2, "numpy": "subtract"}, {"token": "min", "arity": 2, "numpy": "minimum"},
                      {"token": "max", "arity": 2, "numpy": "maximum"}],
        "grid": {"x": {"values": ["1"]}},
    })
    assert ORDER_MARGIN == 1e-9

    def state(prefix):
        v = evaluate_trees([parse_prefix(prefix, g)], g)
        return "exact" if v.den[0, 0] > 0 else "inexact", v.flt[0, 0]

    assert state("- * sqrt 2 sqrt 2 2")[0] == "inexact"  # 4.4e-16, truly 0
    assert state("min - * sqrt 2 sqrt 2 2 1/10000000000000000")[0] == "inexact"  # truly 0, not the exact 1e-16
    assert state("max - * sqrt 2 sqrt 2 2 3") == ("exact", 3.0)  # clearly apart: the exact operand
    assert state("min * sqrt 2 3 3") == ("exact", 3.0)  # 4.24 vs 3: relative margin met
