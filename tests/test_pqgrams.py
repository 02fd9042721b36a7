"""pq-gram profiles (gensynth.manifolds.pqgrams) against hand-worked profiles and a reference."""

import collections
import itertools
import random

import numpy as np
import pytest

from gensynth.universe.programs import enumerate_programs
from gensynth.universe.grammar import load_grammar, parse_grammar
from gensynth.manifolds.pqgrams import compute_profiles, pair_distances, profile_sizes, profile_tree
from pqgram_reference import bag_of, tods_distance, vldb_distance
from gensynth.universe.syntax import parse_prefix, to_prefix

N = None  # a null node of the extended tree


@pytest.fixture(scope="module")
def grammar():
    return load_grammar()


@pytest.fixture(scope="module")
def unary_grammar():
    return parse_grammar({
        "variables": ["x", "y"], "constants": [1, 2],
        "operators": [{"token": "+", "arity": 2, "numpy": "add"}, {"token": "neg", "arity": 1, "numpy": "negative"}],
        "grid": {"x": {"values": [1, 2]}, "y": {"values": [3]}},
    })


def computed_bag(grammar, prefix: str, max_ops: int, p: int = 2, q: int = 3):
    """The vectorised profile of one program, found by its prefix text."""
    dag = enumerate_programs(grammar, max_ops)
    profiles = compute_profiles(grammar, dag, p, q)
    target = parse_prefix(prefix, grammar)
    ids = [i for i in range(len(dag)) if _tree(dag, i) == target]
    assert len(ids) == 1
    return bag_of(profiles, grammar, ids[0])


def _tree(dag, i):
    kids = [c for c in (dag.left[i], dag.right[i]) if c >= 0]
    return (int(dag.symbol[i]), *[_tree(dag, int(c)) for c in kids])


HAND_WORKED = [
    # (grammar fixture, prefix, p, q, profile written out by hand)
    ("grammar", "x", 2, 3, {((N, "x"), (N, N, N)): 1}),
    ("grammar", "+ x y", 2, 3, {
        ((N, "+"), (N, N, "x")): 1, ((N, "+"), (N, "x", "y")): 1, ((N, "+"), ("x", "y", N)): 1, ((N, "+"), ("y", N, N)): 1,
        (("+", "x"), (N, N, N)): 1, (("+", "y"), (N, N, N)): 1,
    }),
    ("grammar", "+ x x", 2, 3, {
        ((N, "+"), (N, N, "x")): 1, ((N, "+"), (N, "x", "x")): 1, ((N, "+"), ("x", "x", N)): 1, ((N, "+"), ("x", N, N)): 1,
        (("+", "x"), (N, N, N)): 2,
    }),
    ("grammar", "- * + x 1 y 2", 2, 3, {  # depth 3
        ((N, "-"), (N, N, "*")): 1, ((N, "-"), (N, "*", "2")): 1, ((N, "-"), ("*", "2", N)): 1, ((N, "-"), ("2", N, N)): 1,
        (("-", "*"), (N, N, "+")): 1, (("-", "*"), (N, "+", "y")): 1, (("-", "*"), ("+", "y", N)): 1, (("-", "*"), ("y", N, N)): 1,
        (("-", "2"), (N, N, N)): 1,
        (("*", "+"), (N, N, "x")): 1, (("*", "+"), (N, "x", "1")): 1, (("*", "+"), ("x", "1", N)): 1, (("*", "+"), ("1", N, N)): 1,
        (("*", "y"), (N, N, N)): 1, (("+", "x"), (N, N, N)): 1, (("+", "1"), (N, N, N)): 1,
    }),
    ("unary_grammar", "neg x", 2, 3, {
        ((N, "neg"), (N, N, "x")): 1, ((N, "neg"), (N, "x", N)): 1, ((N, "neg"), ("x", N, N)): 1,
        (("neg", "x"), (N, N, N)): 1,
    }),
    ("grammar", "+ x y", 3, 2, {  # p = 3, q = 2
        ((N, N, "+"), (N, "x")): 1, ((N, N, "+"), ("x", "y")): 1, ((N, N, "+"), ("y", N)): 1,
        ((N, "+", "x"), (N, N)): 1, ((N, "+", "y"), (N, N)): 1,
    }),
    ("grammar", "* x * y 3", 3, 2, {  # '*' is an operator label, never the null node
        ((N, N, "*"), (N, "x")): 1, ((N, N, "*"), ("x", "*")): 1, ((N, N, "*"), ("*", N)): 1,
        ((N, "*", "x"), (N, N)): 1,
        ((N, "*", "*"), (N, "y")): 1, ((N, "*", "*"), ("y", "3")): 1, ((N, "*", "*"), ("3", N)): 1,
        (("*", "*", "y"), (N, N)): 1, (("*", "*", "3"), (N, N)): 1,
    }),
]


