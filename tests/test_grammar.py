"""Tests for gensynth.universe.grammar: the shipped default, unary grammars, and every bad grammar.

The CLI-level behaviour of bad grammars (exit code, warehouse untouched) is tested in
tests/test_cli_build.py; here each problem is checked for a message that names it.
"""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from gensynth.errors import GensynthError
from gensynth.universe.grammar import default_grammar_path, load_grammar, parse_grammar

GRAMMARS = Path(__file__).parent / "grammars"

BINARY = """
[[operators]]
token = "+"
arity = 2
numpy = "add"
"""
GRID_X = """
[grid.x]
start = -1
stop = 1
num = 3
"""


def test_default_grammar_is_the_paper_language():
    g = load_grammar()
    assert g.variables == ("x", "y")
    assert g.constants == (Fraction(1), Fraction(2), Fraction(3))
    assert [(op.token, op.arity, op.numpy) for op in g.operators] == [
        ("+", 2, "add"), ("-", 2, "subtract"), ("*", 2, "multiply"), ("/", 2, "divide")]
    assert g.symbols == ("x", "y", "1", "2", "3", "+", "-", "*", "/")
    assert g.arities == (0, 0, 0, 0, 0, 2, 2, 2, 2)


def test_default_grid_is_exact_linspace():
    g = load_grammar()
    axis = tuple(Fraction(-2) + Fraction(4 * i, 7) for i in range(8))
    assert g.grid_axes == (axis, axis)
    assert g.n_points == 64
    points = g.grid_points
    assert points[0] == (-2, -2) and points[1] == (-2, Fraction(-10, 7)) and points[8] == (Fraction(-10, 7), -2)


def test_unary_grammar_loads():
    g = load_grammar(GRAMMARS / "unary.toml")
    assert [(op.token, op.arity) for op in g.operators] == [("neg", 1), ("sqrt", 1), ("+", 2), ("*", 2)]
    assert g.grid_axes == ((-4, -1, 0, Fraction(1, 4), 2, 9),)
    assert all(op.exact for op in g.operators)


def test_hash_ignores_layout_but_not_content(tmp_path):
    text = default_grammar_path().read_text()
    relaid = tmp_path / "relaid.toml"
    relaid.write_text("# a comment\n\n" + text.replace(" = ", "="))
    assert load_grammar(relaid).hash == load_grammar().hash
    changed = tmp_path / "changed.toml"
    changed.write_text(text.replace("num = 8", "num = 9"))
    assert load_grammar(changed).hash != load_grammar().hash


def test_fraction_constants_and_values(tmp_path):
    p = tmp_path / "g.toml"
    p.write_text('variables = ["x"]\nconstants = ["1/2", 0.25, 3]\n' + BINARY + '[grid.x]\nvalues = ["-1/3", 0.5]\n')
    g = load_grammar(p)
    assert g.constants == (Fraction(1, 2), Fraction(1, 4), Fraction(3))
    assert g.grid_axes == ((Fraction(-1, 3), Fraction(1, 2)),)


