"""Does the evidence on a module predict what splitting it delivers? The statistics of
``gradlens validate`` (``gradlens.validation``): numbers in, numbers out.

- ``span``: which modules to fine-tune, spanning the predicted gain from the top of the plan
  down: a correlation over modules that all look alike says nothing.
- ``realised_benefit``: what a split delivered: the dev ST loss of the fine-tune that shared
  everything minus that of the fine-tune that split the module, per language, averaged over the
  languages and then over the seeds both ran (positive: the split helped). The two fine-tunes of
  a seed see the same batches in the same order from the same starting model, so the
  difference is the split's, not the batches'.
- ``rank_correlation``: Spearman's ρ of a predictor against the benefit over modules, with a
  percentile bootstrap interval that resamples modules (the unit the claim is about).
- ``prediction_verdict``: the target the tool is held to (ρ ≥ 0.5, interval above 0), in words
  no stronger than the interval.

    python -c "from gradlens.analysis.validation import rank_correlation; \\
               print(rank_correlation([1, 2, 3, 4, 5, 6], [0.1, 0.3, 0.2, 0.5, 0.4, 0.9]))"
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TARGET_RHO = 0.5
BOOTSTRAP = 2000
MIN_MODULES = 4  # fewer: no rank correlation worth an interval


def span(gains: dict[str, float], planned: list[str], n: int) -> list[str]:
    """``n`` modules spanning ``gains`` (predicted gain per module): the plan's modules first
    (at most half of ``n``, by gain), then the others at evenly spaced ranks of their gain,
    the highest and the lowest among them, in order of gain."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    order = sorted(gains, key=lambda m: (-gains[m], m))
    top = [m for m in order if m in set(planned)][: max(1, n // 2)]
    rest = [m for m in order if m not in top]
    k = min(n - len(top), len(rest))
    picks = sorted({int(round(i)) for i in np.linspace(0, len(rest) - 1, k)}) if k > 0 else []
    # rounding can merge two ranks of a short list: fill from the unpicked in order
    picks += [i for i in range(len(rest)) if i not in picks][: k - len(picks)]
    return sorted(top + [rest[i] for i in picks], key=lambda m: (-gains[m], m))


def realised_benefit(shared: dict[int, dict[str, float]],
                     split: dict[int, dict[str, float]]) -> tuple[float, list[float]] | None:
    """The mean benefit of a split over the seeds both fine-tunes finished, and each seed's:
    ``shared[seed][language]`` minus ``split[seed][language]`` (dev ST losses), averaged over
    the languages both have. None when no seed has both."""
    seeds = sorted(set(shared) & set(split))
    per_seed = []
    for s in seeds:
        langs = sorted(set(shared[s]) & set(split[s]))
        if langs:
            per_seed.append(float(np.mean([shared[s][x] - split[s][x] for x in langs])))
    return (float(np.mean(per_seed)), per_seed) if per_seed else None


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's ρ of each row of ``x`` with the same row of ``y`` ``[R, n]`` (average ranks
    for ties); NaN where a row is constant on either side."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x, axis=1), rankdata(y, axis=1)
    rx, ry = rx - rx.mean(axis=1, keepdims=True), ry - ry.mean(axis=1, keepdims=True)
    sx, sy = np.sqrt((rx ** 2).sum(axis=1)), np.sqrt((ry ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((sx > 0) & (sy > 0), (rx * ry).sum(axis=1) / (sx * sy), np.nan)


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman's ρ over ``n`` modules and its 95 % percentile bootstrap interval (``None``
    with fewer than ``MIN_MODULES`` modules or a constant side)."""

    rho: float | None
    low: float | None
    high: float | None
    n: int

    def as_dict(self) -> dict:
        return {"rho": self.rho, "low": self.low, "high": self.high, "n": self.n}


def rank_correlation(predicted, benefit, boots: int = BOOTSTRAP, seed: int = 0) -> RankCorrelation:
    """Spearman's ρ of ``predicted`` against ``benefit`` (one value per module) with a
    bootstrap interval over modules: resamples in which a side is constant are left out."""
    x, y = np.asarray(predicted, float), np.asarray(benefit, float)
    if x.shape != y.shape:
        raise ValueError(f"{x.size} predictions for {y.size} benefits")
    rho = float(spearman_rows(x[None], y[None])[0])
    if np.isnan(rho):
        return RankCorrelation(None, None, None, int(x.size))
    if x.size < MIN_MODULES:
        return RankCorrelation(rho, None, None, int(x.size))
    idx = np.random.default_rng(seed).integers(0, x.size, size=(boots, x.size))
    draws = spearman_rows(x[idx], y[idx])
    low, high = np.nanpercentile(draws, [2.5, 97.5])  # a side constant in a draw: left out
    return RankCorrelation(rho, float(low), float(high), int(x.size))


def prediction_verdict(name: str, rc: RankCorrelation) -> str:
    """One sentence: does ``name`` predict the benefit, held to the target ρ ≥ 0.5 with the
    interval above 0?"""
    if rc.rho is None:
        return (f"{name}: no rank correlation (fewer than {MIN_MODULES} modules finished, or "
                "every value alike): nothing can be said yet.")
    if rc.low is None:
        return (f"{name}: ρ = {rc.rho:.2f} over {rc.n} modules, too few for an interval: "
                "nothing can be said yet.")
    figures = f"ρ = {rc.rho:.2f} [{rc.low:.2f}, {rc.high:.2f}] over {rc.n} modules"
    if rc.low > 0 and rc.rho >= TARGET_RHO:
        return f"{name} predicts the realised benefit ({figures}; target ρ ≥ {TARGET_RHO} met)."
    if rc.low > 0:
        return (f"{name} predicts the realised benefit weakly ({figures}; above 0, short of "
                f"the target ρ ≥ {TARGET_RHO}).")
    if rc.high < 0:
        return f"{name} ranks the modules the wrong way round ({figures})."
    return f"{name}: no prediction is shown ({figures}; the interval covers 0)."
