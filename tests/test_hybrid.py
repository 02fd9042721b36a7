"""The hybrid's search half (gensynth.synthesis.hybrid): a sample with a hole, the requirement
pushed down to the hole through exact inverses, the hole filled by the bank or by meet in the
middle. (Was test_repair_fixes_a_near_miss_beyond_the_bank for the old repair.)"""

import numpy as np

from gensynth.synthesis import field
from gensynth.synthesis.budget import Budget, Meter
from gensynth.synthesis.enumerative import DeductiveSearch
from gensynth.synthesis.hybrid import replace, requirement, size, span, subtrees
from gensynth.universe.grammar import load_grammar
from gensynth.universe.rational import Values
from gensynth.universe.syntax import evaluate_trees, parse_prefix, to_prefix


def setup(target_text: str, bank: int):
    g = load_grammar()
    points = np.arange(64)
    target = evaluate_trees([parse_prefix(target_text, g)], g)
    search = DeductiveSearch(g, points, Meter(Budget(10**9, 600, 10)))
    search.start(target)
    search.bank_up_to(bank)
    return g, points, target, search


def residues_of(g, points):
    def of(tree):
        v = evaluate_trees([tree], g)
        return field.residues(Values(v.num[:, points], v.den[:, points], v.flt[:, points]))[0]
    return of


def fills(g, points, target, search, near_miss, deep):
    out = []
    for path, sub in subtrees(near_miss):
        if not path:
            continue
        got = requirement(near_miss, path, g, search.t_res[0], residues_of(g, points))
        if got is None or not got[1].any():
            continue
        limit = 10 - (size(near_miss) - size(sub))
        limit = min(limit, 2 * search.K + 1 if deep else search.K)
        tree = search.fill(got[0][None, :], got[1], limit, lambda s, p=path: replace(near_miss, p, s), deep=False)
        if tree is not None:
            out.append(tree)
    return out


def test_a_near_miss_is_repaired_beyond_the_bank():
    g, points, target, search = setup("+ * x / y 3 - * x x + y 2", bank=2)  # 6 operators
    near_miss = parse_prefix("+ * x / y 3 - * x y + y 2", g)  # one leaf wrong
    found = fills(g, points, target, search, near_miss, deep=False)
    assert found
    for tree in found:
        v = evaluate_trees([tree], g)
        assert (v.num == target.num).all() and (v.den == target.den).all()
    assert min(size(t) for t in found) == 6
    assert fills(g, points, target, search, parse_prefix("x", g), deep=False) == []


def test_a_hole_larger_than_the_bank_is_filled_by_meet_in_the_middle():
    # the sketch keeps the root '+ * x / y 3 ...'; the hole needs '- * x * x x * y + y 2' (5 operators)
    g, points, target, search = setup("+ * x / y 3 - * x * x x * y + y 2", bank=2)
    sketch = parse_prefix("+ * x / y 3 - x 1", g)
    assert not fills(g, points, target, search, sketch, deep=False)  # the bank alone is too small
    found = fills(g, points, target, search, sketch, deep=True)
    assert found and all(to_prefix(t, g).startswith("+ * x / y 3") for t in found)


def test_requirements_respect_zeros_and_spans_count_tokens():
    g = load_grammar()
    points = np.arange(64)
    tree = parse_prefix("* - x y + x 2", g)
    t = field.residues(evaluate_trees([parse_prefix("* - x y * x x", g)], g))[0]
    need, care = requirement(tree, (1,), g, t, residues_of(g, points))
    assert (~care).sum() == 8  # where x - y is 0 the second factor is free
    assert span(tree, (1,)) == (4, 7) and span(tree, (0, 1)) == (3, 4)


def test_the_fallback_search_reuses_the_bank_it_was_charged_for():
    """Issue 10 item 6: the hybrid used to rebuild its bank in the fallback. Banking sizes 0-3 first (as the
    hybrid does) and then searching costs exactly what the search alone costs, which banks the same sizes."""
    g = load_grammar()
    target = evaluate_trees([parse_prefix("+ * x * x x * y * y y", g)], g)  # 5 operators: the search banks 0-3
    alone = DeductiveSearch(g, np.arange(64), Meter(Budget(10**9, 600, 10)))
    first = alone.solve(target)
    assert alone.K >= 3
    meter = Meter(Budget(10**9, 600, 10))
    hybrid_like = DeductiveSearch(g, np.arange(64), meter)
    hybrid_like.start(target)
    hybrid_like.bank_up_to(3)
    banked = meter.candidates
    second = hybrid_like.solve(target)
    assert banked > 20_000 and second.prefix == first.prefix
    assert second.candidates <= first.candidates < banked + first.candidates