# Each bad grammar: (file text, substrings the message must contain).
BAD_GRAMMARS = {
    "not_toml": ("variables = [x\n", ["not valid TOML", "Fix the syntax"]),
    "unknown_numpy": (
        'variables = ["x"]\n[[operators]]\ntoken = "?"\narity = 2\nnumpy = "frobnicate"\n' + GRID_X,
        ["no ufunc named 'frobnicate'", "operators[0]", "use a numpy ufunc name"]),
    "arity_3": (
        'variables = ["x"]\n[[operators]]\ntoken = "+"\narity = 3\nnumpy = "add"\n' + GRID_X,
        ["arity must be 1 or 2, got 3", "operators[0]"]),
    "arity_0": (
        'variables = ["x"]\n[[operators]]\ntoken = "+"\narity = 0\nnumpy = "add"\n' + GRID_X,
        ["arity must be 1 or 2, got 0"]),
    "arity_mismatch": (
        'variables = ["x"]\n[[operators]]\ntoken = "+"\narity = 1\nnumpy = "add"\n' + GRID_X,
        ["numpy.add takes 2 argument(s) but arity is 1"]),
    "duplicate_token": (
        'variables = ["x"]\nconstants = ["1"]\n' + BINARY + BINARY.replace('"add"', '"multiply"') + GRID_X,
        ["token '+' is defined 2 times", "needs its own token"]),
    "duplicate_leaf": (
        'variables = ["x", "x"]\n' + BINARY + GRID_X, ["token 'x' is defined 2 times"]),
    "no_leaves": (
        'variables = []\nconstants = []\n' + BINARY, ["no leaves", "at least one entry in `variables` or `constants`"]),
    "empty_grid_num": (
        'variables = ["x"]\n' + BINARY + '[grid.x]\nstart = 0\nstop = 1\nnum = 0\n', ["grid.x is empty", "num >= 1"]),
    "empty_grid_values": (
        'variables = ["x"]\n' + BINARY + '[grid.x]\nvalues = []\n', ["grid.x is empty"]),
    "missing_grid": ('variables = ["x"]\n' + BINARY, ["grid for variable 'x' is missing", "[grid.x]"]),
    "no_operators": ('variables = ["x"]\n' + GRID_X, ["no operators", "[[operators]]"]),
    "space_in_token": (
        'variables = ["x"]\n' + BINARY.replace('"+"', '"p l"') + GRID_X, ["'p l' is empty or contains a space"]),
    "huge_constant": ('variables = ["x"]\nconstants = ["1e30"]\n' + BINARY + GRID_X, ["constants[0]", "too large"]),
    # issue 11.7: unknown keys at every level, with the closest known key
    "unknown_top_key": ('variables = ["x"]\nconstnats = ["1"]\n' + BINARY + GRID_X, ["unknown key `constnats`", "did you mean `constants`?"]),
    "unknown_operator_key": ('variables = ["x"]\n[[operators]]\ntokn = "+"\ntoken = "+"\narity = 2\nnumpy = "add"\n' + GRID_X,
                             ["unknown key `tokn` in operators[0]", "did you mean `token`?"]),
    "unknown_axis_key": ('variables = ["x"]\n' + BINARY + '[grid.x]\nstart = 0\nstop = 1\nnum = 3\nstpe = 1\n',
                         ["unknown key `stpe` in grid.x", "`stop`"]),
    # numpy functions that are not elementwise float functions returning one value
    "gcd": ('variables = ["x"]\n' + BINARY.replace('"add"', '"gcd"') + GRID_X, ["numpy.gcd is not an elementwise float function", "no float64 loop"]),
    "divmod": ('variables = ["x"]\n' + BINARY.replace('"add"', '"divmod"') + GRID_X, ["numpy.divmod", "returns 2 values"]),
    "matmul": ('variables = ["x"]\n' + BINARY.replace('"add"', '"matmul"') + GRID_X, ["numpy.matmul", "whole arrays"]),
    "isnan": ('variables = ["x"]\n[[operators]]\ntoken = "nan?"\narity = 1\nnumpy = "isnan"\n' + GRID_X, ["numpy.isnan", "returns booleans"]),
    "greater": ('variables = ["x"]\n' + BINARY.replace('"add"', '"greater"') + GRID_X, ["numpy.greater", "returns booleans"]),
    "reserved_token": ('variables = ["x", "<EOS>"]\n' + BINARY + GRID_X + '[grid."<EOS>"]\nvalues = [1]\n',
                       ["'<EOS>' is reserved for the model's special tokens", "<bos>"]),
    "duplicate_constant_value": ('variables = ["x"]\nconstants = ["1", "2/2", 1.0]\n' + BINARY + GRID_X,
                                 ["constants '1' and '2/2' are both 1", "constants '1' and '1.0' are both 1"]),
    "duplicate_grid_point": ('variables = ["x"]\n' + BINARY + '[grid.x]\nvalues = [0, "1/2", 0.5, 2]\n',
                             ["grid.x lists the point(s) 1/2 more than once"]),
    "grid_cap": ('variables = ["x", "y"]\n' + BINARY + '[grid.x]\nstart = 0\nstop = 1\nnum = 100\n[grid.y]\nstart = 0\nstop = 1\nnum = 100\n',
                 ["10,000 points, over the cap of 4,096"]),
}


