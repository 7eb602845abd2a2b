"""The seeded sign-and-fold sketch, in numpy: the reference that ``probes.capture`` matches.

Layout. Modules are laid out one after another in a flat vector, each padded with zeros to a
multiple of ``k``; module ``m`` starts at ``offsets[m]``. Coordinate ``j`` of the flat vector
(a global offset) gets the sign ``sign(seed, j)`` and goes to bucket ``j mod k`` of its
module's sketch. A module with at most ``k`` parameters is stored exactly: sign +1, one row.

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


def padded(n_params: int, k: int) -> int:
    """Length of a module of ``n_params`` in the flat layout (a multiple of ``k``)."""
    return -(-n_params // k) * k


def offsets(n_params: list[int] | np.ndarray, k: int) -> np.ndarray:
    """Start of each module in the flat layout, shape ``[M]``."""
    sizes = [padded(int(n), k) for n in n_params]
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


def sketch_module(grad: np.ndarray, k: int, seed: int, offset: int) -> np.ndarray:
    """Sketch of one module's flattened gradient ``grad`` (shape ``[n]``) starting at ``offset``.

    Returns shape ``[k]``: the gradient itself zero-padded when ``n <= k``, else the signed fold.
    """
    grad = np.asarray(grad, dtype=np.float64).ravel()
    n = grad.size
    if n <= k:
        out = np.zeros(k)
        out[:n] = grad
        return out
    flat = np.zeros(padded(n, k))
    flat[:n] = grad * signs(seed, offset, n)
    return flat.reshape(-1, k).sum(axis=0)


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
