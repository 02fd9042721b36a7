"""Tests for gensynth.universe.functions and gensynth.universe.rational: outputs and semantic classes.

Everything is checked against ``Reference``, an independent, straightforward recursive
evaluator written here with ``fractions.Fraction``: it reads the grammar TOML itself,
builds the grid itself, parses prefix text itself, and a program is undefined (NaN) at a
grid point where a division by an exact zero (or a sqrt of a negative number) occurs
anywhere in its evaluation.
"""

import math
import tomllib
from fractions import Fraction
from functools import lru_cache
from itertools import product
from pathlib import Path

import duckdb
import numpy as np
import pytest

from gensynth.pipeline import build_warehouse
from gensynth.universe.grammar import default_grammar_path, load_grammar, parse_grammar
from gensynth.universe.syntax import evaluate_trees, parse_prefix

GRAMMARS = Path(__file__).parent / "grammars"
UNDEFINED = None


def _sqrt(a):
    if a < 0:
        return UNDEFINED
    if isinstance(a, Fraction):
        n, d = math.isqrt(a.numerator), math.isqrt(a.denominator)
        if n * n == a.numerator and d * d == a.denominator:
            return Fraction(n, d)
    return math.sqrt(a)  # irrational: a float (only the unary grammar has these)


PYTHON_OPS = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "divide": lambda a, b: UNDEFINED if b == 0 else a / b,
    "negative": lambda a: -a,
    "sqrt": _sqrt,
}


class Reference:
    """A straightforward recursive evaluator over Fractions, independent of gensynth."""

    def __init__(self, toml_path: Path):
        spec = tomllib.loads(Path(toml_path).read_text())
        self.variables = spec["variables"]
        self.constants = {str(c): Fraction(str(c)) for c in spec.get("constants", [])}
        self.ops = {o["token"]: (o["arity"], PYTHON_OPS[o["numpy"]]) for o in spec["operators"]}
        axes = []
        for var in self.variables:
            ax = spec["grid"][var]
            if "values" in ax:
                axes.append([Fraction(str(v)) for v in ax["values"]])
            else:
                a, b, n = Fraction(ax["start"]), Fraction(ax["stop"]), ax["num"]
                axes.append([a + (b - a) * i / (n - 1) for i in range(n)])
        self.points = list(product(*axes))  # first variable varies slowest

    def parse(self, prefix: str):
        tokens = prefix.split()
        pos = 0

        def node():
            nonlocal pos
            tok = tokens[pos]
            pos += 1
            arity = self.ops[tok][0] if tok in self.ops else 0
            return (tok, *[node() for _ in range(arity)])

        tree = node()
        assert pos == len(tokens)
        return tree

    @lru_cache(maxsize=None)
    def outputs(self, tree) -> tuple:
        """Value at every grid point: a Fraction, a float (irrational) or None (undefined)."""
        tok, *kids = tree
        if not kids:
            if tok in self.variables:
                i = self.variables.index(tok)
                return tuple(p[i] for p in self.points)
            return (self.constants[tok],) * len(self.points)
        fn = self.ops[tok][1]
        args = [self.outputs(k) for k in kids]
        return tuple(UNDEFINED if UNDEFINED in vals else fn(*vals) for vals in zip(*args))

    def of(self, prefix: str) -> tuple:
        return self.outputs(self.parse(prefix))


def assert_outputs_match(expected: tuple, stored: np.ndarray, what: str) -> None:
    """Exact cells: float equality; irrational cells: 1e-12; undefined: NaN, nowhere else."""
    stored = np.asarray(stored, dtype=np.float64)
    nan = np.array([v is UNDEFINED for v in expected])
    assert (np.isnan(stored) == nan).all(), f"{what}: NaN at {np.isnan(stored).nonzero()[0]}, expected at {nan.nonzero()[0]}"
    for j, v in enumerate(expected):
        if isinstance(v, Fraction):
            assert float(v) == stored[j], f"{what} at point {j}: {v} != {stored[j]!r}"
        elif v is not UNDEFINED:
            assert math.isclose(v, stored[j], rel_tol=1e-12), f"{what} at point {j}: {v} != {stored[j]!r}"


