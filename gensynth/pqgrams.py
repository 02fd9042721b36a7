"""Stage 3a: the pq-gram profile of every program (Augsten, Böhlen & Gamper).

Writes ``pqgram_vocab(gram_id, stem, base)`` and ``pqgrams(program_id, gram_id, n)``.

Definitions (VLDB 2005; TODS 2010). The p,q-extended tree adds p-1 null ancestors above
the root, q-1 null children before the first and after the last child of every inner
node, and q null children under every leaf. A pq-gram is an anchor node with its p-1
ancestors (the *stem*, p labels ending with the anchor) and q consecutive children of
the anchor in the extended tree (the *base*). A program's profile is the bag of all its
pq-grams; its size is 2·leaves + q·inner − 1 whatever p is. Null nodes are NULL in
``stem``/``base``: no token can equal them (tokens are non-empty strings).

Vectorisation. A pq-gram is encoded as an integer: label t of the p+q labels (stem top
first, then base left to right) contributes ``label_t * B**t`` with B = symbols + 1 and
the null label = symbols. The grams of a subtree depend on the subtree and on its p-1
ancestors' labels (its *context*) only, so level by level each program's gram codes are
the root's own grams concatenated with its children's code rows under the shifted
context: numpy gathers over the DAG, never a walk over millions of trees. Each row is
then sorted and run-length encoded into (gram, count).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from gensynth.enumerate import ProgramDag
from gensynth.errors import GensynthError
from gensynth.grammar import Grammar

# Programs per chunk at the top level (bounds the code matrix at ~chunk * grams * 8 bytes).
CHUNK_PROGRAMS = 1_000_000


@dataclass
class Profiles:
    """Every program's pq-gram bag in long form, sorted by (program_id, gram_id)."""

    program_id: np.ndarray  # (E,) int32
    gram_id: np.ndarray  # (E,) int32
    n: np.ndarray  # (E,) int16: multiplicity of the gram in the program's profile
    vocab_codes: np.ndarray  # (V,) int64: gram code of each gram_id (sorted)
    p: int
    q: int
    n_symbols: int

    def stem_base(self, grammar: Grammar) -> tuple[list[list[str | None]], list[list[str | None]]]:
        """Stem and base labels of every vocabulary entry (None for null nodes)."""
        labels = decode(self.vocab_codes, self.p, self.q, self.n_symbols)
        names = list(grammar.symbols) + [None]
        stems = [[names[x] for x in row[: self.p]] for row in labels.tolist()]
        bases = [[names[x] for x in row[self.p :]] for row in labels.tolist()]
        return stems, bases


