"""The seeded sign-and-fold sketch, in numpy: the reference that ``probes.capture`` matches.

Layout. The fold width ``p`` is the largest prime ``<= k`` that divides no dimension of any
parameter (``fold_width``). Modules are laid out one after another in a flat vector, each
padded with zeros to a multiple of ``p``; module ``m`` starts at ``offsets[m]``. Coordinate
``j`` of the flat vector (a global offset) gets the sign ``sign(seed, j)`` and goes to bucket
``j mod p`` of its module's sketch; the stored sketch has ``k`` coordinates, the last ``k - p``
zero. A module with at most ``k`` parameters is stored exactly (zero-padded to ``k``); the
exact modules sit after all the folded ones in the flat vector, one row of ``k`` each.

Why a prime that divides no dimension: a weight ``[out, in]`` is flattened row by row, so
element ``(o, i)`` lands in bucket ``(o * in + i) mod p``. Were ``p`` to divide ``in`` (a fold
of 1024 on Medium's 1024-wide rows), every row would put column ``i`` in the same bucket, and
a few outlier input features (which trained transformers have) would pile their energy into a
few buckets: the variance below then runs far past its dense-gradient bound (69x was measured).
With ``p`` coprime to every row length, each column spreads over ``min(out, p)`` buckets.

Guarantee. Over the random signs, ``<S a, S b>`` is an unbiased estimate of ``<a, b>`` with

    Var = sum_b [ A_b B_b + (a_b . b_b)^2 - 2 sum_{i in b} a_i^2 b_i^2 ]  <=  2 sum_b A_b B_b

where ``a_b`` is ``a`` restricted to bucket ``b`` and ``A_b = |a_b|^2``. When the energy of both
vectors is spread over the buckets (``A_b ~ |a|^2 / k``, true of dense gradients) the standard
deviation of the cosine estimate is at most ``sqrt(2 / k)``; ``docs/methods.md`` states it and
``tests/test_sketch.py`` checks it on real captured gradients.

The sign hash is murmur3's 32-bit finaliser of ``j * 0x9E3779B1 + seed`` (mod 2^32), sign from
its top bit: integer arithmetic that torch computes identically on CPU and GPU.
"""

from __future__ import annotations

import numpy as np

MASK32 = 0xFFFFFFFF
GOLDEN = 0x9E3779B1
M1 = 0x85EBCA6B
M2 = 0xC2B2AE35


def signs(seed: int, start: int, count: int) -> np.ndarray:
    """Signs (+1/-1, int8) of the flat coordinates ``start .. start+count-1``."""
    x = (np.arange(start, start + count, dtype=np.uint64) * np.uint64(GOLDEN) + np.uint64(seed & MASK32))
    x &= np.uint64(MASK32)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(M1)) & np.uint64(MASK32)
    x ^= x >> np.uint64(13)
    x = (x * np.uint64(M2)) & np.uint64(MASK32)
    x ^= x >> np.uint64(16)
    return (1 - 2 * ((x >> np.uint64(31)) & np.uint64(1))).astype(np.int8)


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n ** 0.5) + 1))


def fold_width(k: int, dims=()) -> int:
    """The largest prime ``p <= k`` that divides none of ``dims`` (parameter dimension sizes);
    ``k`` itself when ``k < 2``."""
    sizes = {int(d) for d in dims if int(d) > 1}
    for p in range(k, 1, -1):
        if _is_prime(p) and not any(d % p == 0 for d in sizes):
            return p
    return k


def padded(n_params: int, k: int) -> int:
    """Length of a module of ``n_params`` in the flat layout (a multiple of ``k``)."""
    return -(-n_params // k) * k


def offsets(n_params: list[int] | np.ndarray, k: int, fold: int | None = None) -> np.ndarray:
    """Start of each module in the flat layout, shape ``[M]``: the folded modules (more than
    ``k`` parameters) first, each padded to a multiple of ``fold`` (default ``k``), in model
    order; then the exact ones, one row of ``k`` each."""
    p = k if fold is None else fold
    n = np.asarray(n_params, dtype=np.int64)
    size = np.where(n > k, -(-n // p) * p, k)
    order = np.concatenate([np.flatnonzero(n > k), np.flatnonzero(n <= k)])
    starts = np.zeros(len(n), dtype=np.int64)
    starts[order] = np.concatenate([[0], np.cumsum(size[order])[:-1]]) if len(n) else []
    return starts


def sketch_module(grad: np.ndarray, k: int, seed: int, offset: int,
                  fold: int | None = None) -> np.ndarray:
    """Sketch of one module's flattened gradient ``grad`` (shape ``[n]``) starting at ``offset``.

    Returns shape ``[k]``: the gradient itself zero-padded when ``n <= k``, else the signed
    fold into rows of ``fold`` (default ``k``), zero-padded to ``k``.
    """
    p = k if fold is None else fold
    grad = np.asarray(grad, dtype=np.float64).ravel()
    n = grad.size
    out = np.zeros(k)
    if n <= k:
        out[:n] = grad
        return out
    flat = np.zeros(padded(n, p))
    flat[:n] = grad * signs(seed, offset, n)
    out[:p] = flat.reshape(-1, p).sum(axis=0)
    return out


def inner_product_variance(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Exact variance of ``<S a, S b>`` over the signs, for modules larger than ``k``."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    n = padded(a.size, k)
    ra = np.zeros(n); ra[: a.size] = a
    rb = np.zeros(n); rb[: b.size] = b
    ra, rb = ra.reshape(-1, k), rb.reshape(-1, k)  # rows of k: bucket b is column b
    big_a, big_b = (ra**2).sum(0), (rb**2).sum(0)
    dot = (ra * rb).sum(0)
    diag = (ra**2 * rb**2).sum(0)
    return float((big_a * big_b + dot**2 - 2 * diag).sum())