@pytest.mark.parametrize("fixture,prefix,p,q,expected", HAND_WORKED, ids=[f"{h[1]}-p{h[2]}q{h[3]}" for h in HAND_WORKED])
def test_hand_worked_profiles(request, fixture, prefix, p, q, expected):
    g = request.getfixturevalue(fixture)
    tree = parse_prefix(prefix, g)
    assert profile_tree(tree, g, p, q) == collections.Counter(expected)
    n_ops = len(prefix.split()) - sum(1 for t in prefix.split() if g.arities[g.symbols.index(t)] == 0)
    assert computed_bag(g, prefix, max(n_ops, 1), p, q) == collections.Counter(expected)


@pytest.mark.parametrize("p,q", [(1, 1), (2, 3), (3, 2), (2, 1), (1, 4)])
def test_vectorised_matches_reference_on_every_program(grammar, p, q):
    dag = enumerate_programs(grammar, 2)
    profiles = compute_profiles(grammar, dag, p, q)
    for i in range(len(dag)):
        assert bag_of(profiles, grammar, i) == profile_tree(_tree(dag, i), grammar, p, q)


@pytest.mark.parametrize("p,q", [(2, 3), (3, 2), (1, 1), (4, 1)])
def test_vectorised_matches_reference_with_unary_operators(unary_grammar, p, q):
    # Levels mix unary and binary roots, so rows of one level differ in length (padding).
    dag = enumerate_programs(unary_grammar, 3)
    profiles = compute_profiles(unary_grammar, dag, p, q)
    for i in range(len(dag)):
        assert bag_of(profiles, unary_grammar, i) == profile_tree(_tree(dag, i), unary_grammar, p, q)


@pytest.mark.parametrize("chunk", [3, 64])
def test_chunking_does_not_change_the_output(grammar, unary_grammar, monkeypatch, chunk):
    # Small chunks split the top level's blocks both by whole left children and within one.
    import gensynth.manifolds.pqgrams as pqgrams

    for g, max_ops in ((grammar, 2), (unary_grammar, 3)):
        dag = enumerate_programs(g, max_ops)
        expected = compute_profiles(g, dag)
        monkeypatch.setattr(pqgrams, "CHUNK_PROGRAMS", chunk)
        got = compute_profiles(g, dag)
        monkeypatch.undo()
        for name in ("program_id", "gram_id", "n", "vocab_codes"):
            assert np.array_equal(getattr(got, name), getattr(expected, name)), name


def test_profiles_layout(grammar):
    dag = enumerate_programs(grammar, 3)
    profiles = compute_profiles(grammar, dag)
    assert (profiles.program_id.dtype, profiles.gram_id.dtype, profiles.n.dtype, profiles.vocab_codes.dtype) == (
        np.int32, np.int32, np.int16, np.int64)
    key = profiles.program_id.astype(np.int64) * len(profiles.vocab_codes) + profiles.gram_id
    assert (np.diff(key) > 0).all()  # sorted by (program_id, gram_id), each gram once per program
    assert (profiles.n >= 1).all() and (np.diff(profiles.vocab_codes) > 0).all()
    assert np.array_equal(np.unique(profiles.gram_id), np.arange(len(profiles.vocab_codes)))  # every gram occurs