def load_tables(path: Path):
    """(prefixes, function_id per program, outputs per function) of a warehouse."""
    con = duckdb.connect(str(path), read_only=True)
    prefixes = [r[0] for r in con.execute("SELECT prefix FROM programs ORDER BY program_id").fetchall()]
    fid = con.execute("SELECT function_id FROM programs ORDER BY program_id").fetchnumpy()["function_id"]
    rows = con.execute("SELECT outputs FROM functions ORDER BY function_id").fetchall()
    con.close()
    assert not any(v is None for r in rows for v in r[0]), "an output is NULL; undefined must be NaN"
    return prefixes, np.asarray(fid), np.array([r[0] for r in rows], dtype=np.float64)


@pytest.fixture(scope="module")
def default_ref():
    return Reference(default_grammar_path())


@pytest.fixture(scope="module")
def ops3(warehouse_ops3):
    return load_tables(warehouse_ops3)


@pytest.fixture(scope="module")
def tiny4(tmp_path_factory):
    """The tiny grammar's max-ops 4 universe (120,082 programs): exercises 4-op programs fast."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.duckdb"
    build_warehouse(load_grammar(GRAMMARS / "tiny.toml"), 4, path, quiet=True)
    return load_tables(path)


def _sample(n_total: int, n: int, seed: int) -> list[int]:
    return np.random.default_rng(seed).choice(n_total, n, replace=False).tolist()


def test_reference_evaluator_sanity(default_ref):
    ref = default_ref
    assert len(ref.points) == 64 and ref.points[9] == (Fraction(-10, 7), Fraction(-10, 7))
    assert ref.of("/ 1 - x x") == (UNDEFINED,) * 64
    assert ref.of("* - x x / 1 - x x") == (UNDEFINED,) * 64  # 0 * undefined is undefined
    assert ref.of("/ * x 3 3") == ref.of("x")


def test_outputs_of_random_programs_equal_reference(default_ref, ops3):
    prefixes, fid, outputs = ops3
    for pid in _sample(len(prefixes), 2_000, seed=1):
        assert_outputs_match(default_ref.of(prefixes[pid]), outputs[fid[pid]], f"program {pid} '{prefixes[pid]}'")


def test_outputs_of_random_four_op_programs_equal_reference(tiny4):
    ref = Reference(GRAMMARS / "tiny.toml")
    prefixes, fid, outputs = tiny4
    assert len(prefixes) == 120_082
    four_ops = [i for i in _sample(len(prefixes), 3_000, seed=2) if len(prefixes[i].split()) == 9][:1_500]
    assert len(four_ops) >= 1_000
    for pid in four_ops:
        assert_outputs_match(ref.of(prefixes[pid]), outputs[fid[pid]], f"program {pid} '{prefixes[pid]}'")


def _check_classes(ref: Reference, prefixes, fid, outputs, sample: list[int]) -> None:
    """Different functions differ (all of them); programs of one function agree (sample)."""
    smallest = np.full(len(outputs), -1)
    for pid in range(len(prefixes) - 1, -1, -1):  # lowest id wins
        smallest[fid[pid]] = pid
    assert (smallest >= 0).all()
    keys = [ref.of(prefixes[p]) for p in smallest]
    assert len(set(keys)) == len(keys), "two functions have equal exact outputs"
    for f, key in enumerate(keys):
        assert_outputs_match(key, outputs[f], f"function {f}")
    for pid in sample:
        assert ref.of(prefixes[pid]) == keys[fid[pid]], f"program {pid} '{prefixes[pid]}' differs from its class"


def test_classes_are_exact_default(default_ref, ops3):
    prefixes, fid, outputs = ops3
    _check_classes(default_ref, prefixes, fid, outputs, _sample(len(prefixes), 3_000, seed=3))


def test_classes_are_exact_tiny_four_ops(tiny4):
    prefixes, fid, outputs = tiny4
    _check_classes(Reference(GRAMMARS / "tiny.toml"), prefixes, fid, outputs, _sample(len(prefixes), 3_000, seed=4))


@pytest.mark.slow
def test_all_classes_of_three_ops(default_ref, ops3):
    """Every program of max-ops 3: the reference's distinct outputs are exactly the functions."""
    prefixes, fid, outputs = ops3
    function_of_key: dict[tuple, int] = {}
    for pid, prefix in enumerate(prefixes):
        key = default_ref.of(prefix)
        assert function_of_key.setdefault(key, fid[pid]) == fid[pid], f"'{prefix}' is in the wrong class"
    assert len(function_of_key) == len(outputs) == 10_232
    assert sum(UNDEFINED in k for k in function_of_key) == 1_162


