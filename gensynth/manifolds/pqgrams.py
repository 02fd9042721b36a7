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
the root's own grams followed by its children's code rows under the shifted context.
A level is a few *blocks*, one operator applied to every (left, right) pair of two lower
levels, left-major (``enumerate_programs``' layout), so a block's rows are numpy
broadcasts — the left children's rows down, the right children's across — never a walk
over millions of trees. The top level, nearly all the programs, is never stored as
codes: the vocabulary (every code of the lower levels' rows and of the top's root
grams) is known before it, so its rows are built in chunks directly as dense gram ids,
sorted, and run-length encoded into (gram, count) straight into the output arrays.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass

import numpy as np

from gensynth.universe.programs import ProgramDag
from gensynth.errors import GensynthError
from gensynth.universe.grammar import Grammar

# Top-level programs per chunk. A chunk's gram-id matrix (8192 × ~21 int16) and its
# temporaries stay in cache and in memory malloc reuses; the ~1,400 chunks of the 4-op
# universe cost well under 0.1 s of Python overhead.
CHUNK_PROGRAMS = 8_192


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
    dtype = np.int32 if base ** (p + q) < 2**31 else np.int64
    top = len(dag.level_start) - 2
    root_ctx = (null,) * (p - 1)  # a whole program's root has only null ancestors
    blocks = [[]] + [_blocks(dag, n) for n in range(1, top + 1)]

    # Below the top (a few percent of the programs): code rows, -1 padded, under the
    # contexts each level is needed in. codes[n][ctx]: (programs of level n, width).
    codes: list[dict[tuple, np.ndarray]] = []
    for n, contexts in enumerate(_needed_contexts(blocks, root_ctx)[:top]):
        codes.append({ctx: _level_codes(grammar, dag, blocks[n], codes, n, ctx, p, q, dtype) for ctx in contexts})
    own = [codes[n][root_ctx] for n in range(top)]  # profiles of the programs below the top
    if top == 0:
        own = [_level_codes(grammar, dag, [], codes, 0, root_ctx, p, q, dtype)]
    top_blocks = blocks[top] if top > 0 else []
    roots = [_root_table(grammar, dag, b, root_ctx, p, q) for b in top_blocks]
    kids = sorted({(k, _child_ctx(root_ctx, b.symbol)) for b in top_blocks for k in b.child_levels})

    # Every code that occurs is in own, kids or roots (each top block pairs all of its
    # child levels), so the dense ids are known before any top-level row is built.
    vocab = _vocabulary(own + [codes[k][c] for k, c in kids] + [t[t >= 0] for t in roots], base ** (p + q))
    gdt = np.int16 if len(vocab) < np.iinfo(np.int16).max else np.int32
    pad = int(np.iinfo(gdt).max)  # the id of -1 padding: sorts after every gram id
    ids = _gram_ids(vocab, base ** (p + q), gdt)
    kid_ids = {key: ids(codes[key[0]][key[1]]) for key in kids}
    del codes
    # One output row per gram occurrence at most: Σ profile sizes.
    size = sum(int(np.count_nonzero(r >= 0)) for r in own)
    for b, t in zip(top_blocks, roots):
        ctx = _child_ctx(root_ctx, b.symbol)
        size += b.n_left * b.n_right * t.shape[-1]
        for axis, k in enumerate(b.child_levels):
            size += (b.n_right, b.n_left)[axis] * int(np.count_nonzero(kid_ids[k, ctx] != pad))
    out = _Bags(size, pad)
    for n, r in enumerate(own):
        rows = ids(r)
        rows.sort(axis=1)
        out.append(rows, int(dag.level_start[n]))
    for b, t in zip(top_blocks, roots):
        ctx = _child_ctx(root_ctx, b.symbol)
        _append_top_block(out, b, ids(t), _child_symbols(dag, b), [kid_ids[k, ctx] for k in b.child_levels])
    return Profiles(out.program_id[: out.end], out.gram_id[: out.end], out.n[: out.end], vocab, p, q, n_sym)


@dataclass
class _Block:
    """Programs ``start`` .. ``start + n_left * n_right``: ``symbol`` over every child tuple
    of the levels ``child_levels`` (left, right; one level for a unary operator, n_right 1),
    left-major."""

    start: int
    symbol: int
    child_levels: tuple[int, ...]
    n_left: int
    n_right: int


def _blocks(dag: ProgramDag, n: int) -> list[_Block]:
    """Level n (>= 1) as blocks, each checked against the DAG (a few passes of compares)."""
    ls = dag.level_start
    pos, end = int(ls[n]), int(ls[n + 1])
    blocks = []
    while pos < end:
        s = int(dag.symbol[pos])
        first = [int(c) for c in (dag.left[pos], dag.right[pos]) if c >= 0]  # the block's first child ids
        levels = tuple(int(np.searchsorted(ls, c, side="right")) - 1 for c in first)
        kids = [np.arange(ls[k], ls[k + 1]) for k in levels]  # every id of each child level
        grid = (len(kids[0]), len(kids[1]) if len(kids) == 2 else 1) if kids else (0, 0)
        blk = slice(pos, pos + grid[0] * grid[1])
        ok = bool(kids) and [k[0] for k in kids] == first and blk.stop <= end
        if ok:
            right = kids[1][None, :] if len(kids) == 2 else -1
            ok = bool((dag.symbol[blk] == s).all() and (dag.left[blk].reshape(grid) == kids[0][:, None]).all()
                      and (dag.right[blk].reshape(grid) == right).all())
        if not ok:
            raise GensynthError(
                f"Programs from id {pos} are not an operator over every child pair in enumeration order, so the "
                f"program DAG was not laid out by gensynth.universe.programs; rebuild the warehouse with `gensynth build`.")
        blocks.append(_Block(pos, s, levels, *grid))
        pos = blk.stop
    return blocks


def _child_ctx(ctx: tuple, symbol: int) -> tuple:
    """The context of a node's children: its own context shifted by its label."""
    return (ctx + (symbol,))[1:]


def _needed_contexts(blocks: list[list[_Block]], root_ctx: tuple) -> list[list[tuple]]:
    """Per level, the contexts its rows are needed under: its own profiles' and its parents' children's."""
    need = [{root_ctx} for _ in blocks]
    for m in range(len(blocks) - 1, 0, -1):  # parents come after children: need[m] is complete here
        for b in blocks[m]:
            for ctx in need[m]:
                for k in b.child_levels:
                    need[k].add(_child_ctx(ctx, b.symbol))
    return [sorted(s) for s in need]


def _child_symbols(dag: ProgramDag, b: _Block) -> list[np.ndarray]:
    """Root symbols of the block's left children and right children (one 0 for unary)."""
    syms = [dag.symbol[dag.level(k)] for k in b.child_levels]
    return syms + [np.zeros(1, np.int16)] * (2 - len(syms))


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


def _root_table(grammar: Grammar, dag: ProgramDag, b: _Block, ctx: tuple, p: int, q: int) -> np.ndarray:
    """(symbols, symbols or 1, windows) codes of a block's root grams under ``ctx`` by
    (left, right) child root symbol; -1 for symbol pairs no child pair has."""
    null = len(grammar.symbols)
    left, right = (np.unique(s).astype(np.int64) for s in _child_symbols(dag, b))
    sa, sb = (x.ravel() for x in np.meshgrid(left, right, indexing="ij"))
    codes = _root_codes(ctx, np.full(len(sa), b.symbol), [sa, sb][: len(b.child_levels)], p, q, null)
    table = np.full((null, null if len(b.child_levels) == 2 else 1, codes.shape[1]), -1, np.int64)
    table[sa, sb] = codes
    return table


def _fill(grid: np.ndarray, table: np.ndarray, syms: list[np.ndarray], rows: list[np.ndarray]) -> None:
    """Write the rows of a (left, right) grid of programs into ``grid`` (n_left, n_right, width):
    root grams looked up by child symbols, then the left child's row (the same along a grid
    row), then the right child's (the same along a grid column); later columns are untouched."""
    col = table.shape[-1]
    grid[:, :, :col] = table[syms[0][:, None], syms[1][None, :]]
    for axis, r in enumerate(rows):
        grid[:, :, col : col + r.shape[1]] = r[:, None, :] if axis == 0 else r[None, :, :]
        col += r.shape[1]


def _level_codes(grammar: Grammar, dag: ProgramDag, blocks: list[_Block], codes: list[dict[tuple, np.ndarray]],
                 n: int, ctx: tuple, p: int, q: int, dtype) -> np.ndarray:
    """Code rows (programs of level n, width), -1 padded, under context ``ctx``."""
    if n == 0:
        return _root_codes(ctx, dag.symbol[dag.level(0)], [], p, q, len(grammar.symbols)).astype(dtype)
    parts = [(b, _root_table(grammar, dag, b, ctx, p, q).astype(dtype),
              [codes[k][_child_ctx(ctx, b.symbol)] for k in b.child_levels]) for b in blocks]
    width = max((t.shape[-1] + sum(r.shape[1] for r in rows) for _, t, rows in parts), default=1)
    level = dag.level(n)
    out = np.full((level.stop - level.start, width), -1, dtype)
    for b, t, rows in parts:
        lo = b.start - level.start
        _fill(out[lo : lo + b.n_left * b.n_right].reshape(b.n_left, b.n_right, width), t, _child_symbols(dag, b), rows)
    return out


def _vocabulary(arrays: list[np.ndarray], code_space: int) -> np.ndarray:
    """Sorted distinct codes in ``arrays``, -1 padding aside."""
    if code_space <= 2**26:  # marking a table beats sorting the codes
        present = np.zeros(code_space + 1, bool)  # the extra last slot takes the -1 padding
        for a in arrays:
            present[a] = True
        return np.flatnonzero(present[:-1]).astype(np.int64)
    vocab = np.unique(np.concatenate([a.ravel() for a in arrays]))
    return vocab[vocab >= 0].astype(np.int64)


def _gram_ids(vocab: np.ndarray, code_space: int, dtype):
    """Function from code arrays to gram ids (index in ``vocab``) of ``dtype``; -1 padding to the dtype's max."""
    pad = np.iinfo(dtype).max
    if code_space <= 2**26:
        lut = np.full(code_space + 1, pad, dtype)  # code -1 reads the last slot
        lut[vocab] = np.arange(len(vocab))
        return lambda codes: lut[codes]
    return lambda codes: np.where(codes >= 0, np.searchsorted(vocab, codes), pad).astype(dtype)


def _fresh(size: int, dtype) -> np.ndarray:
    """An uninitialised array in its own private anonymous memory map (4 KiB pages).

    numpy advises transparent huge pages for arrays of 4 MiB and more. On the 2-core VMs
    gensynth is benchmarked on, the first write of 2.3 GB (the output size of the 4-op
    universe) took 5.5-9.6 s into numpy's memory and 1.2-2.3 s into 4 KiB pages.
    """
    dtype = np.dtype(dtype)
    if not hasattr(mmap, "MAP_PRIVATE"):  # Windows: no flags to choose
        return np.empty(size, dtype)
    memory = mmap.mmap(-1, max(size, 1) * dtype.itemsize, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(memory, dtype, count=size)


class _Bags:
    """The output arrays, filled in program order from sorted gram-id rows."""

    def __init__(self, size: int, pad: int):
        # Sized for every gram occurrence; the pages past the distinct grams are never touched.
        self.program_id = _fresh(size, np.int32)
        self.gram_id = _fresh(size, np.int32)
        self.n = _fresh(size, np.int16)
        self.end = 0
        self.pad = pad
        self._index: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def append(self, rows: np.ndarray, first_id: int) -> None:
        """Append the bags of programs first_id, first_id + 1, ...: their rows, sorted, padding last."""
        for lo in range(0, len(rows), CHUNK_PROGRAMS):
            self._append(rows[lo : lo + CHUNK_PROGRAMS], first_id + lo)

    def _append(self, rows: np.ndarray, first_id: int) -> None:
        c, w = rows.shape
        cells = c * w
        if w not in self._index:  # each cell's column (and column + 1) and row in a (CHUNK_PROGRAMS, w) chunk
            col = np.broadcast_to(np.arange(w, dtype=np.int16 if w < 2**15 else np.int32), (CHUNK_PROGRAMS, w)).ravel()
            row = np.broadcast_to(np.arange(CHUNK_PROGRAMS, dtype=np.int32)[:, None], (CHUNK_PROGRAMS, w)).ravel()
            self._index[w] = (col, col + 1, row)
        col, col1, row = (x[:cells] for x in self._index[w])
        flat = rows.reshape(-1)
        bounds = np.empty(cells + 1, bool)  # bounds[i]: cell i begins a run of equal ids (cell `cells`: none)
        np.not_equal(flat[1:], flat[:-1], out=bounds[1:cells])
        bounds[:cells:w] = True  # every row begins a run
        bounds[cells] = True
        start, end = bounds[:-1], bounds[1:]  # a run ends where the next begins
        if rows[:, -1].max(initial=0) == self.pad:  # padding sorts last and is not a gram
            real = flat != self.pad
            start, end = start & real, end & real
        gram = flat[start]
        out = slice(self.end, self.end + len(gram))
        self.gram_id[out] = gram
        np.subtract(col1[end], col[start], out=self.n[out], casting="unsafe")
        np.add(row[start], first_id, out=self.program_id[out])
        self.end = out.stop


def _append_top_block(out: _Bags, b: _Block, table: np.ndarray, syms: list[np.ndarray], rows: list[np.ndarray]) -> None:
    """Append a top-level block's bags, in chunks of whole grid rows (or of part of one)."""
    width = table.shape[-1] + sum(r.shape[1] for r in rows)
    a_step, b_step = (CHUNK_PROGRAMS // b.n_right, b.n_right) if b.n_right <= CHUNK_PROGRAMS else (1, CHUNK_PROGRAMS)
    for a0 in range(0, b.n_left, a_step):
        a1 = min(a0 + a_step, b.n_left)
        for b0 in range(0, b.n_right, b_step):
            b1 = min(b0 + b_step, b.n_right)
            grid = np.empty((a1 - a0, b1 - b0, width), table.dtype)
            _fill(grid, table, [syms[0][a0:a1], syms[1][b0:b1]], [rows[0][a0:a1]] + [r[b0:b1] for r in rows[1:]])
            flat = grid.reshape(-1, width)
            flat.sort(axis=1)
            out.append(flat, b.start + a0 * b.n_right + b0)


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


def pair_distances(profiles: Profiles, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pq-gram distances of program pairs (a[i], b[i]) from computed profiles: (TODS 2010, VLDB 2005).

    TODS: (|P(a) ⊎ P(b)| − 2|P(a) ∩ P(b)|) / (|P(a) ⊎ P(b)| − |P(a) ∩ P(b)|), a metric in [0, 1];
    VLDB: 1 − 2|P(a) ∩ P(b)| / |P(a) ⊎ P(b)|. The same definitions as the SQL macros
    ``pqgram_distance`` / ``pqgram_distance_vldb``, vectorised over sparse rows.
    """
    import scipy.sparse as sp

    starts = np.searchsorted(profiles.program_id, np.arange(int(profiles.program_id[-1]) + 2))  # (N + 1,) row bounds

    def rows(ids: np.ndarray):
        """Sparse count rows of the given programs, gathered without building the whole matrix."""
        ids = np.asarray(ids, np.int64)
        lo, hi = starts[ids], starts[ids + 1]
        indptr = np.concatenate([[0], np.cumsum(hi - lo)])
        take = np.repeat(lo - indptr[:-1], hi - lo) + np.arange(indptr[-1])
        return sp.csr_matrix((profiles.n[take].astype(np.float64), profiles.gram_id[take], indptr),
                             shape=(len(ids), len(profiles.vocab_codes)))

    xa, xb = rows(a), rows(b)
    inter = np.asarray(xa.minimum(xb).sum(axis=1)).ravel()
    union = np.asarray(xa.sum(axis=1)).ravel() + np.asarray(xb.sum(axis=1)).ravel()
    return (union - 2 * inter) / (union - inter), 1 - 2 * inter / union