def test_dag_out_of_enumeration_order_is_refused(grammar):
    from gensynth.errors import GensynthError

    dag = enumerate_programs(grammar, 2)
    top = dag.level(2)
    for col in (dag.symbol, dag.left, dag.right):  # swap two top-level programs
        col[top.start], col[top.stop - 1] = col[top.stop - 1], col[top.start]
    with pytest.raises(GensynthError, match="rebuild the warehouse"):
        compute_profiles(grammar, dag)


@pytest.mark.parametrize("p,q", [(2, 3), (3, 2), (1, 1)])
def test_profile_size_closed_form(grammar, unary_grammar, p, q):
    for g, max_ops in ((grammar, 3), (unary_grammar, 3)):
        dag = enumerate_programs(g, max_ops)
        sizes = profile_sizes(compute_profiles(g, dag, p, q), len(dag))
        arity = np.array(g.arities)[dag.symbol]
        leaves = np.zeros(len(dag), np.int64)
        inner = np.zeros(len(dag), np.int64)
        for n in range(max_ops + 1):  # children precede parents: accumulate counts level by level
            blk = dag.level(n)
            leaves[blk] = np.where(arity[blk] == 0, 1, leaves[dag.left[blk]] + np.where(dag.right[blk] >= 0, leaves[np.maximum(dag.right[blk], 0)], 0))
            inner[blk] = np.where(arity[blk] == 0, 0, 1 + inner[dag.left[blk]] + np.where(dag.right[blk] >= 0, inner[np.maximum(dag.right[blk], 0)], 0))
        assert (sizes == 2 * leaves + q * inner - 1).all()


def test_sample_of_larger_programs_matches_reference(grammar):
    dag = enumerate_programs(grammar, 3)
    profiles = compute_profiles(grammar, dag)
    for i in random.Random(0).sample(range(len(dag)), 300):
        assert bag_of(profiles, grammar, i) == profile_tree(_tree(dag, i), grammar)


def test_distance_properties(grammar):
    dag = enumerate_programs(grammar, 2)
    trees = [_tree(dag, i) for i in random.Random(1).sample(range(len(dag)), 40)]
    bags = [profile_tree(t, grammar) for t in trees]
    for a, b in itertools.product(range(len(bags)), repeat=2):
        for dist in (tods_distance, vldb_distance):
            d = dist(bags[a], bags[b])
            assert 0 <= d <= 1
            assert d == pytest.approx(dist(bags[b], bags[a]))
            if trees[a] == trees[b]:
                assert d == 0
    rng = random.Random(2)
    for _ in range(2000):  # the TODS form is a metric
        a, b, c = (rng.choice(bags) for _ in range(3))
        assert tods_distance(a, c) <= tods_distance(a, b) + tods_distance(b, c) + 1e-12


def test_pair_distances_match_the_definitions(grammar):
    """The vectorised distances (used by the k_syn benchmark) equal the bag definitions, pair for pair."""
    dag = enumerate_programs(grammar, 2)
    profiles = compute_profiles(grammar, dag)
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, len(dag), 300), rng.integers(0, len(dag), 300)
    a[:3], b[:3] = [0, 5, 4104], [0, 5, 17]  # identical pairs and the last program
    tods, vldb = pair_distances(profiles, a, b)
    bags = {i: profile_tree(_tree(dag, int(i)), grammar) for i in set(a.tolist()) | set(b.tolist())}
    np.testing.assert_allclose(tods, [tods_distance(bags[i], bags[j]) for i, j in zip(a.tolist(), b.tolist())], rtol=1e-12)
    np.testing.assert_allclose(vldb, [vldb_distance(bags[i], bags[j]) for i, j in zip(a.tolist(), b.tolist())], rtol=1e-12, atol=1e-15)
    assert tods[0] == 0 and tods[1] == 0


def test_bad_parameters(grammar):
    from gensynth.errors import GensynthError

    dag = enumerate_programs(grammar, 1)
    for p, q in ((0, 3), (2, 0)):
        with pytest.raises(GensynthError, match="p >= 1 and q >= 1"):
            compute_profiles(grammar, dag, p, q)
