"""Reference pq-gram helpers for the tests: one program's bag from computed profiles, and
the two pq-gram distances of two bags written straight from their definitions."""

from __future__ import annotations

import collections

import numpy as np

from gensynth.manifolds.pqgrams import Profiles, decode
from gensynth.universe.grammar import Grammar


def bag_of(profiles: Profiles, grammar: Grammar, program_id: int) -> collections.Counter:
    """One program's bag from computed profiles, as (stem, base) label tuples."""
    lo, hi = np.searchsorted(profiles.program_id, [program_id, program_id + 1])
    labels = decode(profiles.vocab_codes[profiles.gram_id[lo:hi]], profiles.p, profiles.q, profiles.n_symbols)
    names = list(grammar.symbols) + [None]
    return collections.Counter({(tuple(names[x] for x in row[: profiles.p]), tuple(names[x] for x in row[profiles.p :])): int(n)
                                for row, n in zip(labels.tolist(), profiles.n[lo:hi])})


def tods_distance(a: collections.Counter, b: collections.Counter) -> float:
    """Normalised pq-gram distance (TODS 2010) of two bags: a metric in [0, 1]."""
    union = sum(a.values()) + sum(b.values())
    inter = sum((a & b).values())
    return (union - 2 * inter) / (union - inter)


def vldb_distance(a: collections.Counter, b: collections.Counter) -> float:
    """pq-gram distance of the VLDB 2005 paper: 1 − 2|a ∩ b| / |a ⊎ b| (not a metric)."""
    return 1 - 2 * sum((a & b).values()) / (sum(a.values()) + sum(b.values()))
