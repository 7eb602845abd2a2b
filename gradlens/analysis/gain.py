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


def held_out_gain(steps: np.ndarray, languages: list[str], n_groups: int,
                  seed: int = 0) -> tuple[float, float] | None:
    """The cross-fitted gain of splitting into ``n_groups`` GradSim groups, and the lower end of
    its 95 % bootstrap interval, from one task's steps ``[S, L, D]`` (``None`` with fewer than
    ``HELD_OUT_MIN_STEPS`` steps; ``(0, 0)`` for one group)."""
    x = np.asarray(steps, dtype=np.float64)
    if x.shape[0] < HELD_OUT_MIN_STEPS:
        return None
    if n_groups <= 1:
        return 0.0, 0.0
    halves = [step_coordinates(x[0::2], passes=BOOT_REPLICATES),
              step_coordinates(x[1::2], passes=BOOT_REPLICATES)]
    grams = [corrected_gram(y) for y in halves]
    chosen = [index_groups(LanguageGrouping(n_groups).fit(corrected_similarity(g), languages)
                           .groups_, languages) for g in grams]
    # each half's energy under the groups the other half chose
    gain = (between_group_energy(grams[1], chosen[0])
            + between_group_energy(grams[0], chosen[1])) / 2
    boot = sum(between_group_energy(corrected_gram(y, bootstrap_weights(len(y), seed=seed)),
                                    chosen[1 - i]) for i, y in enumerate(halves)) / 2
    return float(gain), float(np.nanpercentile(boot, 2.5))