def decode(codes: np.ndarray, p: int, q: int, n_symbols: int) -> np.ndarray:
    """Label matrix (len(codes), p+q) of gram codes; label n_symbols means null."""
    base = n_symbols + 1
    return np.stack([(codes // base**t) % base for t in range(p + q)], axis=1)


def compute_profiles(grammar: Grammar, dag: ProgramDag, p: int = 2, q: int = 3) -> Profiles:
    """pq-gram profile of every program in ``dag``."""
    if p < 1 or q < 1:
        raise GensynthError(f"pq-grams need p >= 1 and q >= 1, got p={p}, q={q}. Use e.g. --p 2 --q 3.")
    n_sym = len(grammar.symbols)
    base = n_sym + 1
    if base ** (p + q) >= 2**62:
        raise GensynthError(f"p + q = {p + q} is too large to encode pq-grams of {n_sym} symbols in 64 bits; lower --p or --q.")
    null = n_sym
    dtype = np.int32 if base ** (p + q) < 2**31 else np.int64  # narrower codes sort faster
    max_ops = len(dag.level_start) - 2
    contexts = _contexts(grammar, p)
    # codes[k][ctx]: (programs of level k, width) code rows, -1 padded, under context ctx.
    codes: list[dict[tuple, np.ndarray]] = []
    parts = []
    for n in range(max_ops + 1):
        last = n == max_ops
        wanted = [tuple([null] * (p - 1))] if last else contexts
        if last:
            for lo in range(int(dag.level_start[n]), int(dag.level_start[n + 1]), CHUNK_PROGRAMS):
                hi = min(lo + CHUNK_PROGRAMS, int(dag.level_start[n + 1]))
                rows = _level_codes(grammar, dag, codes, n, wanted[0], p, q, slice(lo, hi), dtype)
                parts.append(_run_length(rows, lo))
        else:
            level = {ctx: _level_codes(grammar, dag, codes, n, ctx, p, q, dag.level(n), dtype) for ctx in wanted}
            codes.append(level)
            parts.append(_run_length(level[tuple([null] * (p - 1))], int(dag.level_start[n])))
    program_id = np.concatenate([x[0] for x in parts])
    gram_code = np.concatenate([x[1] for x in parts])
    n_arr = np.concatenate([x[2] for x in parts])
    vocab, gram_id = _dense_ids(gram_code, base ** (p + q))
    return Profiles(program_id, gram_id, n_arr, vocab, p, q, n_sym)


def _dense_ids(codes: np.ndarray, code_space: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct codes and each code's index among them (a lookup table when small)."""
    if code_space <= 2**26:  # a dense lookup table beats sorting hundreds of millions of codes
        present = np.zeros(code_space, bool)
        present[codes] = True
        vocab = np.flatnonzero(present)
        lut = np.full(code_space, -1, np.int32)
        lut[vocab] = np.arange(len(vocab), dtype=np.int32)
        return vocab.astype(np.int64), lut[codes]
    vocab, inverse = np.unique(codes, return_inverse=True)
    return vocab.astype(np.int64), inverse.astype(np.int32)


def _contexts(grammar: Grammar, p: int) -> list[tuple]:
    """Every ancestor-label context a subtree can have: null-padded chains of operators."""
    null = len(grammar.symbols)
    ops = list(range(grammar.n_leaves, len(grammar.symbols)))
    out = []
    for m in range(p):  # m real ancestors above the subtree, p-1-m nulls above them
        for chain in itertools.product(ops, repeat=m):
            out.append(tuple([null] * (p - 1 - m)) + chain)
    return out


def _stem_code(ctx: tuple, anchor: np.ndarray, base: int) -> np.ndarray:
    """Code contribution of the stem: ctx labels (top first) then the anchor label."""
    code = sum(int(c) * base**t for t, c in enumerate(ctx))
    return code + anchor.astype(np.int64) * base ** len(ctx)


def _root_codes(ctx: tuple, anchor: np.ndarray, kids: list[np.ndarray], p: int, q: int, null: int) -> np.ndarray:
    """(N, windows) codes of the grams anchored at each root: its stem with each q-window of children."""
    base = null + 1
    stem = _stem_code(ctx, anchor, base)
    n = len(anchor)
    if not kids:  # a leaf: q null children, one window
        window = sum(null * base ** (p + u) for u in range(q))
        return (stem + window)[:, None]
    pad = [np.full(n, null, np.int64)] * (q - 1)
    ext = pad + [k.astype(np.int64) for k in kids] + pad
    windows = []
    for w in range(len(kids) + q - 1):
        windows.append(stem + sum(ext[w + u] * base ** (p + u) for u in range(q)))
    return np.stack(windows, axis=1)


def _level_codes(grammar, dag, codes, n, ctx, p, q, block: slice, dtype) -> np.ndarray:
    """Code rows of the programs in ``block`` (all of level n) under context ``ctx``."""
    null = len(grammar.symbols)
    sym = dag.symbol[block]
    if n == 0:
        return _root_codes(ctx, sym, [], p, q, null).astype(dtype)
    left, right = dag.left[block], dag.right[block]
    out_rows, out_idx = [], []
    ids = np.arange(block.start, block.stop)
    # Group by (root symbol, left level, right level): within a group rows have equal width.
    lvl = np.searchsorted(dag.level_start, left, side="right") - 1
    rlvl = np.where(right >= 0, np.searchsorted(dag.level_start, np.maximum(right, 0), side="right") - 1, -1)
    key = (sym.astype(np.int64) * 64 + lvl) * 64 + (rlvl + 1)
    for k in np.unique(key):
        sel = np.nonzero(key == k)[0]
        s = int(sym[sel[0]])
        child_ctx = (ctx + (s,))[1:] if p > 1 else ()
        li = int(lvl[sel[0]])
        lrows = codes[li][child_ctx][left[sel] - dag.level_start[li]]
        kids = [dag.symbol[left[sel]]]
        parts = [lrows]
        ri = int(rlvl[sel[0]])
        if ri >= 0:
            parts.append(codes[ri][child_ctx][right[sel] - dag.level_start[ri]])
            kids.append(dag.symbol[right[sel]])
        root = _root_codes(ctx, sym[sel], kids, p, q, null)
        out_rows.append(np.concatenate([root] + parts, axis=1))
        out_idx.append(sel)
    width = max(r.shape[1] for r in out_rows)
    out = np.full((len(ids), width), -1, dtype)
    for rows, sel in zip(out_rows, out_idx):
        out[sel, : rows.shape[1]] = rows
    return out


def _run_length(rows: np.ndarray, first_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bag (program_id, code, count) of each code row; -1 padding is dropped."""
    s = np.sort(rows, axis=1)
    n, w = s.shape
    start = np.empty((n, w), bool)  # cell begins a run of equal codes
    start[:, 0] = True
    np.not_equal(s[:, 1:], s[:, :-1], out=start[:, 1:])
    # Column of the next run start to the right (or w): a reversed running minimum, so a
    # run's length is a subtraction in int8 instead of a search.
    col = np.where(start, np.arange(w, dtype=np.int16), np.int16(w))
    nxt = np.full_like(col, w)
    nxt[:, :-1] = np.minimum.accumulate(col[:, :0:-1], axis=1)[:, ::-1]
    length = (nxt - np.arange(w, dtype=np.int16)).astype(np.int16)
    start &= s >= 0  # padding (-1) sorts first and is not a gram
    program = np.repeat(np.arange(first_id, first_id + n, dtype=np.int32), np.count_nonzero(start, axis=1))
    return program, s[start], length[start]


def profile_sizes(profiles: Profiles, n_programs: int) -> np.ndarray:
    """|P(program)| for every program (sum of multiplicities)."""
    return np.bincount(profiles.program_id, weights=profiles.n, minlength=n_programs).astype(np.int64)


def write_pqgrams(con, grammar: Grammar, profiles: Profiles) -> None:
    """Write ``pqgram_vocab`` and ``pqgrams`` (ordered by program_id, gram_id)."""
    from gensynth.warehouse import run_sql

    run_sql(con, "embed/pqgram_tables.sql")
    con.register("vocab_cols", {"gram_id": np.arange(len(profiles.vocab_codes), dtype=np.int32), "code": profiles.vocab_codes})
    try:
        run_sql(con, "embed/pqgram_vocab.sql", {
            "p": profiles.p, "q": profiles.q, "base": profiles.n_symbols + 1, "labels": list(grammar.symbols) + [None]})
    finally:
        con.unregister("vocab_cols")
    con.register("pqgram_cols", {"program_id": profiles.program_id, "gram_id": profiles.gram_id, "n": profiles.n})
    try:
        con.execute("INSERT INTO pqgrams SELECT program_id, gram_id, n FROM pqgram_cols")
    finally:
        con.unregister("pqgram_cols")


def profile_tree(tree: tuple, grammar: Grammar, p: int = 2, q: int = 3) -> "collections.Counter":
    """Reference profiler: the pq-gram bag of one tree by direct recursion.

    Straightforward and slow (one Python call per node); used by the tests and as the
    benchmark's baseline. Grams are (stem, base) tuples of tokens, None for null nodes.
    """
    import collections

    bag: collections.Counter = collections.Counter()
    names = grammar.symbols

    def visit(node: tuple, ancestors: tuple) -> None:
        stem = ancestors + (names[node[0]],)
        kids = node[1:]
        if not kids:
            bag[(stem, (None,) * q)] += 1
            return
        ext = (None,) * (q - 1) + tuple(names[k[0]] for k in kids) + (None,) * (q - 1)
        for w in range(len(ext) - q + 1):
            bag[(stem, ext[w : w + q])] += 1
        for k in kids:
            visit(k, stem[1:])

    visit(tree, (None,) * (p - 1))
    return bag


def bag_of(profiles: Profiles, grammar: Grammar, program_id: int) -> "collections.Counter":
    """One program's bag from computed profiles, as (stem, base) label tuples."""
    import collections

    lo, hi = np.searchsorted(profiles.program_id, [program_id, program_id + 1])
    labels = decode(profiles.vocab_codes[profiles.gram_id[lo:hi]], profiles.p, profiles.q, profiles.n_symbols)
    names = list(grammar.symbols) + [None]
    return collections.Counter({(tuple(names[x] for x in row[: profiles.p]), tuple(names[x] for x in row[profiles.p :])): int(n)
                                for row, n in zip(labels.tolist(), profiles.n[lo:hi])})


def tods_distance(a: "collections.Counter", b: "collections.Counter") -> float:
    """Normalised pq-gram distance (TODS 2010) of two bags: a metric in [0, 1]."""
    union = sum(a.values()) + sum(b.values())
    inter = sum((a & b).values())
    return (union - 2 * inter) / (union - inter)


def vldb_distance(a: "collections.Counter", b: "collections.Counter") -> float:
    """pq-gram distance of the VLDB 2005 paper: 1 − 2|a ∩ b| / |a ⊎ b| (not a metric)."""
    return 1 - 2 * sum((a & b).values()) / (sum(a.values()) + sum(b.values()))
