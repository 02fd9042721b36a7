"""Tests for gensynth.universe.programs: counts, each program exactly once, DAG shape, program text.

Counts are checked against the closed form and against an independent brute-force tree
generator written here; uniqueness and text round trips are checked on a built warehouse.
"""

import math
from functools import lru_cache
from pathlib import Path

import duckdb
import numpy as np
import pytest

from gensynth.universe.programs import MAX_PROGRAMS, check_size, count_programs, enumerate_programs
from gensynth.errors import GensynthError
from gensynth.universe.grammar import load_grammar, parse_grammar
from gensynth.universe.syntax import parse_infix, parse_prefix, to_infix, to_prefix

GRAMMARS = Path(__file__).parent / "grammars"


def catalan(n: int) -> int:
    return math.comb(2 * n, n) // (n + 1)


def closed_form(n: int) -> int:
    """Programs of the default grammar with exactly n binary operators: C(n) * 4^n * 5^(n+1)."""
    return catalan(n) * 4**n * 5 ** (n + 1)


def brute_force_prefixes(leaves, unary, binary, max_ops) -> list[str]:
    """Every tree up to max_ops operators as prefix text, by plain recursion over sizes."""

    @lru_cache(maxsize=None)
    def exactly(n: int) -> tuple[tuple[str, ...], ...]:
        if n == 0:
            return tuple((leaf,) for leaf in leaves)
        out = [(u, *t) for u in unary for t in exactly(n - 1)]
        out += [(b, *l, *r) for b in binary for i in range(n) for l in exactly(i) for r in exactly(n - 1 - i)]
        return tuple(out)

    return [" ".join(t) for n in range(max_ops + 1) for t in exactly(n)]


def test_closed_form_values():
    assert [closed_form(n) for n in range(5)] == [5, 100, 4_000, 200_000, 11_200_000]
    assert [sum(closed_form(k) for k in range(n + 1)) for n in range(5)] == [5, 105, 4_105, 204_105, 11_404_105]


@pytest.mark.parametrize("max_ops", [0, 1, 2, 3])
def test_enumerated_counts_equal_closed_form(max_ops):
    g = load_grammar()
    dag = enumerate_programs(g, max_ops)
    assert len(dag) == sum(closed_form(n) for n in range(max_ops + 1))
    per_level = np.bincount(dag.n_ops, minlength=max_ops + 1)
    assert per_level.tolist() == [closed_form(n) for n in range(max_ops + 1)]
    assert count_programs(g, max_ops) == per_level.tolist()


def test_count_programs_four_ops_without_enumerating():
    g = load_grammar()
    assert count_programs(g, 4) == [closed_form(n) for n in range(5)]
    assert sum(count_programs(g, 4)) == 11_404_105
    assert check_size(g, 4) == 11_404_105


def test_unary_counts_match_brute_force():
    g = load_grammar(GRAMMARS / "unary.toml")
    prefixes = brute_force_prefixes(["x", "1", "4"], ["neg", "sqrt"], ["+", "*"], 3)
    assert sum(count_programs(g, 3)) == len(prefixes) == 6_219
    assert len(enumerate_programs(g, 3)) == len(prefixes)


def test_check_size_rejects_negative_and_huge():
    g = load_grammar()
    with pytest.raises(GensynthError, match="--max-ops must be 0 or more, got -1"):
        check_size(g, -1)
    with pytest.raises(GensynthError) as info:
        check_size(g, 5)
    total5 = sum(count_programs(g, 5))
    assert total5 > MAX_PROGRAMS
    assert f"{total5:,}" in str(info.value) and f"{MAX_PROGRAMS:,}" in str(info.value)
    assert "Use --max-ops 4" in str(info.value)
    with pytest.raises(GensynthError, match="--max-ops 9 would enumerate"):
        check_size(g, 9)


