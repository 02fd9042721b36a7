"""``hybrid``: the model orders the search — sketches ranked by the decoder, holes filled by deduction.

1. **Samples.** Up to ``--samples`` programs from the model; the first that fits wins.
2. **Sketches.** Every sample with one subtree cut out is a sketch: the top of a program
   with a hole. The target is pushed from the root down to the hole through exact
   inverses of the operators on the path, given the siblings' values (residue lane, care
   masks where a sibling is 0), so the hole gets a *requirement*: the values its
   subprogram must take. A sketch's score is the model's log-probability of the tokens
   outside the hole (teacher forcing, one forward pass over all samples); sketches are
   tried best first.
3. **Filling.** The bank grows one program size at a time up to ``--bank-ops``; at each
   size every sketch's hole is looked up in it (one candidate per sketch), then the
   best ``MITM_HOLES`` holes are filled by meet in the middle (programs up to twice the
   bank size) while that costs no more than building this bank size did (at least
   ``MITM_FLOOR``), so the detour at most doubles what enumeration would spend; every
   fill is verified exactly as a whole program.
4. **Search.** What is left of the budget goes to the enumerative search, which reuses
   the bank levels already charged to the task.

The model proposes the large-scale shape; deduction supplies the exact parts it gets
wrong, and the budget spent on them is charged like any candidate. Every candidate
(samples, requirement rows, lookups, bank rows) goes through the task's one Meter.
"""

from __future__ import annotations

import numpy as np

from gensynth.synthesis import field
from gensynth.synthesis.budget import Meter
from gensynth.synthesis.enumerative import MEMORY_BYTES, DeductiveSearch, solve_enumerative
from gensynth.synthesis.field import P
from gensynth.synthesis.methods import Attempt, Problem, SolveContext, register
from gensynth.synthesis.sample_verify import sample_and_verify

MITM_HOLES = 16  # per bank size, the best sketches whose holes are also filled by meet in the middle
MITM_FLOOR = 4_096  # ... spending at most the cost of that bank size, or this many candidates


def subtrees(tree: tuple, path: tuple = ()):
    """(path, subtree) of every node, preorder; a path is the child positions from the root."""
    yield path, tree
    for w, child in enumerate(tree[1:]):
        yield from subtrees(child, path + (w,))


def replace(tree: tuple, path: tuple, new: tuple) -> tuple:
    if not path:
        return new
    kids = list(tree[1:])
    kids[path[0]] = replace(kids[path[0]], path[1:], new)
    return (tree[0], *kids)


def size(tree: tuple) -> int:
    return 0 if len(tree) == 1 else 1 + sum(size(c) for c in tree[1:])


def span(tree: tuple, path: tuple) -> tuple[int, int]:
    """[start, end) token positions of the subtree at ``path`` in the tree's prefix order."""
    start, node = 0, tree
    for w in path:
        start += 1 + sum(_tokens(c) for c in node[1:][:w])
        node = node[1:][w]
    return start, start + _tokens(node)


def _tokens(tree: tuple) -> int:
    return 1 + sum(_tokens(c) for c in tree[1:])


def requirement(tree: tuple, path: tuple, grammar, target: np.ndarray, residues_of) -> tuple | None:
    """(residues, care) the subtree at ``path`` must take for ``tree`` to equal ``target``; None if impossible.

    Walks from the root: at each operator, the child on the path must make op(children)
    equal the requirement, given its sibling's residues (``residues_of(subtree)``).
    """
    need = target.copy()
    care = np.ones(len(target), bool)
    node = tree
    for w in path:
        op = grammar.operators[node[0] - grammar.n_leaves]
        name = op.numpy
        if op.arity == 1:
            need = (P - need) % P
        else:
            sib = residues_of(node[2 - w])  # the other child
            if name == "add":
                need = field.sub(need, sib)
            elif name == "subtract":
                need = field.add(need, sib) if w == 0 else field.sub(sib, need)
            elif name == "multiply":  # where the sibling is 0 the requirement must be 0 and the child is free
                zero = care & (sib == 0)
                if (need[zero] != 0).any():
                    return None
                care &= ~zero
                need = field.mul(need, field.inverse(sib))
            elif w == 0:  # child / sib: the sibling may not be 0 anywhere
                if (sib == 0).any():
                    return None
                need = field.mul(need, sib)
            else:  # sib / child: where the requirement is 0 the sibling must be 0, the child is free
                zero = care & (need == 0)
                if (sib[zero] != 0).any() or (sib[care & ~zero] == 0).any():
                    return None
                care &= ~zero
                need = field.mul(sib, field.inverse(need))
        need = np.where(care, need, 0)
        node = node[1 + w]
    return need, care


