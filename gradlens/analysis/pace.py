"""How a run that trains between its probe steps is read: each language's own pace taken out.

On a fixed model every probe step sees the same parameters, and the tests treat the steps as
exchangeable. Training between the steps breaks that in two ways (docs/results.md §1b, §1e, §1f):
every language's gradient follows the model's trend (its direction turning as it learns), and
each language's scale moves at its own pace (its loss falling at its own rate). Two readings
take that out again, each for what it feeds:

- ``level_pace``, for what compares the languages' **mean** gradients (the divergence test,
  the mean similarity and its noise null, the split's gain): each language's steps are divided
  by its own scale trajectory, a straight line over the steps fitted to its projection on the
  other languages' gradient at the other steps. A language's pooled mean then weights every
  step alike, as every other language's does, so languages that share the direction at each
  step share it pooled too. Without it, a family whose loss fell faster weighted the late
  steps (where the direction had turned) less, and the divergence test called that
  divergence in up to 46 % of simulated units.
- ``detrended_rows``, for what **pairs** the steps across languages (the paired similarity,
  the CCA alignment): orthonormal contrasts of the steps free of a quintic trend in the step
  index. The trend every language follows is gone, each batch's response stays, and the rows
  stay independent and exchangeable when the steps' noise is (an orthonormal map of white
  noise is white), so the step bootstrap and the shuffled-steps chance level hold as on a fixed
  model. Step-to-step changes, read before, removed the trend too but made neighbouring rows
  share a step.

Both are pure numpy on per-step sketches ``[S, L, ...]``.
"""

from __future__ import annotations

import numpy as np

from gradlens.errors import NotEnoughData

TREND_DEGREE = 5  # the trend removed from paired rows: a quintic in the step index (results §1i)
PACE_DEGREE = 1   # each language's scale trajectory: a straight line over the steps
PACE_FLOOR = 0.2  # a fitted scale below this share of its mean is no pace to divide by


def paired_min_steps(moving: bool) -> int:
    """The fewest steps that pair languages (the paired similarity, its bootstrap): 3, or
    ``TREND_DEGREE + 4`` on a run that trained between its steps (whose trend takes
    ``TREND_DEGREE + 1`` of them)."""
    return TREND_DEGREE + 4 if moving else 3


def detrended_rows(x: np.ndarray, degree: int = TREND_DEGREE) -> np.ndarray:
    """``[S - degree - 1, L, ...]``: the steps of ``x`` ``[S, L, ...]`` as orthonormal contrasts
    orthogonal to every polynomial of ``degree`` in the step index (degree 0: the Helmert-like
    contrasts of a centring)."""
    S = x.shape[0]
    if S < degree + 4:
        raise NotEnoughData(
            f"a run that trained between its probe steps loses {degree + 1} of its steps to the "
            f"trend removed from them, and pairing languages needs 3 more: it needs at least "
            f"{degree + 4} steps, this has {S}")
    basis, _, _ = np.linalg.svd(np.vander(np.linspace(-1.0, 1.0, S), degree + 1),
                                full_matrices=True)
    return np.tensordot(basis[:, degree + 1:].T, x, axes=(1, 0))


def level_pace(x: np.ndarray, width: int | None = None) -> np.ndarray:
    """``x`` ``[S, L, D]`` with each language's steps divided by its fitted scale trajectory
    (rescaled to keep its mean scale); ``width``: ``x`` holds several modules' sketches of this
    width side by side (a layer's, a block's), each levelled on its own as the run's module
    evidence is.

    Language ``l``'s scale at step ``s`` is read as its projection on the sum of every other
    language's gradient at every other step (so neither its own noise nor the step's shared
    noise enters it), and a straight line over the steps is fitted to those projections. A
    language whose fitted line does not stay above ``PACE_FLOOR`` of its mean (no signal in
    this unit, or a scale that crosses zero) is left as it is."""
    x = np.asarray(x, dtype=np.float64)
    S, L, D = x.shape
    if width is not None and width < D:
        if D % width:
            raise ValueError(f"sketches of width {D} do not split into modules of {width}")
        parts = x.reshape(S, L, D // width, width)
        return np.concatenate([level_pace(parts[:, :, i]) for i in range(D // width)], axis=-1)
    if S < PACE_DEGREE + 2 or L < 2:
        return x
    others = x.sum((0, 1))[None, None] - x.sum(0)[None] - x.sum(1)[:, None] + x   # [S, L, D]
    norm = np.linalg.norm(others, axis=-1)
    scale = np.where(norm > 0, (x * others).sum(-1) / np.where(norm > 0, norm, 1.0), 0.0)
    design = np.vander(np.linspace(-1.0, 1.0, S), PACE_DEGREE + 1)
    coef, *_ = np.linalg.lstsq(design, scale, rcond=None)
    fitted = design @ coef                                                       # [S, L]
    level = fitted.mean(0)
    paced = (level > 0) & (fitted.min(0) > PACE_FLOOR * level)
    weight = np.where(paced[None], level[None] / np.where(fitted > 0, fitted, 1.0), 1.0)
    return x * weight[:, :, None]
