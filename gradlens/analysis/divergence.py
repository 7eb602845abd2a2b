"""Self/cross divergence (GDPS strategy 2) and module-level task conflict (MGCM).

Inputs are one unit's sketches ``[S, L, T, D]`` (steps, languages, tasks, sketch coordinates),
as ``gradlens.analysis.views.unit_sketches`` reads them. Pure numpy.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np



def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of ``[..., D]`` arrays (0 where either is zero)."""
    num = (a * b).sum(-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def _unit_rows(m: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm (a zero row stays zero)."""
    n = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(n > 0, n, 1.0)


@dataclass(frozen=True)
class Divergence:
    """Self and cross divergence of the languages for one unit and task, at one noise level.

    Each language's steps are split into odd and even halves, with mean gradients ``o_l`` and
    ``e_l``. ``cross`` ``[L, L]``: ``1 - (cos(o_a, e_b) + cos(e_a, o_b)) / 2``; its diagonal is
    the self divergence ``self_div`` ``[L]`` = ``1 - cos(o_l, e_l)``. Comparing half-means with
    half-means keeps the sampling noise of cross and self alike, so pure noise gives a ratio
    near 1. ``ratio``: mean off-diagonal cross over mean self; above 1 the languages want
    different updates beyond their own step-to-step noise, so the unit is a candidate for
    splitting.

    ``p_value``: a permutation test of that ratio. Under the null hypothesis the languages are
    exchangeable, so relabelling the even halves by a permutation ``pi`` (pairing ``o_a`` with
    ``e_pi(a)``) is as likely as the truth; ``p`` is the share of permutations whose matched
    pairs diverge as little as the true ones (exact enumeration when ``L!`` is small).
    """

    languages: list[str]
    self_div: np.ndarray
    cross: np.ndarray
    ratio: float
    p_value: float


def _permutations(L: int, count: int, seed: int) -> tuple[np.ndarray, bool]:
    """``[P, L]`` permutations and whether they are all of them (when ``L!`` <= ``count``);
    else ``count`` drawn at random."""
    if math.factorial(L) <= count:
        return np.array(list(itertools.permutations(range(L)))), True
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((count, L)), axis=1), False


def language_divergence(sketches: np.ndarray, languages: list[str], task: int = 0,
                        permutations: int = 999, seed: int = 0) -> Divergence:
    """Self/cross divergence of ``sketches[:, :, task]`` (needs at least two steps)."""
    x = np.asarray(sketches, dtype=np.float64)[:, :, task]  # [S, L, D]
    if x.shape[0] < 2:
        raise ValueError(f"self divergence needs at least 2 steps, the run has {x.shape[0]}")
    odd, even = x[0::2].mean(0), x[1::2].mean(0)            # [L, D] each
    div = 1.0 - _unit_rows(odd) @ _unit_rows(even).T        # [L, L]: 1 - cos(o_a, e_b)
    cross = (div + div.T) / 2
    self_div = np.diag(cross).copy()
    L = cross.shape[0]
    off = cross[~np.eye(L, dtype=bool)].mean() if L > 1 else 0.0
    ratio = float(off / max(self_div.mean(), 1e-12))
    p = 1.0
    if L > 1:
        perms, exact = _permutations(L, permutations, seed)
        matched = div[np.arange(L), perms].mean(1)          # [P]: mean of d(o_a, e_pi(a))
        hits = int((matched <= self_div.mean() + 1e-12).sum())
        # exact: the identity is among the permutations; sampled: count the truth once more
        p = hits / len(perms) if exact else (1 + hits) / (1 + len(perms))
    return Divergence(list(languages), self_div, cross, ratio, float(p))


@dataclass(frozen=True)
class Conflict:
    """Primary/auxiliary task cosines of one unit.

    ``cosine`` ``[S, L]``: cos(g_primary, g_aux) per step and language; ``rate``: the fraction
    of those below zero (where MGCM projects the auxiliary gradient).
    """

    languages: list[str]
    cosine: np.ndarray
    rate: float
    rate_by_language: np.ndarray

    @property
    def mean_cosine(self) -> np.ndarray:
        """``[S]``: the cosine per step, averaged over the languages."""
        return self.cosine.mean(axis=1)


def task_conflict(sketches: np.ndarray, languages: list[str], primary: int = 0, aux: int = 1) -> Conflict:
    """Conflict between task ``primary`` (ST) and ``aux`` (ASR) in ``sketches [S, L, T, D]``."""
    x = np.asarray(sketches, dtype=np.float64)
    if x.shape[2] <= max(primary, aux):
        raise ValueError(f"the run has {x.shape[2]} task(s); conflict needs tasks {primary} and {aux}")
    cos = _cos(x[:, :, primary], x[:, :, aux])  # [S, L]
    neg = cos < 0
    return Conflict(list(languages), cos, float(neg.mean()), neg.mean(axis=0))


@dataclass(frozen=True)
class TaskDivergence:
    """Cross-task divergence of one unit, per language.

    ``self_div`` ``[L, 2]``: odd/even-step self divergence of the primary and auxiliary task;
    ``cross`` ``[L]``: ``1 - cos`` of a language's primary and auxiliary mean gradients;
    ``ratio`` ``[L]``: cross over the mean of the two self divergences; ``mean_ratio`` its mean.
    A high ratio says the two tasks pull this unit apart beyond their own noise: where MGCM's
    projection acts at training time.
    """

    languages: list[str]
    self_div: np.ndarray
    cross: np.ndarray
    ratio: np.ndarray
    mean_ratio: float


def task_divergence(sketches: np.ndarray, languages: list[str], primary: int = 0,
                    aux: int = 1) -> TaskDivergence:
    """Cross-task divergence between tasks ``primary`` and ``aux`` of ``sketches [S, L, T, D]``."""
    x = np.asarray(sketches, dtype=np.float64)
    if x.shape[2] <= max(primary, aux):
        raise ValueError(f"the run has {x.shape[2]} task(s); cross-task divergence needs tasks "
                         f"{primary} and {aux}")
    if x.shape[0] < 2:
        raise ValueError(f"self divergence needs at least 2 steps, the run has {x.shape[0]}")
    pair = x[:, :, [primary, aux]]                                   # [S, L, 2, D]
    self_div = 1.0 - _cos(pair[0::2].mean(0), pair[1::2].mean(0))    # [L, 2]
    mean = pair.mean(0)
    cross = 1.0 - _cos(mean[:, 0], mean[:, 1])                       # [L]
    ratio = cross / np.maximum(self_div.mean(1), 1e-12)
    return TaskDivergence(list(languages), self_div, cross, ratio, float(ratio.mean()))
