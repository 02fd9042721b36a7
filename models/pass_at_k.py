"""Unbiased pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code").

Draw n samples per task, count the c that are correct; then

    pass@k = 1 - C(n - c, k) / C(n, k)

is the probability that at least one of k samples drawn without replacement from the
n is correct, an unbiased estimate of pass@k for the model. The binomials overflow
for large n, so, as in the paper, the ratio is computed as a product:

    C(n - c, k) / C(n, k) = prod_{i = n - c + 1}^{n} (1 - k / i)

(here summed in log space with log1p, which keeps it accurate when k / i is small).
"""

from __future__ import annotations

import numpy as np

from models.errors import ModelError


def pass_at_k(n, c, k):
    """Unbiased pass@k for n samples of which c are correct; float, or array if any input is one.

    n, c and k broadcast against each other (numpy rules), so per-task arrays of n and c
    with one k give per-task estimates; average them for the benchmark's pass@k.

    >>> pass_at_k(5, 2, 1), pass_at_k(5, 2, 2)
    (0.4, 0.7)
    """
    scalar = all(np.ndim(a) == 0 for a in (n, c, k))
    n, c, k = np.broadcast_arrays(*(_as_int_array(a, name) for a, name in ((n, "n"), (c, "c"), (k, "k"))))
    _check(n, c, k)

    # When fewer than k samples are wrong, every draw of k holds a correct one.
    certain = n - c < k
    # The product runs over c factors, i = n - c + 1 .. n; lay them out along a last
    # axis of length max(c), masking the unused tail of rows with fewer correct samples.
    width = int(c.max(initial=0))
    j = np.arange(width)  # (W,)
    i = (n - c + 1)[..., None] + j  # (..., W)
    used = (j < c[..., None]) & ~certain[..., None]
    # np.where evaluates both branches: give masked slots a harmless i so log1p sees no -inf.
    safe_i = np.where(used, i, k[..., None] + 1).astype(np.float64)
    log_terms = np.where(used, np.log1p(-k[..., None] / safe_i), 0.0)  # (..., W)
    result = np.where(certain, 1.0, 1.0 - np.exp(log_terms.sum(axis=-1)))
    return float(result) if scalar else result


def _as_int_array(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or (np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)))):
        raise ModelError(f"pass_at_k: {name} must be whole numbers, got {a!r}")
    return arr.astype(np.int64)


def _check(n: np.ndarray, c: np.ndarray, k: np.ndarray):
    # Report every kind of problem at once, with the first offending values of each.
    problems = []
    for bad, what in (
        (n < 0, "n (samples) must be >= 0"),
        (c < 0, "c (correct samples) must be >= 0"),
        (k < 1, "k must be >= 1"),
        (c > n, "c (correct samples) must be <= n (samples)"),
        (k > n, "k must be <= n (draw at least k samples per task)"),
    ):
        if bad.any():
            idx = np.argwhere(bad)[:3]
            examples = ", ".join(f"n={n[tuple(t)]}, c={c[tuple(t)]}, k={k[tuple(t)]}" for t in idx)
            problems.append(f"{what}; got {examples}")
    if problems:
        raise ModelError("pass_at_k: " + "; ".join(problems))