def test_functions_table_is_consistent(warehouse_ops3):
    con = duckdb.connect(str(warehouse_ops3), read_only=True)
    bad = con.execute("""
        WITH c AS (SELECT function_id, count(*) AS n, min(program_id) AS first FROM programs GROUP BY function_id)
        SELECT count(*) FROM functions f FULL JOIN c USING (function_id)
        WHERE c.n IS DISTINCT FROM f.n_programs OR c.first IS DISTINCT FROM f.smallest_program""").fetchone()[0]
    assert bad == 0
    # finite <=> every output is a finite number; no -0.0 is ever stored for an exact zero.
    wrong_finite = con.execute("""
        SELECT count(*) FROM functions
        WHERE finite <> (list_count(list_filter(outputs, lambda v: isnan(v) OR isinf(v))) = 0)""").fetchone()[0]
    assert wrong_finite == 0
    n_functions, n_nonfinite = con.execute("SELECT count(*), count(*) FILTER (NOT finite) FROM functions").fetchone()
    assert (n_functions, n_nonfinite) == (10_232, 1_162)  # cross-checked by test_all_classes_of_three_ops (slow)
    # Undefined outputs are NaN, never NULL (DuckDB reads NaN in numpy columns as NULL).
    assert con.execute("SELECT count(*) FROM functions WHERE list_count(outputs) <> len(outputs)").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM functions WHERE list_bool_or(list_transform(outputs, lambda v: isnan(v)))").fetchone()[0] > 0
    outputs = np.array([r[0] for r in con.execute("SELECT outputs FROM functions").fetchall()])
    con.close()
    assert not np.signbit(outputs[outputs == 0]).any()
    assert not np.isinf(outputs).any()  # exact arithmetic: division by zero is undefined, never inf


# --- hard cases: cancellation, signed zeros, rounding ---------------------------------


class _ByPrefix(dict):
    """prefix -> (function_id, outputs) of the max-ops 3 warehouse."""

    def __init__(self, prefixes, fid, outputs):
        super().__init__((p, i) for i, p in enumerate(prefixes))
        self.fid, self.outputs = fid, outputs

    def __getitem__(self, prefix):
        f = self.fid[super().__getitem__(prefix)]
        return f, self.outputs[f]


@pytest.fixture(scope="module")
def by_prefix(ops3):
    return _ByPrefix(*ops3)


def test_exact_cancellation_is_undefined_exactly_where_divisor_is_zero(by_prefix, default_ref):
    # 1 / (y + 3x): y + 3x is exactly 0 at two grid points, where float evaluation is
    # not zero (a huge finite value results) -- exact evaluation must say undefined.
    fid, out = by_prefix["/ 1 + y * 3 x"]
    zero_at = [j for j, (x, y) in enumerate(default_ref.points) if y + 3 * x == 0]
    assert len(zero_at) == 2
    assert np.isnan(out).nonzero()[0].tolist() == zero_at
    g = load_grammar()
    axis = np.linspace(-2, 2, 8)  # the float grid a float-only evaluator would use
    xs, ys = np.repeat(axis, 8), np.tile(axis, 8)
    with np.errstate(divide="ignore"):
        naive = 1.0 / (ys + 3.0 * xs)
    assert np.isfinite(naive[zero_at]).all(), "the float hazard this test guards against is gone"
    assert np.abs(naive[zero_at]).min() > 1e14
    # Same function however it is written.
    assert by_prefix["/ 1 + * 3 x y"][0] == by_prefix["/ 1 + * x 3 y"][0] == fid
    # The syntax module's evaluator agrees.
    v = evaluate_trees([parse_prefix("/ 1 + y * 3 x", g)], g)
    assert np.isnan(v.flt[0]).nonzero()[0].tolist() == zero_at


