"""What splitting a module into groups buys to first order, measured on steps the groups were
not chosen on.

One SGD step of size ``eta`` on a shared module lowers the languages' summed loss by
``eta * sum_l <mu_l, mu>``, with ``mu_l`` language ``l``'s mean gradient and ``mu`` their mean;
with a copy per group ``G`` each language follows its group's mean ``mu_G`` instead, and the
difference is the between-group energy

    sum_G |G| |mu_G - mu|^2 = sum_G (1/|G|) 1'K_GG 1 - (1/L) 1'K 1

read from the noise-corrected Gram ``K`` of the mean gradients.

Measured on the steps that chose the groups, it is too large: the grouping picks the partition
whose within-group affinity is highest, noise included, so the same noise counts again as gain.
In simulation (``docs/results.md`` §1g) that estimate was up to 1.55x the true gain of the
chosen groups, and its 95 % lower bound lay above the truth in up to 66 % of units (14
languages that each pull their own way). ``held_out_gain`` therefore cross-fits: groups (as
many as the proposed ones) are chosen on the even steps and their energy measured on the odd
steps' Gram, and the other way round; the estimate is the mean of the two, its interval from
bootstrap replicates of each half's steps with the other half's groups held fixed. It is the
gain of groups chosen without the steps that measure it; the proposed groups, chosen on all
steps, are at least as good in expectation, so it errs low.

The number of groups is chosen the same way (``cross_fitted_gains``, ``best_group_count``):
among the partitions the GradSim grouping makes for 2 to ``MAX_GROUPS`` groups, the fewest
groups whose held-out gain reaches 95 % of the largest, so that the choice is made by what a
split is for, per extra parameter (the silhouette, which finds groups in pure noise, describes
the tree only).
"""

from __future__ import annotations

import numpy as np

from gradlens.analysis.divergence import (BOOT_REPLICATES, bootstrap_weights, corrected_gram,
                                          corrected_similarity, step_coordinates)
from gradlens.analysis.grouping import LanguageGrouping, index_groups

HELD_OUT_MIN_STEPS = 4  # two halves of at least two steps: a corrected Gram needs two


def between_group_energy(gram: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """``sum_G |G| |mu_G - mu|^2`` from Gram matrices ``[..., L, L]`` of the languages' mean
    gradients, for ``groups`` of language indices that cover them all: what following each
    group's mean instead of the overall mean gains to first order (0 for one group)."""
    gram = np.asarray(gram, dtype=np.float64)
    within = sum(gram[..., g, :][..., :, g].sum(axis=(-1, -2)) / len(g) for g in groups)
    return within - gram.sum(axis=(-1, -2)) / gram.shape[-1]


MAX_GROUPS = 6  # the most groups a split is offered: each more is a full copy of the module
NEARLY_ALL = 0.95  # a split takes the fewest groups that buy this share of its largest gain


def cross_fitted_gains(steps: np.ndarray, languages: list[str], group_counts,
                       seed: int = 0) -> dict[int, tuple[float, float]]:
    """``held_out_gain`` of each number of groups in ``group_counts`` from one task's steps
    ``[S, L, D]``, the halves' coordinates computed once (``{}`` with fewer than
    ``HELD_OUT_MIN_STEPS`` steps)."""
    x = np.asarray(steps, dtype=np.float64)
    if x.shape[0] < HELD_OUT_MIN_STEPS:
        return {}
    halves = [step_coordinates(x[0::2], passes=BOOT_REPLICATES),
              step_coordinates(x[1::2], passes=BOOT_REPLICATES)]
    grams = [corrected_gram(y) for y in halves]
    boots = [corrected_gram(y, bootstrap_weights(len(y), seed=seed)) for y in halves]
    similarities = [corrected_similarity(g) for g in grams]
    out = {}
    for n_groups in group_counts:
        if n_groups <= 1:
            out[n_groups] = (0.0, 0.0)
            continue
        chosen = [index_groups(LanguageGrouping(n_groups).fit(sim, languages).groups_, languages)
                  for sim in similarities]
        # each half's energy under the groups the other half chose
        gain = (between_group_energy(grams[1], chosen[0])
                + between_group_energy(grams[0], chosen[1])) / 2
        boot = sum(between_group_energy(b, chosen[1 - i]) for i, b in enumerate(boots)) / 2
        out[n_groups] = (float(gain), float(np.nanpercentile(boot, 2.5)))
    return out


def held_out_gain(steps: np.ndarray, languages: list[str], n_groups: int,
                  seed: int = 0) -> tuple[float, float] | None:
    """The cross-fitted gain of splitting into ``n_groups`` GradSim groups, and the lower end of
    its 95 % bootstrap interval, from one task's steps ``[S, L, D]`` (``None`` with fewer than
    ``HELD_OUT_MIN_STEPS`` steps; ``(0, 0)`` for one group)."""
    return cross_fitted_gains(steps, languages, [n_groups], seed).get(n_groups)


def best_group_count(gains: dict[int, tuple[float, float]], share: float = NEARLY_ALL) -> int | None:
    """The fewest groups whose cross-fitted gain reaches ``share`` of the largest one: each
    further copy of the module would add less than ``1 - share`` of what splitting buys, so
    among the partitions that buy (nearly) all of it, this one buys most per extra parameter.
    ``None`` when no split gains anything on held-out steps.

    Gain per extra copy alone (``gain / (g - 1)``) would stop at 2 groups for 3 planted ones:
    merging two clusters keeps about half the energy for half the copies."""
    positive = {g: gain for g, (gain, _low) in gains.items() if g > 1 and gain > 0}
    if not positive:
        return None
    most = max(positive.values())
    return min(g for g, gain in positive.items() if gain >= share * most)