def test_dag_is_well_formed_and_ordered():
    g = load_grammar(GRAMMARS / "unary.toml")  # unary and binary nodes
    dag = enumerate_programs(g, 3)
    ids = np.arange(len(dag))
    leaf = dag.symbol < g.n_leaves
    unary = np.isin(dag.symbol, [g.n_leaves + k for k, op in enumerate(g.operators) if op.arity == 1])
    assert (dag.left[leaf] == -1).all() and (dag.right[leaf] == -1).all()
    assert (dag.left[~leaf] >= 0).all() and (dag.left[~leaf] < ids[~leaf]).all()
    assert (dag.right[unary] == -1).all()
    binary = ~leaf & ~unary
    assert (dag.right[binary] >= 0).all() and (dag.right[binary] < ids[binary]).all()
    # n_ops and depth agree with the children.
    lo, ro = dag.n_ops[dag.left].astype(int), np.where(dag.right >= 0, dag.n_ops[dag.right], 0)
    assert (dag.n_ops[~leaf] == 1 + lo[~leaf] + ro[~leaf]).all() and (dag.n_ops[leaf] == 0).all()
    ld, rd = dag.depth[dag.left].astype(int), np.where(dag.right >= 0, dag.depth[dag.right], 0)
    assert (dag.depth[~leaf] == 1 + np.maximum(ld, rd)[~leaf]).all() and (dag.depth[leaf] == 0).all()
    # Ids are ordered by (n_ops, operator, left size, left id, right id), strictly.
    key = np.stack([dag.n_ops, dag.symbol, np.where(leaf, 0, dag.n_ops[dag.left]), dag.left, dag.right]).astype(np.int64)
    diff = np.diff(key, axis=1)
    first_nonzero = diff[np.argmax(diff != 0, axis=0), np.arange(diff.shape[1])]
    assert (first_nonzero > 0).all()


def test_every_program_exactly_once_in_warehouse(warehouse_ops3):
    con = duckdb.connect(str(warehouse_ops3), read_only=True)
    n, n_prefix, n_infix, n_ids, n_nodes, lo, hi = con.execute("""
        SELECT count(*), count(DISTINCT prefix), count(DISTINCT infix), count(DISTINCT program_id),
               count(DISTINCT (root_symbol, left_id, right_id)), min(program_id), max(program_id)
        FROM programs""").fetchone()
    assert n == n_prefix == n_infix == n_ids == n_nodes == 204_105
    assert (lo, hi) == (0, n - 1)
    per_level = con.execute("SELECT n_ops, count(*) FROM programs GROUP BY n_ops ORDER BY n_ops").fetchall()
    assert per_level == [(k, closed_form(k)) for k in range(4)]
    prefixes = [r[0] for r in con.execute("SELECT prefix FROM programs").fetchall()]
    con.close()
    expected = brute_force_prefixes(["x", "y", "1", "2", "3"], [], ["+", "-", "*", "/"], 3)
    assert sorted(prefixes) == sorted(expected)


def _dag_trees(con):
    """Every program's tree rebuilt from the DAG columns (not from its text)."""
    rows = con.execute(
        "SELECT program_id, root_symbol, left_id, right_id, prefix, infix, n_ops, depth FROM programs ORDER BY program_id"
    ).fetchall()
    trees = []
    for pid, sym, left, right, *_ in rows:
        assert pid == len(trees)
        kids = [trees[c] for c in (left, right) if c is not None]
        trees.append((sym, *kids))
    return rows, trees


def _depth(tree) -> int:
    return 0 if len(tree) == 1 else 1 + max(_depth(k) for k in tree[1:])


def _check_text_round_trip(g, rows, trees, ids):
    for i in ids:
        _, _, _, _, prefix, infix, n_ops, depth = rows[i]
        tree = trees[i]
        assert parse_prefix(prefix, g) == tree, prefix
        assert parse_infix(infix, g) == tree, infix
        assert to_prefix(tree, g) == prefix
        assert to_infix(tree, g) == infix
        assert n_ops == len(prefix.split()) - sum(a == 0 for a in (g.arities[s] for s in _symbols(tree)))
        assert depth == _depth(tree)


def _symbols(tree):
    yield tree[0]
    for k in tree[1:]:
        yield from _symbols(k)


def test_text_parses_back_to_the_same_tree(warehouse_ops3):
    g = load_grammar()
    con = duckdb.connect(str(warehouse_ops3), read_only=True)
    rows, trees = _dag_trees(con)
    con.close()
    rng = np.random.default_rng(0)
    ids = np.concatenate([np.arange(4_105), rng.choice(np.arange(4_105, len(rows)), 20_000, replace=False)])
    _check_text_round_trip(g, rows, trees, ids.tolist())


