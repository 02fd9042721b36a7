"""``hybrid``: neural-guided repair.

The model's samples are verified first; if none fits, each sample is *repaired*: the
target is pushed down every root-to-node path by exact operator inverses and the value
the node would need is looked up among all programs up to ``--bank-ops`` operators; the
smallest repaired program wins. Only if no sample can be repaired does it search on
enumeratively with the same bank and what is left of the budget.
"""

from __future__ import annotations

from gensynth.synthesis.budget import Meter, OutOfBudget
from gensynth.synthesis.enumerative import EnumerativeSearch, repair, tree_size
from gensynth.synthesis.methods import Attempt, Problem, SolveContext, register
from gensynth.synthesis.sample_verify import sample_and_verify
from gensynth.universe.syntax import parse_prefix


@register
class Hybrid:
    """Samples, then repairs of the samples against a bank, then enumeration with the same bank."""

    name = "hybrid"
    needs_model = True

    def __init__(self, context: SolveContext) -> None:
        self.model = context.model
        self.config = context.config
        self.grammar = context.grammar

    def solve(self, problem: Problem, meter: Meter) -> Attempt:
        found, samples, _ = sample_and_verify(self.model, problem, meter, self.config.samples)
        if found is not None:
            return Attempt(found, "solved", how="sampled")
        search = EnumerativeSearch(self.grammar, problem.points, meter.budget, meter)
        search.set_target(problem.target)
        search.build_levels(min(self.config.bank_ops, meter.budget.max_ops))
        repaired: list[tuple] = []
        try:
            for tree in dict.fromkeys(samples):  # a repair of a repeated sample would repeat itself
                repaired += repair(tree, self.grammar, problem.points, problem.target, search.bank,
                                   len(search.bank.levels) - 1, meter)
        except OutOfBudget:
            if not repaired:
                raise
        if repaired:
            return Attempt(min(repaired, key=tree_size), "solved", how="repaired")
        result = search.search()
        tree = parse_prefix(result.prefix, self.grammar) if result.prefix else None
        return Attempt(tree, result.status, how="enumerated")