@pytest.mark.parametrize("pair", [
    ("/ * x 3 3", "x"), ("* / x 3 3", "x"), ("- + x y y", "x"), ("/ * x y y", "x"),
    ("* / 1 3 3", "1"), ("/ x x", "1"), ("+ / 1 3 / 2 3", "1"), ("- x * 2 x", "- y + x y"),
    ("/ x / 1 3", "* 3 x"), ("/ / x 3 / y 3", "/ x y"),
])
def test_rounding_never_splits_a_class(by_prefix, default_ref, pair):
    a, b = pair
    assert default_ref.of(a) == default_ref.of(b)
    assert by_prefix[a][0] == by_prefix[b][0], f"'{a}' and '{b}' are equal on the grid but in different classes"


def test_signed_zeros_share_the_zero_function(by_prefix):
    zeros = ["- x x", "- y y", "- 1 1", "* x - y y", "* - y y x", "- * x y * y x", "/ - x x 3", "* - 2 2 x"]
    ids = {by_prefix[p][0] for p in zeros}
    assert len(ids) == 1
    out = by_prefix["- x x"][1]
    assert (out == 0).all() and not np.signbit(out).any()


def test_zero_over_expression_is_undefined_on_its_zeros(by_prefix, default_ref):
    # (x - x) / (y - x) and (y - y) / (x - y): 0 where defined, undefined on the diagonal.
    diag = [j for j, (x, y) in enumerate(default_ref.points) if x == y]
    a, b = by_prefix["/ - x x - y x"], by_prefix["/ - y y - x y"]
    assert a[0] == b[0]
    assert np.isnan(a[1]).nonzero()[0].tolist() == diag
    assert (a[1][~np.isnan(a[1])] == 0).all()
    # Undefined anywhere below the root makes the program undefined there.
    nowhere = ["/ 1 - x x", "/ x - y y", "- / x - y y x", "* - x x / 1 - y y"]
    assert len({by_prefix[p][0] for p in nowhere if p in by_prefix}) == 1
    assert np.isnan(by_prefix["/ 1 - x x"][1]).all()


# --- unary operators ------------------------------------------------------------------


@pytest.fixture(scope="module")
def unary3(tmp_path_factory):
    path = tmp_path_factory.mktemp("unary") / "unary.duckdb"
    build_warehouse(load_grammar(GRAMMARS / "unary.toml"), 3, path, quiet=True)
    return load_tables(path)


def test_unary_outputs_equal_reference(unary3):
    ref = Reference(GRAMMARS / "unary.toml")
    prefixes, fid, outputs = unary3
    assert len(prefixes) == 6_219
    for pid, prefix in enumerate(prefixes):
        assert_outputs_match(ref.of(prefix), outputs[fid[pid]], f"program {pid} '{prefix}'")


def test_unary_sqrt_semantics(unary3):
    prefixes, fid, outputs = unary3
    at = {p: (fid[i], outputs[fid[i]]) for i, p in enumerate(prefixes)}
    # grid: x = -4, -1, 0, 1/4, 2, 9
    sqrt_x = at["sqrt x"][1]
    assert np.isnan(sqrt_x[:2]).all()  # sqrt of a negative number is undefined
    assert sqrt_x[2:].tolist() == [0.0, 0.5, math.sqrt(2), 3.0]
    assert at["sqrt 4"][0] == at["+ 1 1"][0]  # sqrt(4) is exactly 2
    assert (at["sqrt 4"][1] == 2.0).all()
    assert at["sqrt * 4 x"][0] == at["+ sqrt x sqrt x"][0]  # 2 sqrt(x), exact and irrational alike
    assert at["neg neg x"][0] == at["x"][0]
    assert at["sqrt neg x"][1][:2].tolist() == [2.0, 1.0] and np.isnan(at["sqrt neg x"][1][4:]).all()
    assert at["sqrt * x x"][1].tolist() == [4.0, 1.0, 0.0, 0.25, 2.0, 9.0]  # sqrt(x^2) = |x|, exactly
    assert at["sqrt * x x"][0] != at["x"][0]


