"""How far a unit's gradient moved between two windows of a run's steps. Pure numpy.

Inputs are the unit's step gradients in each window, pooled over the languages (each step's
sum), ``first`` ``[n1, D]`` and ``second`` ``[n2, D]``. The windows hold different steps, so
the inner product of their means carries no noise, and each window's squared mean norm is
estimated without its noise from products of different steps (as ``corrected_gram`` does for
languages):

    rho = <m_1, m_2> / sqrt(G_11 G_22),   G_ww = sum_{s != t in w} <x_s, x_t> / (n (n - 1))

``rho`` near 1: the model asks for the same update at both ends (a run probed on a fixed model
gives 1 up to noise); below 1: the direction moved. Scale changes do not move it. The interval
resamples the steps of each window (the run's shared bootstrap draws), a step's products with
its own copies left out as in ``G``. Where a window's ``G`` is not positive its mean cannot be
told from noise and ``rho`` is ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradlens.analysis.divergence import bootstrap_weights, corrected_gram
from gradlens.errors import NotEnoughData


@dataclass(frozen=True)
class Drift:
    """``cosine``: the noise-corrected cosine of the two windows' mean gradients (``None``
    when either has no signal beyond noise); ``ci``: its 95 % interval over resampled steps
    (``None`` likewise)."""

    cosine: float | None
    ci: tuple[float, float] | None


def window_drift(first: np.ndarray, second: np.ndarray) -> Drift:
    """The noise-corrected cosine of the mean gradients of ``first`` ``[n1, D]`` and
    ``second`` ``[n2, D]`` (module docstring), with its interval."""
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    if min(len(a), len(b)) < 2:
        raise NotEnoughData(f"drift needs at least 2 steps per window, got {len(a)} and {len(b)}")
    wa = np.vstack([np.ones(len(a)), bootstrap_weights(len(a))])         # row 0: the data
    wb = np.vstack([np.ones(len(b)), bootstrap_weights(len(b), seed=1)])
    # each window as one "language": its mean's squared norm from products of different steps
    ga = corrected_gram(a[:, None, :], wa)[:, 0, 0]
    gb = corrected_gram(b[:, None, :], wb)[:, 0, 0]
    cross = ((wa @ a) * (wb @ b)).sum(1) / (len(a) * len(b))
    ok = (ga > 0) & (gb > 0)                                           # NaN compares False
    rho = np.where(ok, cross / np.sqrt(np.where(ok, ga * gb, 1.0)), np.nan)
    if not ok[0]:
        return Drift(None, None)
    lo, hi = np.nanpercentile(rho[1:], [2.5, 97.5])
    return Drift(float(rho[0]), (float(lo), float(hi)))