@register
class Hybrid:
    """Samples, then sketches of the samples ranked by the model and filled by deduction, then enumeration."""

    name = "hybrid"
    needs_model = True

    def __init__(self, context: SolveContext) -> None:
        self.model = context.model
        self.config = context.config
        self.grammar = context.grammar
        self.memory_bytes = getattr(context.config, "memory_gb", MEMORY_BYTES / 1e9) * 1e9

    def solve(self, problem: Problem, meter: Meter) -> Attempt:
        found, samples, _ = sample_and_verify(self.model, problem, meter, self.config.samples)
        if found is not None:
            return Attempt(found, "solved", how="sampled")
        target = problem.target
        if not field.is_field_grammar(self.grammar) or not (target.den > 0).all():
            result = solve_enumerative(self.grammar, problem.points, target, meter=meter, memory_bytes=self.memory_bytes)
            return self._attempt(result)
        search = DeductiveSearch(self.grammar, problem.points, meter, self.memory_bytes)
        search.start(target)
        sketches = None
        for k in range(min(self.config.bank_ops, meter.budget.max_ops) + 1):  # the bank grows one size at a time
            search.bank_up_to(k)
            if search.K < k:
                break  # memory budget
            sketches = sketches if sketches is not None else self._rank(problem, search, samples, meter)
            fill = self._lookups(search, sketches, meter.budget.max_ops) if sketches else None
            if fill is None and k >= 1:  # at most what this bank size cost, so the detour never more than doubles
                cap = meter.candidates + max(search.bank.levels[k].cost, MITM_FLOOR)
                fill = self._fill(search, sketches[:MITM_HOLES], meter.budget.max_ops, deep=True, until=cap)
            if fill:
                return Attempt(fill, "solved", how="sketch")
        return self._attempt(search.solve(target))

    @staticmethod
    def _lookups(search: DeductiveSearch, sketches, max_ops: int) -> tuple | None:
        """Every sketch's hole looked up in the bank at once; the best sketch that a banked program fills."""
        rows = np.stack([req for _, _, req, _ in sketches])
        cares = np.stack([care for _, _, _, care in sketches])
        limits = np.array([max_ops - (size(t) - size(_at(t, p))) for t, p, _, _ in sketches])
        outers = [lambda sub, t=t, p=p: replace(t, p, sub) for t, p, _, _ in sketches]
        return search.lookup_many(rows, cares, limits, outers)

    @staticmethod
    def _fill(search: DeductiveSearch, sketches, max_ops: int, deep: bool, until: float = float("inf")) -> tuple | None:
        """The first sketch, best first, whose hole the bank (or meet in the middle, if ``deep``) fills.

        Stops before a sketch once the task's candidates reach ``until``.
        """
        for tree, path, req, care in sketches:
            if search.meter.candidates >= until:
                return None
            max_m = max_ops - (size(tree) - size(_at(tree, path)))
            limit = min(max_m, 2 * search.K + 1 if deep else search.K)
            if deep and limit <= search.K:
                continue
            fill = search.fill(req[None, :], care, limit, lambda sub, t=tree, p=path: replace(t, p, sub), deep=False)
            if fill is not None:
                return fill
        return None

    def _attempt(self, result) -> Attempt:
        from gensynth.universe.syntax import parse_prefix

        tree = parse_prefix(result.prefix, self.grammar) if result.prefix else None
        return Attempt(tree, result.status, exact_up_to=result.exact_up_to, how=f"enumerative {result.how}".strip())

    def _rank(self, problem: Problem, search: DeductiveSearch, samples: list[tuple], meter: Meter):
        """(sample, hole path, requirement, care) best first by the model's log-probability outside the hole."""
        from gensynth.universe.syntax import evaluate_trees

        distinct = list(dict.fromkeys(samples))
        if not distinct:
            return []
        logp = self.model.token_logprobs(problem.outputs, problem.shown, distinct)
        nodes = list(dict.fromkeys(sub for tree in distinct for _, sub in subtrees(tree)))
        values = evaluate_trees(nodes, self.grammar)
        res = field.residues(type(values)(values.num[:, problem.points], values.den[:, problem.points],
                                          values.flt[:, problem.points]))
        row = {sub: i for i, sub in enumerate(nodes)}
        scored = []
        for tree, lp in zip(distinct, logp):
            for path, sub in subtrees(tree):
                if not path:
                    continue  # the whole program is the enumerative search's job
                meter.spend(1)  # the hole's requirement: one value row
                got = requirement(tree, path, self.grammar, search.t_res[0], lambda t: res[row[t]])
                if got is None or not got[1].any():
                    continue  # impossible, or anything fits (the sample itself would then have fitted)
                a, b = span(tree, path)
                score = float(lp[:a].sum() + lp[b:].sum())
                scored.append((-score, size(sub), len(scored), tree, path, got[0], got[1]))
        scored.sort(key=lambda x: x[:3])
        return [(t, p, r, c) for *_, t, p, r, c in scored]


def _at(tree: tuple, path: tuple) -> tuple:
    for w in path:
        tree = tree[1 + w]
    return tree