def test_unary_classes(unary3):
    ref = Reference(GRAMMARS / "unary.toml")
    prefixes, fid, outputs = unary3
    # Exact classes as for the default grammar (irrational values are classed by rounding).
    smallest = {}
    for pid in range(len(prefixes)):
        smallest.setdefault(fid[pid], pid)
    exact_keys = [ref.of(prefixes[p]) for p in smallest.values()]
    exact_only = [k for k in exact_keys if all(not isinstance(v, float) for v in k)]
    assert len(set(exact_only)) == len(exact_only)
    for pid in range(len(prefixes)):
        key = ref.of(prefixes[pid])
        if all(not isinstance(v, float) for v in key):
            assert key == ref.of(prefixes[smallest[fid[pid]]]), prefixes[pid]


# --- int64 overflow -------------------------------------------------------------------


def test_int64_overflow_is_detected_not_wrapped():
    # 3e18 fits int64; sums and products of it do not. The evaluator must never return a
    # wrapped-around exact value (a same-denominator sum used to overflow silently).
    big = "3000000000000000000"
    g = parse_grammar({
        "variables": ["x"], "constants": [big, "1/3"],
        "operators": [{"token": t, "arity": 2, "numpy": n} for t, n in [("+", "add"), ("-", "subtract"), ("*", "multiply"), ("/", "divide")]],
        "grid": {"x": {"values": [1, -2]}},
    })
    programs = [f"+ + {big} {big} + {big} {big}", f"- - 1/3 {big} + {big} {big}", f"* {big} {big}",
                f"/ {big} 1/3", f"+ {big} {big}", f"- x - x + {big} {big}", f"* * {big} x 1/3"]
    values = evaluate_trees([parse_prefix(p, g) for p in programs], g)
    for i, p in enumerate(programs):
        expected = [_fraction_eval(p.split(), x) for x in (Fraction(1), Fraction(-2))]
        for j, e in enumerate(expected):
            if values.den[i, j] > 0:  # claims exact: must be exactly right
                assert Fraction(int(values.num[i, j]), int(values.den[i, j])) == e, p
            assert math.isclose(values.flt[i, j], float(e), rel_tol=1e-12), p


def _fraction_eval(tokens: list[str], x: Fraction) -> Fraction:
    tok = tokens.pop(0)
    ops = {"+": PYTHON_OPS["add"], "-": PYTHON_OPS["subtract"], "*": PYTHON_OPS["multiply"], "/": PYTHON_OPS["divide"]}
    if tok in ops:
        a = _fraction_eval(tokens, x)
        return ops[tok](a, _fraction_eval(tokens, x))
    return x if tok == "x" else Fraction(tok)


# --- the row hash -----------------------------------------------------------------------

# Δnum·c1 + Δden·c2 ≡ 0 (mod 2⁶⁴) for the old scheme's c1, c2: the shortest vector of that
# lattice by Lagrange–Gauss reduction of the basis (2⁶⁴, 0), (−c2·c1⁻¹ mod 2⁶⁴, 1) is
# (Δnum, Δden) = (2,832,066,837, 1,547,983,357); shifted so that both cells are reduced
# fractions with |num|, den < 2³¹.
COLLIDING_CELLS = ((-1_416_033_418, 1), (1_416_033_419, 1_547_983_358))


