"""Memory estimates of every build stage, checked before any work.

``gensynth build`` enumerates, evaluates, extracts pq-grams, embeds and registers splits
in one process. Each stage's peak is estimated here from counts alone (no enumeration),
as an upper-ish bound: the estimates are built from the arrays each stage allocates,
with the number of functions bounded by the number of programs and the pq-gram
vocabulary by what the grammar's labels allow. A build whose largest estimate exceeds
the machine's memory is refused with the table and the ``--max-ops`` that fits (a
40-operator grammar at max-ops 2 once tried to allocate 684 GiB for the embed stage's
gram matrix; the bound here says 5,241 GiB). For the default grammar at max-ops 4 the
evaluate bound (9.4 GiB) is about 4.5x the measured peak of the build before the embed
(2.17 GB: there are 156,442 functions, not one per program) and the embed bound
(6.9 GiB) about 1.5x the measured embed peak (5.09 GB).
"""

from __future__ import annotations

import os

from gensynth.errors import GensynthError
from gensynth.universe.grammar import Grammar

# What the build uses unless told otherwise (gensynth.manifolds.embed defaults; kept in
# sync by tests/test_grammar.py).
P, Q, K_SYN, K_SEM = 2, 3, 34, 16
CHUNK_ROWS = 200_000  # gensynth.universe.functions.CHUNK_ROWS
FIT_ROWS = 1_000_000  # gensynth.manifolds.embed.SVD_FIT_ROWS
GIB = 2**30


def machine_memory() -> int:
    """Physical memory of this machine in bytes (the budget builds are checked against)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 16 * GIB


def level_counts(grammar: Grammar, max_ops: int) -> list[int]:
    """Programs with exactly n operators, n = 0..max_ops (as gensynth.universe.programs.count_programs)."""
    n_unary = sum(op.arity == 1 for op in grammar.operators)
    n_binary = sum(op.arity == 2 for op in grammar.operators)
    counts = [grammar.n_leaves]
    for n in range(1, max_ops + 1):
        counts.append(n_unary * counts[n - 1] + n_binary * sum(counts[i] * counts[n - 1 - i] for i in range(n)))
    return counts


def vocabulary_bound(grammar: Grammar, p: int, q: int, max_ops: int) -> int:
    """Distinct pq-grams the labels allow: stems (j operator ancestors under p-1-j nulls, an anchor) × bases.

    A binary anchor's base is one of its a+q-1 windows over [null^(q-1), children, null^(q-1)];
    its children are leaves when the anchor's depth leaves it one operator (so an anchor
    under j operators has at most max_ops - j operators in its subtree).
    """
    n_ops, n_sym, n_leaves = len(grammar.operators), len(grammar.symbols), grammar.n_leaves
    total = 0
    for j in range(min(p - 1, max_ops) + 1):  # operator ancestors in the stem; j = p-1 also stands for deeper nodes
        bases = n_leaves  # a leaf's base is all nulls
        budget = max_ops - j  # operators the anchor's subtree may hold
        if budget >= 1:
            labels = n_sym if budget >= 2 else n_leaves
            bases += sum((op.arity + q - 1) * labels ** min(op.arity, q) for op in grammar.operators)
        total += n_ops**j * bases
    return total


def estimate(grammar: Grammar, max_ops: int, p: int = P, q: int = Q, k_syn: int = K_SYN, k_sem: int = K_SEM) -> dict[str, int]:
    """Estimated peak bytes of each stage of a build (see the module docstring)."""
    counts = level_counts(grammar, max_ops)
    n, g = sum(counts), grammar.n_points
    below = n - counts[-1]
    dag = 12 * n  # symbol int16, left/right int32, n_ops/depth int8
    # pq-gram rows: a program with k operators has at most k + 1 leaves and k inner nodes.
    rows = sum(c * (2 * (k + 1) + q * k - 1) for k, c in enumerate(counts))
    vocab = min(rows, vocabulary_bound(grammar, p, q, max_ops))
    sample = min(1.0, FIT_ROWS / max(n, 1))
    return {
        "enumerate": dag,
        # function ids and triples (~64 B/program), outputs of at most one function per
        # program, exact rows of the lower levels, a chunk's value matrices and temporaries
        "evaluate": dag + 64 * n + 8 * n * g + 24 * below * g + 10 * 24 * min(CHUNK_ROWS, counts[-1]) * g,
        "pq-grams": dag + 10 * rows,
        # profiles and the weighted matrix side by side, the dense gram matrix (three
        # V×V float64 arrays while it is centred), the float64 sample, the coordinates
        "embed": 18 * rows + 8 * n + 24 * vocab**2 + int(12 * rows * sample) + 4 * k_syn * n + 16 * n,
        # the manifold rows the split queries scan (DuckDB spills past its own limit)
        "splits": n * (4 * (k_syn + k_sem) + 48),
    }


def check_memory(grammar: Grammar, max_ops: int, budget: int | None = None, **params) -> dict[str, int]:
    """Refuse, before any work, a build whose estimated peak exceeds ``budget`` (default: this machine's memory)."""
    budget = budget or machine_memory()
    stages = estimate(grammar, max_ops, **params)
    if max(stages.values()) <= budget:
        return stages
    fits = next((m for m in range(max_ops - 1, -1, -1) if max(estimate(grammar, m, **params).values()) <= budget), None)
    table = ", ".join(f"{name} {size / GIB:,.1f} GiB" for name, size in stages.items())
    worst = max(stages, key=stages.get)
    fix = (f"Use --max-ops {fits} or less" if fits is not None else "Even --max-ops 0 does not fit") + \
        " (or a grammar with fewer operators, or p, q smaller)"
    raise GensynthError(
        f"Building grammar '{grammar.name}' with --max-ops {max_ops} needs an estimated {stages[worst] / GIB:,.1f} GiB in the "
        f"{worst} stage, more than this machine's {budget / GIB:,.1f} GiB (estimates, upper bounds: {table}). {fix}. "
        f"Nothing was written.")