@pytest.mark.slow
def test_text_parses_back_all_programs_of_three_ops(warehouse_ops3):
    g = load_grammar()
    con = duckdb.connect(str(warehouse_ops3), read_only=True)
    rows, trees = _dag_trees(con)
    con.close()
    _check_text_round_trip(g, rows, trees, range(len(rows)))


def test_unary_text_round_trip(tmp_path):
    from gensynth.pipeline import build_warehouse

    g = load_grammar(GRAMMARS / "unary.toml")
    path = tmp_path / "unary.duckdb"
    build_warehouse(g, 3, path, quiet=True)
    con = duckdb.connect(str(path), read_only=True)
    rows, trees = _dag_trees(con)
    con.close()
    _check_text_round_trip(g, rows, trees, range(len(rows)))
    assert sorted(r[4] for r in rows) == sorted(brute_force_prefixes(["x", "1", "4"], ["neg", "sqrt"], ["+", "*"], 3))
    infix = {r[4]: r[5] for r in rows}
    assert infix["sqrt + x 4"] == "sqrt(x + 4)"
    assert infix["* neg x + 1 x"] == "neg(x) * (1 + x)"


# --- memory estimates before any work (issue 11.7) -------------------------------------------

FORTY_OPS = ["add", "subtract", "multiply", "divide", "maximum", "minimum", "hypot", "arctan2", "power", "fmod"]


def forty_operator_grammar():
    return parse_grammar({
        "name": "forty", "variables": ["x", "y"], "constants": ["1", "2", "3"],
        "operators": [{"token": f"o{i}", "arity": 2, "numpy": FORTY_OPS[i % len(FORTY_OPS)]} for i in range(40)],
        "grid": {"x": {"start": -2, "stop": 2, "num": 8}, "y": {"start": -2, "stop": 2, "num": 8}},
    })


def test_forty_operator_grammar_is_refused_with_the_estimate_and_the_flag(tmp_path):
    from gensynth.pipeline import build_warehouse

    g = forty_operator_grammar()
    with pytest.raises(GensynthError) as info:
        check_size(g, 2)  # counts only: no enumeration, no allocation
    message = str(info.value)
    assert "in the embed stage" in message and "GiB" in message and "--max-ops 1 or less" in message
    path = tmp_path / "w.duckdb"
    with pytest.raises(GensynthError, match="embed stage"):
        build_warehouse(g, 2, path, quiet=True)
    assert list(tmp_path.iterdir()) == []  # nothing written
    assert check_size(g, 1) == sum(count_programs(g, 1))


def test_default_grammar_at_four_ops_fits_a_24_gib_machine():
    from gensynth.manifolds.embed import DEFAULT_K_SEM, DEFAULT_K_SYN, GROUP_PROBE
    from gensynth.universe import budget

    stages = budget.check_memory(load_grammar(), 4, budget=24 * budget.GIB)
    assert set(stages) == {"enumerate", "evaluate", "pq-grams", "embed", "splits"}
    # The measured peaks (README): build 2.2 GB, embed 5.3 GB; the estimates are upper bounds.
    assert stages["evaluate"] >= 2.2e9 and stages["embed"] >= 5.3e9
    assert budget.K_SYN >= DEFAULT_K_SYN and budget.K_SEM == DEFAULT_K_SEM and GROUP_PROBE > 0
    with pytest.raises(GensynthError, match="--max-ops 3 or less"):
        budget.check_memory(load_grammar(), 4, budget=4 * budget.GIB)


@pytest.mark.parametrize("grammar_file,max_ops", [(None, 1), (None, 2), (None, 3), ("unary.toml", 3), ("tiny.toml", 4)])
def test_vocabulary_bound_holds_for_real_universes(grammar_file, max_ops):
    """The embed estimate rests on the pq-gram vocabulary bound: it must be an upper bound."""
    from gensynth.manifolds.pqgrams import compute_profiles
    from gensynth.universe.budget import vocabulary_bound

    g = load_grammar(None if grammar_file is None else Path(__file__).parent / "grammars" / grammar_file)
    vocab = len(compute_profiles(g, enumerate_programs(g, max_ops)).vocab_codes)
    assert vocab <= vocabulary_bound(g, 2, 3, max_ops) <= 4 * vocab + 500