def _old_row_hashes(values):
    """The row hash gensynth used before issue 10: one mix of num·c1 + den·c2 shared by both halves."""
    from gensynth.universe.functions import _splitmix

    with np.errstate(over="ignore"):
        num, den = values.num.view(np.uint64), values.den.view(np.uint64)
        cell = _splitmix(num * np.uint64(0x9E3779B97F4A7C15) + den * np.uint64(0xD6E8FEB86659FD93))
        positions = np.arange(1, values.num.shape[1] + 1, dtype=np.uint64)
        out = []
        for seed in (0x1234567, 0x89ABCDEF):
            weight = _splitmix(positions * np.uint64(seed)) | np.uint64(1)
            out.append(_splitmix((cell * weight).sum(axis=1, dtype=np.uint64)))
        return out


def _colliding_rows():
    from gensynth.universe.rational import from_fractions

    (n1, d1), (n2, d2) = COLLIDING_CELLS
    assert math.gcd(n1, d1) == math.gcd(n2, d2) == 1 and max(abs(n1), abs(n2), d1, d2) < 2**31
    return from_fractions([[Fraction(n1, d1), Fraction(1, 2), Fraction(3)], [Fraction(n2, d2), Fraction(1, 2), Fraction(3)]])


def test_old_hash_collided_on_a_31_bit_pair_and_the_new_one_does_not():
    from gensynth.universe.functions import row_hashes

    rows = _colliding_rows()
    old = _old_row_hashes(rows)
    assert old[0][0] == old[0][1] and old[1][0] == old[1][1]  # all 128 bits: two functions merged
    h1, h2 = row_hashes(rows)
    assert h1[0] != h1[1] and h2[0] != h2[1]


def test_pair_index_and_distinct_pairs_compare_both_halves():
    from gensynth.universe.functions import PairIndex, distinct_pairs

    h1 = np.array([7, 7, 3, 7, 3], np.uint64)  # first halves equal, second halves not
    h2 = np.array([1, 2, 5, 1, 5], np.uint64)
    first, inverse = distinct_pairs(h1, h2)
    assert first.tolist() == [0, 1, 2] and inverse.tolist() == [0, 1, 2, 0, 2]
    index = PairIndex()
    index.add(h1[first], h2[first], np.array([10, 11, 12]))
    assert index.lookup(np.array([7, 7, 3, 7, 9], np.uint64), np.array([2, 1, 5, 3, 1], np.uint64)).tolist() == [11, 10, 12, -1, -1]


def test_pass_check_compares_both_halves():
    """A prediction whose first hash half equals the target's but whose second does not is a fail."""
    from gensynth.learning.predictions import Checker
    from gensynth.universe.functions import row_hashes

    g = load_grammar()
    h1, h2 = (h.view(np.int64) for h in row_hashes(evaluate_trees([parse_prefix("+ x y", g)], g)))
    checker = Checker(g, np.zeros((1, 2)))
    off = np.array([[0.0]])
    target = np.array([[h1[0], h2[0]], [h1[0], h2[0] + 1]])
    _, passed, _ = checker.check(["+ x y", "+ x y"], np.array([True, True]), target, np.vstack([off, off]))
    assert passed.tolist() == [True, False]


def test_functions_store_both_hash_halves(warehouse_ops3):
    from gensynth.universe.functions import row_hashes

    g = load_grammar()
    with duckdb.connect(str(warehouse_ops3), read_only=True) as con:
        rows = con.execute("SELECT p.prefix, f.value_hash, f.value_hash2 FROM functions f JOIN programs p "
                           "ON p.program_id = f.smallest_program WHERE f.function_id % 997 = 0").fetchall()
        distinct = con.execute("SELECT count(DISTINCT (value_hash, value_hash2)), count(*) FROM functions").fetchone()
    assert distinct[0] == distinct[1]
    h1, h2 = (h.view(np.int64) for h in row_hashes(evaluate_trees([parse_prefix(r[0], g) for r in rows], g)))
    assert [(r[1], r[2]) for r in rows] == list(zip(h1.tolist(), h2.tolist()))


# --- the exact lane beyond + - * / (issue 10.4) -------------------------------------------

