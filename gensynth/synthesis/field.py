"""Arithmetic of value rows modulo a prime: the search's fast lane.

Exact rationals are reduced modulo P = 2**31 - 1: ``n/d`` becomes ``n * d^-1 mod P``.
This is a ring homomorphism wherever the denominators are units, so + - * / of rationals
map to + - * / of residues: two equal rationals always have equal residues, and the
search can evaluate, invert and compare value rows with int64 arithmetic and no gcd
(30-50x faster than the exact lane of ``gensynth.universe.rational``). Residues are only
a filter: every program the search returns is re-evaluated exactly and compared cell by
cell with the target, so a coincidence of residues can cost time, never a wrong answer.

A value row's *key* is its image under random linear forms over the field,
``key_l(v) = sum_j w_lj v_j mod P`` (``FORMS`` forms, fixed seed). Keys are linear, so
the key of ``t - a`` is ``key(t) - key(a)`` and the keys of ``t * a^-1`` for a whole bank
of ``a`` are one matrix product; a cell left out of the forms (weight 0) is a cell the
comparison does not care about. Distinct residue rows share all keys with probability
P^-FORMS (~1e-28 for 3 forms); equal rationals never differ.

Undefined cells (an exact division by zero, where den == 0) are ``UNDEF`` (= P, not a
residue); an operator applied to UNDEF gives UNDEF, and so does division by residue 0.
A rational whose denominator is a multiple of P has no residue; it is also UNDEF here
(never produced by the grammars' small constants and grids; the exact check catches it).
"""

from __future__ import annotations

import numpy as np

from gensynth.universe.rational import Values

P = np.int64(2**31 - 1)
UNDEF = P  # marks an undefined cell; never a residue
FORMS = 3  # independent linear forms per key
FIELD_OPS = frozenset({"add", "subtract", "multiply", "divide", "true_divide", "negative"})
_RNG_SEED = 0x5EED_F1E1D


def is_field_grammar(grammar) -> bool:
    """Whether every operator of the grammar is a field operation the residue lane handles."""
    return all(op.numpy in FIELD_OPS for op in grammar.operators)


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a * b mod P for residues in [0, P)."""
    return (a * b) % P


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    s = a + b
    return np.where(s >= P, s - P, s)


def sub(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    s = a - b
    return np.where(s < 0, s + P, s)


def inverse(x: np.ndarray) -> np.ndarray:
    """Elementwise inverse mod P of residues (0 and UNDEF map to 0): a product tree, ~3 products per cell.

    Products of pairs are formed level by level up to one root, the root is inverted by
    Fermat's little theorem, and inverses are pushed back down: inv(a) = inv(a*b) * b.
    """
    flat = np.where((x == 0) | (x >= P), 1, x).ravel().astype(np.int64)
    levels = [flat]
    while len(levels[-1]) > 1:
        a = levels[-1]
        if len(a) % 2:
            a = np.append(a, 1)
        levels.append(mul(a[0::2], a[1::2]))
    inv = np.array([pow(int(levels[-1][0]), int(P) - 2, int(P))], np.int64)
    for a in reversed(levels[:-1]):
        n = len(a)
        if n % 2:
            a = np.append(a, 1)
        out = np.empty(len(a), np.int64)
        out[0::2] = mul(inv, a[1::2])
        out[1::2] = mul(inv, a[0::2])
        inv = out[:n]
    inv = inv.reshape(x.shape)
    return np.where((x == 0) | (x >= P), 0, inv)


def residues(values: Values) -> np.ndarray:
    """Residue rows (rows, points) int64 of exact value rows; UNDEF where undefined or not a residue."""
    num, den = values.num, values.den
    exact = den > 0
    d = np.where(exact, den % P, 1)
    n = np.where(exact, num % P, 0)
    out = mul(n, inverse(d))
    return np.where(exact & (d != 0), out, UNDEF)


def apply(name: str, a: np.ndarray, b: np.ndarray | None = None, b_inv: np.ndarray | None = None) -> np.ndarray:
    """op(a, b) on residue rows (b_inv: b's inverses, if already known); UNDEF propagates."""
    undefined = a >= P
    if name == "negative":
        return np.where(undefined, UNDEF, np.where(a == 0, 0, P - a))
    undefined = undefined | (b >= P)
    if name == "add":
        out = add(a, b)
    elif name == "subtract":
        out = sub(a, b)
    elif name == "multiply":
        out = mul(a, b)
    else:  # divide: undefined where b is 0
        undefined = undefined | (b == 0)
        out = mul(a, inverse(b) if b_inv is None else b_inv)
    return np.where(undefined, UNDEF, out)


class Forms:
    """FORMS random linear forms over the shown points: the keys of value rows."""

    def __init__(self, n_points: int, seed: int = _RNG_SEED) -> None:
        rng = np.random.default_rng(seed)
        self.w = rng.integers(1, int(P), size=(FORMS, n_points), dtype=np.int64)  # (L, G)
        self.wt = halves(self.w.T)  # (G, L), the right operand of dot

    def keys(self, rows: np.ndarray, care: np.ndarray | None = None) -> np.ndarray:
        """(n, FORMS) keys of residue rows (n, G) over the care cells only (care: (G,) or (n, G) bool)."""
        v = rows if care is None else np.where(care, rows, 0)
        return dot(v, self.wt)

    def weighted(self, rows: np.ndarray, care: np.ndarray) -> np.ndarray:
        """(n * FORMS, G): each row times each form cellwise, 0 off its care cells ((G,) or (n, G)).

        The keys of ``t * a`` for every row ``a`` of a matrix A are then ``dot(A, weighted(t).T)``.
        """
        care = np.broadcast_to(care, rows.shape)
        w = self.w[None, :, :] * care[:, None, :]  # (n, L, G)
        return mul(w, rows[:, None, :]).reshape(-1, rows.shape[1])


def halves(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A residue matrix as float64 (low 16 bits, high 15 bits): the right operand of ``dot``."""
    b = np.asarray(b, np.int64)
    return (b & 0xFFFF).astype(np.float64), (b >> 16).astype(np.float64)


INNER = 64  # a < 2^31 times b's low half < 2^16 is < 2^47; 64 such terms stay exact in float64


def dot(a: np.ndarray, b) -> np.ndarray:
    """Exact (a @ b) mod P of residue matrices (b may be given as its ``halves``): float64 BLAS.

    a = a, b = lo + 2^16 hi: two products whose terms are below 2^47, summed over at most
    64 terms at a time so every partial sum is an exact float64 integer.
    """
    lo, hi = b if isinstance(b, tuple) else halves(b)
    af = np.asarray(a).astype(np.float64)
    k = af.shape[1]
    out_lo = np.zeros((af.shape[0], lo.shape[1]), np.int64)
    out_hi = np.zeros_like(out_lo)
    for s in range(0, k, INNER):
        e = min(k, s + INNER)
        out_lo += _mod_f(af[:, s:e] @ lo[s:e])
        out_hi += _mod_f(af[:, s:e] @ hi[s:e])
    return (out_lo % P + mul(out_hi % P, np.int64(1 << 16))) % P


def _mod_f(x: np.ndarray) -> np.ndarray:
    return np.mod(x, float(P)).astype(np.int64)


def pack(keys: np.ndarray) -> np.ndarray:
    """The first two forms of (n, FORMS) keys in one int64 (< 2^62): what indexes are sorted by."""
    return keys[:, 0] * P + keys[:, 1]
