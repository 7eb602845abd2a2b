"""Self/cross divergence (GDPS strategy 2) and module-level task conflict (MGCM).

Inputs are one unit's sketches ``[S, L, T, D]`` (steps, languages, tasks, sketch coordinates),
as ``gradlens.analysis.views.unit_sketches`` reads them. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradlens.analysis.clustering import cosine_similarity


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of ``[..., D]`` arrays (0 where either is zero)."""
    num = (a * b).sum(-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


@dataclass(frozen=True)
class Divergence:
    """Self and cross divergence of the languages for one unit and task.

    ``self_div`` ``[L]``: ``1 - cos`` of a language's odd-step and even-step mean gradients.
    ``cross`` ``[L, L]``: ``1 - cos`` of two languages' mean gradients.
    ``ratio``: mean off-diagonal cross over mean self; high means the languages want different
    updates beyond their own step-to-step noise, so the unit is a candidate for splitting.
    """

    languages: list[str]
    self_div: np.ndarray
    cross: np.ndarray
    ratio: float


def language_divergence(sketches: np.ndarray, languages: list[str], task: int = 0) -> Divergence:
    """Self/cross divergence of ``sketches[:, :, task]`` (needs at least two steps)."""
    x = np.asarray(sketches, dtype=np.float64)[:, :, task]  # [S, L, D]
    if x.shape[0] < 2:
        raise ValueError(f"self divergence needs at least 2 steps, the run has {x.shape[0]}")
    self_div = 1.0 - _cos(x[0::2].mean(0), x[1::2].mean(0))
    cross = 1.0 - cosine_similarity(x.mean(0))
    L = cross.shape[0]
    off = cross[~np.eye(L, dtype=bool)].mean() if L > 1 else 0.0
    ratio = float(off / max(self_div.mean(), 1e-12))
    return Divergence(list(languages), self_div, cross, ratio)


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


def task_conflict(sketches: np.ndarray, languages: list[str], primary: int = 0, aux: int = 1) -> Conflict:
    """Conflict between task ``primary`` (ST) and ``aux`` (ASR) in ``sketches [S, L, T, D]``."""
    x = np.asarray(sketches, dtype=np.float64)
    if x.shape[2] <= max(primary, aux):
        raise ValueError(f"the run has {x.shape[2]} task(s); conflict needs tasks {primary} and {aux}")
    cos = _cos(x[:, :, primary], x[:, :, aux])  # [S, L]
    neg = cos < 0
    return Conflict(list(languages), cos, float(neg.mean()), neg.mean(axis=0))