MAXMIN = {
    "variables": ["x", "y"], "constants": ["1", "2"],
    "operators": [{"token": t, "arity": 2, "numpy": n} for t, n in
                  [("+", "add"), ("-", "subtract"), ("*", "multiply"), ("max", "maximum"), ("min", "minimum")]],
    "grid": {"x": {"start": -2, "stop": 2, "num": 5}, "y": {"values": ["-3/2", "1/3", "5/2"]}},
}


def test_max_and_min_are_exact_and_share_classes(tmp_path):
    g = parse_grammar(MAXMIN)
    path = tmp_path / "maxmin.duckdb"
    build_warehouse(g, 3, path, quiet=True)
    with duckdb.connect(str(path), read_only=True) as con:
        fid = dict(con.execute("SELECT prefix, function_id FROM programs").fetchall())
    assert fid["max x x"] == fid["min x x"] == fid["x"]
    assert fid["+ min x y max x y"] == fid["+ max x y min x y"] == fid["+ x y"]
    assert fid["max 1 2"] == fid["2"] and fid["max x y"] == fid["max y x"] != fid["min x y"]


def test_search_and_pass_checks_inherit_exact_max(tmp_path):
    from gensynth.learning.predictions import Checker
    from gensynth.synthesis.bottom_up import BottomUpSearch  # the enumerative method's engine for max/min grammars
    from gensynth.synthesis.budget import Budget
    from gensynth.synthesis.enumerative import solve_enumerative
    from gensynth.universe.functions import row_hashes

    g = parse_grammar(MAXMIN)
    points = np.arange(g.n_points)
    h1, h2 = (h.view(np.int64) for h in row_hashes(evaluate_trees([parse_prefix("+ x y", g)], g)))
    checker = Checker(g, np.zeros((1, 2)))
    _, passed, _ = checker.check(["+ min x y max x y", "max x y"], np.array([True, True]),
                                 np.array([[h1[0], h2[0]]] * 2), np.zeros((2, 1)))
    assert passed.tolist() == [True, False]
    # Observational equivalence: max x x is x, so the size-1 bank of {max, min} over x, y holds only max x y and min x y.
    small = parse_grammar({**MAXMIN, "constants": [], "operators": MAXMIN["operators"][3:]})
    search = BottomUpSearch(small, points, Budget(max_ops=3))
    unreachable = evaluate_trees([parse_prefix("+ x y", g)], g).flt[0]  # max/min of x, y never make x + y
    assert search.solve(unreachable).status == "exhausted"
    assert [len(level) for level in search.bank.levels] == [2, 2, 0]
    target = evaluate_trees([parse_prefix("+ min x y max x y", g)], g).flt[0]
    assert solve_enumerative(g, points, target).prefix == "+ x y"


# Python references over Fractions, written from each function's definition.
EXTENDED_REFERENCE = {
    "maximum": max, "minimum": min, "fmax": max, "fmin": min,
    "heaviside": lambda a, b: Fraction(0) if a < 0 else (b if a == 0 else Fraction(1)),
    # An exact zero has no sign (numpy's −0.0 and +0.0 are one rational): copysign(a, 0) is undefined unless a = 0 (review A8).
    "copysign": lambda a, b: None if b == 0 and a != 0 else (-abs(a) if b < 0 else abs(a)),
    "floor_divide": lambda a, b: None if b == 0 else Fraction(math.floor(a / b)),
    "remainder": lambda a, b: None if b == 0 else a - b * math.floor(a / b),
    "fmod": lambda a, b: None if b == 0 else a - b * math.trunc(a / b),
    "floor": lambda a: Fraction(math.floor(a)), "ceil": lambda a: Fraction(math.ceil(a)),
    "trunc": lambda a: Fraction(math.trunc(a)), "rint": lambda a: Fraction(round(a)),  # Python rounds half to even
    "sign": lambda a: Fraction((a > 0) - (a < 0)), "positive": lambda a: a, "conjugate": lambda a: a,
    "fabs": abs, "reciprocal": lambda a: None if a == 0 else 1 / a,
}


