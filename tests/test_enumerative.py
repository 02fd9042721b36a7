"""The enumerative synthesizer (gensynth.synthesis.enumerative) and neural-guided repair.

The search reads no warehouse: it gets a grammar, example points and target values. The
expected answers here come from an independent source: the exhaustive enumeration and
exact evaluation of the same grammar (gensynth.universe.programs / gensynth.universe.functions), which
tell the size of the smallest program of every function.
"""

from pathlib import Path

import numpy as np
import pytest

from gensynth.universe.programs import enumerate_programs
from gensynth.errors import GensynthError
from gensynth.universe.functions import evaluate_programs, row_hashes
from gensynth.universe.grammar import load_grammar
from gensynth.synthesis.budget import Budget, Meter
from gensynth.synthesis.enumerative import exact_target, solve_enumerative, tree_size
from gensynth.universe.syntax import evaluate_trees, parse_prefix, to_prefix

GRAMMARS = Path(__file__).parent / "grammars"


def values_of(prefix: str, grammar) -> np.ndarray:
    return evaluate_trees([parse_prefix(prefix, grammar)], grammar).flt[0]


def consistent(prefix: str, target: np.ndarray, grammar, points) -> bool:
    got = values_of(prefix, grammar)[points]
    return bool(np.array_equal(got, target[points], equal_nan=True))


@pytest.fixture(scope="module")
def tiny():
    """The tiny grammar's universe up to 4 ops, with each function's smallest size."""
    g = load_grammar(GRAMMARS / "tiny.toml")
    dag = enumerate_programs(g, 4)
    ev = evaluate_programs(g, dag)
    return g, dag, ev


@pytest.mark.parametrize("prefix,size", [
    ("x", 0), ("+ x y", 1), ("* x x", 1), ("/ 1 - x y", 2), ("+ * x x * y y", 3), ("- * x * x x / y 3", 4),
])
def test_hand_picked_tasks_default_grammar(prefix, size):
    g = load_grammar()
    points = np.arange(64)
    target = values_of(prefix, g)
    result = solve_enumerative(g, points, target)
    assert result.status == "solved" and result.n_ops <= size
    assert consistent(result.prefix, target, g, points)


def test_smallest_program_on_every_4op_function_sample(tiny):
    g, dag, ev = tiny
    points = np.arange(g.n_points)
    size = dag.n_ops[ev.functions.smallest_program]
    rng = np.random.default_rng(0)
    four = rng.choice(np.flatnonzero(size == 4), 25, replace=False)
    others = rng.choice(np.flatnonzero(size < 4), 15, replace=False)
    for f in np.concatenate([four, others]):
        target = ev.functions.outputs[f]
        result = solve_enumerative(g, points, target, Budget(candidates=5_000_000, seconds=60))
        assert result.status == "solved"
        assert result.n_ops == size[f], (f, result)  # smallest, not just consistent
        assert consistent(result.prefix, target, g, points)


def test_too_small_budget_fails_cleanly(tiny):
    g, dag, ev = tiny
    f = int(np.flatnonzero(dag.n_ops[ev.functions.smallest_program] == 4)[0])
    result = solve_enumerative(g, np.arange(g.n_points), ev.functions.outputs[f], Budget(candidates=50))
    assert result.status == "budget" and result.prefix is None and result.candidates <= 50
    result = solve_enumerative(g, np.arange(g.n_points), ev.functions.outputs[f], Budget(max_ops=2))
    assert result.status == "exhausted" and result.prefix is None


def test_zero_budget_is_refused():
    with pytest.raises(GensynthError, match="budget must be positive"):
        Budget(candidates=0)


def test_grammar_without_any_warehouse():
    """A grammar and grid no warehouse was ever built for: unary operators, sqrt, few points."""
    g = load_grammar(GRAMMARS / "unary.toml")
    points = np.arange(g.n_points)
    for prefix in ("sqrt * x x", "neg + x 4", "* + x 1 + x 1"):
        target = values_of(prefix, g)
        result = solve_enumerative(g, points, target)
        assert result.status == "solved" and consistent(result.prefix, target, g, points)


def test_undefined_targets_are_matched_exactly(tiny):
    g, dag, ev = tiny
    points = np.arange(g.n_points)
    for prefix in ("/ 1 x", "/ x - x x", "/ 1 * x - x 1"):
        target = values_of(prefix, g)
        assert np.isnan(target).any()
        result = solve_enumerative(g, points, target)
        assert result.status == "solved" and consistent(result.prefix, target, g, points)


def test_fewer_examples_give_a_program_consistent_with_those_shown():
    g = load_grammar()
    points = np.array([0, 9, 18, 27, 36, 45, 54, 63])
    target = values_of("+ * x x * y y", g)
    with pytest.raises(GensynthError, match="values at exactly those points"):
        solve_enumerative(g, points, target)
    result = solve_enumerative(g, points, target[points])
    assert result.status == "solved" and consistent(result.prefix, target, g, points)
    assert result.n_ops <= 3


def test_non_rational_targets_are_reported():
    g = load_grammar()
    target = np.full(64, np.inf)
    assert exact_target(target) is None
    assert solve_enumerative(g, np.arange(64), target).status == "exhausted"