@pytest.mark.parametrize("case", sorted(BAD_GRAMMARS))
def test_bad_grammar_message_names_problem(tmp_path, case):
    text, expected = BAD_GRAMMARS[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(text)
    with pytest.raises(GensynthError) as info:
        load_grammar(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_missing_grammar_file(tmp_path):
    with pytest.raises(GensynthError, match="does not exist.*--grammar"):
        load_grammar(tmp_path / "nope.toml")


def test_all_problems_reported_together():
    data = {
        "variables": ["x"],
        "operators": [{"token": "+", "arity": 3, "numpy": "add"}, {"token": "*", "arity": 2, "numpy": "nope"}],
        "grid": {"x": {"values": []}},
    }
    with pytest.raises(GensynthError) as info:
        parse_grammar(data)
    message = str(info.value)
    assert "arity must be 1 or 2" in message and "'nope'" in message and "grid.x is empty" in message


def test_non_utf8_grammar_is_refused(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('# caf\xe9\nvariables = ["x"]\n'.encode("latin-1") + (BINARY + GRID_X).encode())
    with pytest.raises(GensynthError) as info:
        load_grammar(path)
    assert "is not UTF-8 text" in str(info.value) and "line 1" in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("text,reported,spurious", [
    ('variables = ["x"]\n[[operators]]\ntoken = "?"\narity = 2\nnumpy = "frobnicate"\n' + GRID_X,
     "no ufunc named 'frobnicate'", "no operators"),
    ('variables = ["x"]\n[[operators]]\ntoken = "+"\narity = 3\nnumpy = "add"\n' + GRID_X, "arity must be 1 or 2", "no operators"),
    ('constants = ["abc"]\n' + BINARY, "constants[0]: 'abc' is not a rational number", "no leaves"),
], ids=["unknown_ufunc", "bad_arity", "bad_constant"])
def test_an_invalid_only_entry_is_reported_once(tmp_path, text, reported, spurious):
    """Review B10: an operator (or leaf) that is listed but invalid is not also reported as missing."""
    path = tmp_path / "g.toml"
    path.write_text(text)
    with pytest.raises(GensynthError) as info:
        load_grammar(path)
    assert reported in str(info.value) and spurious not in str(info.value), str(info.value)


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    """Review B10: "UTF-8 with BOM" (what Windows editors save) loads as the same grammar, without the mark in its text."""
    plain = default_grammar_path().read_text(encoding="utf-8")
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + plain.encode("utf-8"))
    grammar = load_grammar(path)
    assert grammar.hash == load_grammar().hash and grammar.source_text == plain
    path.write_bytes(('variables = ["x"]\n\ufeff' + BINARY + GRID_X).encode("utf-8"))  # one inside the file is not TOML
    with pytest.raises(GensynthError) as info:
        load_grammar(path)
    assert "Line 2 holds an invisible byte-order mark (U+FEFF)" in str(info.value) and str(path) in str(info.value)


def test_float_ufuncs_of_every_shipped_kind_are_accepted():
    for name in ("maximum", "floor", "sin", "hypot", "arctan2", "remainder", "mod", "true_divide", "abs"):
        ufunc = getattr(np, name)
        op = {"token": "f", "arity": ufunc.nin, "numpy": name}
        parse_grammar({"variables": ["x"], "operators": [op], "grid": {"x": {"values": [1, 2]}}})