@pytest.mark.parametrize("name", sorted(EXTENDED_REFERENCE))
def test_extended_exact_ops_equal_their_definitions(name):
    from gensynth.universe.grammar import Operator
    from gensynth.universe.rational import Evaluator, from_fractions

    rng = np.random.default_rng(len(name))
    values = [Fraction(int(n), int(d)) for n, d in zip(rng.integers(-40, 41, 400), rng.integers(1, 9, 400))]
    values += [Fraction(k, 2) for k in range(-7, 8)] + [Fraction(0)] * 5  # ties for rint, zeros for divisions
    ref = EXTENDED_REFERENCE[name]
    arity = ref.__code__.co_argcount if hasattr(ref, "__code__") else 2 - (name == "fabs")
    a = from_fractions([values])
    b = from_fractions([list(reversed(values))])
    op = Operator(token=name, arity=arity, numpy=name)
    assert op.exact
    out = Evaluator().apply(op, a, b if arity == 2 else None)
    for j, x in enumerate(values):
        expected = ref(x, values[-1 - j]) if arity == 2 else ref(x)
        if expected is None:
            assert out.den[0, j] == 0, (name, x)
        else:
            assert out.den[0, j] > 0 and Fraction(int(out.num[0, j]), int(out.den[0, j])) == expected, (name, x, values[-1 - j])
            inputs = [x, values[-1 - j]][:arity]
            if all(v.denominator & (v.denominator - 1) == 0 for v in inputs):  # floats hold them exactly: numpy agrees
                with np.errstate(all="ignore"):
                    assert out.flt[0, j] == op.ufunc(*[float(v) for v in inputs]), (name, inputs)


def test_transcendental_values_are_exact_only_where_provably_rational():
    g = parse_grammar({
        "variables": ["x"], "constants": ["1", "2", "1/2"],
        "operators": [{"token": t, "arity": 1, "numpy": t} for t in ("cos", "exp", "exp2", "log2", "log", "cbrt", "sin")]
        + [{"token": "-", "arity": 2, "numpy": "subtract"}, {"token": "max", "arity": 2, "numpy": "maximum"}],
        "grid": {"x": {"values": ["1/8", "8", "3", "-27"]}},
    })

    def cells(prefix):
        v = evaluate_trees([parse_prefix(prefix, g)], g)
        return [Fraction(int(n), int(d)) if d > 0 else ("undefined" if d == 0 else "inexact") for n, d in zip(v.num[0], v.den[0])]

    assert cells("cos - x x") == [1] * 4 and cells("exp - x x") == [1] * 4 and cells("sin - x x") == [0] * 4
    assert cells("cos x") == ["inexact"] * 4  # cos of a nonzero rational is transcendental
    assert cells("log2 x") == [-3, 3, "inexact", "undefined"]
    assert cells("cbrt x") == [Fraction(1, 2), 2, "inexact", -3]
    assert cells("exp2 1/2") == ["inexact"] * 4 and cells("exp2 2") == [4] * 4
    assert cells("log 1") == [0] * 4 and cells("log 2") == ["inexact"] * 4
    # An order operation picks an exact operand that is clearly on its side; a near tie stays inexact.
    assert cells("max sin x 2") == [2] * 4
    assert cells("max - 1 1 sin - x x") == [0] * 4  # sin(0) is exact 0: both exact
    assert cells("max exp2 1/2 cbrt x")[1] == 2 and cells("max exp2 1/2 cbrt x")[0] == "inexact"


def test_universe_with_no_task_one_operator_larger_still_builds(tmp_path):
    """Issue 11.8: max over x alone collapses (max x x = x), so no new function exists at max-ops + 1."""
    import subprocess
    import sys

    grammar = tmp_path / "max.toml"
    grammar.write_text('variables = ["x"]\n[[operators]]\ntoken = "max"\narity = 2\nnumpy = "maximum"\n[grid.x]\nvalues = [1, 2]\n')
    path = tmp_path / "w.duckdb"
    result = subprocess.run([sys.executable, "-m", "gensynth", "build", "--grammar", str(grammar), "--max-ops", "1",
                             "--warehouse", str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "tasks_beyond` is empty" in result.stdout + result.stderr
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM tasks_beyond").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM programs").fetchone()[0] == 2
