"""Do a split's groups follow a nuisance? Arrays in, a frozen result out.

A nuisance is a property of a language's data in this run rather than of the language: how
long its utterances are (its speaking rate: on the spoken numbers, {fra tur}, whose numbers are
the shortest, were the demo's one split) and how well the model already does it (its loss
level). When a module's groups separate the languages along such a property, the split may be
the nuisance's, and the divergence says nothing about which languages should share.

``nuisance_test``: the share of the covariate's variance between the groups (η², 0 to 1), and
a permutation p-value: the share of random partitions of the languages into groups of the same
sizes whose η² is at least as large, ``(1 + #{η²* ≥ η²}) / (1 + draws)``. Under the null (the
grouping has nothing to do with the covariate) the p-value is uniform, whatever the sizes, so a
six-group split of 14 languages is held to the same bar as a two-group one.

    python -c "from gradlens.analysis.nuisance import nuisance_test; \\
               print(nuisance_test('duration', [1.0, 1.1, 2.0, 2.1], [0, 0, 1, 1]))"
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUISANCES = {"duration": "utterance duration", "loss": "loss level"}
# what a followed nuisance does to a split: the duration of a language's utterances is a property
# of its recordings, so groups that follow it keep the module shared; its loss level is also
# what a real conflict raises (the positive control's planted group has the higher losses), so
# groups that follow it are reported, and `gradlens validate`'s loss-level groups test whether
# the loss level alone buys the benefit
KEEPS_SHARED = {"duration"}
ALPHA = 0.05
DRAWS = 4000


@dataclass(frozen=True)
class NuisanceTest:
    """How far a grouping follows the covariate ``name``: ``share`` (η²) and ``p_value``."""

    name: str
    share: float
    p_value: float

    def follows(self, alpha: float = ALPHA) -> bool:
        return self.p_value < alpha

    @property
    def keeps_shared(self) -> bool:
        """Whether following this covariate keeps a split shared (``KEEPS_SHARED``)."""
        return self.name in KEEPS_SHARED and self.follows()

    def text(self) -> str:
        return (f"{NUISANCES.get(self.name, self.name)} (η² {self.share:.2f}, p = "
                f"{self.p_value:.3g} over random groups of the same sizes)")


def explained_share(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """η² of ``values`` ``[L]`` by each row of ``labels`` ``[..., L]`` (group indices)."""
    v = np.asarray(values, float)
    total = ((v - v.mean()) ** 2).sum()
    labels = np.asarray(labels)
    flat = labels.reshape(-1, labels.shape[-1])
    g = int(flat.max()) + 1
    offsets = flat + g * np.arange(len(flat))[:, None]
    sums = np.bincount(offsets.ravel(), np.tile(v, len(flat)), g * len(flat)).reshape(-1, g)
    counts = np.bincount(offsets.ravel(), minlength=g * len(flat)).reshape(-1, g)
    with np.errstate(invalid="ignore", divide="ignore"):
        between = np.where(counts > 0, sums ** 2 / counts, 0).sum(axis=1) - len(v) * v.mean() ** 2
    share = between / total if total > 0 else np.zeros(len(flat))
    return share.reshape(labels.shape[:-1])


def nuisance_test(name: str, values, labels, draws: int = DRAWS, seed: int = 0) -> NuisanceTest:
    """η² of the covariate ``values`` (one per language) by the groups ``labels`` (one index
    per language), with its permutation p-value over ``draws`` random relabellings."""
    labels = np.asarray(labels)
    share = float(explained_share(values, labels))
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.tile(labels, (draws, 1)), axis=1)
    null = explained_share(values, shuffled)
    p = (1 + int((null >= share - 1e-12).sum())) / (1 + draws)
    return NuisanceTest(name, share, float(p))
