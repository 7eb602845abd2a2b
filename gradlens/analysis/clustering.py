"""Language distance and clustering from gradient similarity (GradSim; GDPS strategy 1).

Rows are languages, columns sketch coordinates. Cosine similarity of the languages' mean
gradients (noise-corrected where the steps allow, ``gradlens.analysis.divergence``), distance
``1 - cos``, agglomerative clustering with scipy.

**Is this tree real?** As phylogenetics does, each internal node of the tree gets its bootstrap
support: the share of trees, built the same way from step-resampled similarities, that contain
the same clade (the same set of languages under one node). A clade is *supported* at
``SUPPORTED`` (70 %, Hillis & Bull 1993) or more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import cophenet, fcluster, linkage
from scipy.spatial.distance import squareform
from gradlens.errors import ConfigError, NotEnoughData

METHODS = ("average", "complete", "ward")
SUPPORTED = 0.7


def cosine_similarity(x: np.ndarray) -> np.ndarray:
    """``[N, D]`` rows -> ``[N, N]`` cosine similarities (a zero row has similarity 0)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1)
    safe = np.where(norms > 0, norms, 1.0)
    sim = (x / safe[:, None]) @ (x / safe[:, None]).T
    sim[norms == 0, :] = 0.0
    sim[:, norms == 0] = 0.0
    np.fill_diagonal(sim, 1.0)
    return np.clip(sim, -1.0, 1.0)


ZERO_HEIGHT = 1e-12  # a merge at or below this height joins languages not told apart


@dataclass(frozen=True)
class Clustering:
    """Languages clustered from their gradients.

    ``similarity`` and ``distance`` are ``[L, L]``; ``linkage`` is scipy's ``[L-1, 4]`` matrix;
    ``cophenetic`` the cophenetic correlation of the tree with the distances.
    """

    languages: list[str]
    similarity: np.ndarray
    distance: np.ndarray
    linkage: np.ndarray
    method: str
    cophenetic: float
    support: np.ndarray | None = None

    def clades(self) -> list[frozenset[int]]:
        """The language indices under each internal node ``[L-1]``, in linkage order."""
        L = len(self.languages)
        return [frozenset(i for i in range(L) if mask >> i & 1)
                for mask in _clades(self.linkage, L)]

    def supported_clades(self) -> list[list[str]]:
        """The clades other than the root with support of at least ``SUPPORTED``."""
        if self.support is None:
            return []
        L = len(self.languages)
        return [[self.languages[i] for i in sorted(c)] for c, s in zip(self.clades(), self.support)
                if len(c) < L and s >= SUPPORTED]

    def untold(self) -> list[list[str]]:
        """The groups of languages the tree joins at distance 0: their noise-corrected similarity
        is at or above 1 (an estimate above 1 is noise around 1, clipped), so this unit cannot
        tell them apart within noise. Their order inside such a group means nothing."""
        L = len(self.languages)
        members = [[i] for i in range(L)]
        groups = []
        for a, b, height, _ in self.linkage:
            members.append(members[int(a)] + members[int(b)])
            if height <= ZERO_HEIGHT:
                groups = [g for g in groups if not set(g) <= set(members[-1])]
                groups.append(members[-1])
        return [[self.languages[i] for i in sorted(g)] for g in groups]

    def labels(self, n_groups: int) -> np.ndarray:
        """Cluster label (1..g) of each language when the tree is cut into ``n_groups``."""
        return fcluster(self.linkage, t=n_groups, criterion="maxclust")

    def partition(self, n_groups: int) -> list[list[str]]:
        """The groups of languages when the tree is cut into ``n_groups``."""
        labels = self.labels(n_groups)
        out: dict[int, list[str]] = {}
        for lang, label in zip(self.languages, labels):
            out.setdefault(int(label), []).append(lang)
        return sorted(out.values(), key=lambda g: self.languages.index(g[0]))


def cluster_languages(mean_grads: np.ndarray, languages: list[str], method: str = "average") -> Clustering:
    """Cluster ``languages`` from their mean gradients ``[L, D]`` (one row each)."""
    if len(languages) != len(mean_grads):
        raise ValueError(f"{len(languages)} languages but {len(mean_grads)} gradient rows")
    return cluster_similarity(cosine_similarity(mean_grads), languages, method)


def condensed_distance(sim: np.ndarray) -> np.ndarray:
    """The condensed distances ``1 - sim`` (clipped to [0, 2], symmetrised) of one ``[L, L]``
    similarity or of a stack ``[B, L, L]`` of them (scipy's pair order)."""
    L = sim.shape[-1]
    i, j = np.triu_indices(L, 1)
    return (np.clip(1.0 - sim[..., i, j], 0.0, 2.0) + np.clip(1.0 - sim[..., j, i], 0.0, 2.0)) / 2


def _linked(condensed: np.ndarray, method: str) -> np.ndarray:
    """What ``method`` links: Ward assumes Euclidean distances, and on unit vectors
    ``sqrt(2 (1 - cos))`` is one."""
    return np.sqrt(2 * condensed) if method == "ward" else condensed


def _clades(z: np.ndarray, L: int, order: np.ndarray | None = None) -> list[int]:
    """Each internal node's leaves as a bit mask (bit ``i``: language ``i``), in linkage order;
    ``order[i]``: the language at row ``i`` of the distances ``z`` was linked from."""
    members = [1 << int(i) for i in (range(L) if order is None else order)]
    for a, b in z[:, :2].astype(int).tolist():
        members.append(members[a] | members[b])
    return members[L:]


def checked_similarity(similarity: np.ndarray, languages: list[str], what: str) -> np.ndarray:
    """``similarity`` as float64 ``[L, L]`` for ``L = len(languages) >= 2``, finite; else a
    ValueError naming ``what`` needed it."""
    sim = np.asarray(similarity, dtype=np.float64)
    L = len(languages)
    if sim.shape != (L, L):
        raise ValueError(f"similarity is {sim.shape}, expected ({L}, {L}) for {L} languages")
    if L < 2:
        raise NotEnoughData(f"{what} needs at least two languages")
    if not np.all(np.isfinite(sim)):
        raise ValueError("similarity has NaN or infinite entries")
    return sim


def cluster_similarity(similarity: np.ndarray, languages: list[str], method: str = "average",
                       replicates: np.ndarray | None = None) -> Clustering:
    """Cluster ``languages`` from a similarity matrix ``[L, L]``; with ``replicates``
    ``[B, L, L]`` (bootstrap replicates of the same similarity), each internal node gets its
    support."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    sim = checked_similarity(similarity, languages, "clustering")
    L = len(languages)
    condensed = condensed_distance(sim)
    used = _linked(condensed, method)
    z = linkage(used, method=method)
    dist = squareform(condensed)
    coph = float(cophenet(z, used)[0]) if L > 2 and used.std() > 0 else 1.0
    support = None
    if replicates is not None and len(replicates):
        seen = _bootstrap_clades(replicates, method)
        support = np.array([seen.get(c, 0) / len(replicates) for c in _clades(z, L)])
    return Clustering(list(languages), sim, dist, z, method, coph, support)


def _bootstrap_clades(replicates: np.ndarray, method: str) -> dict[int, int]:
    """How many of the trees built from ``replicates`` ``[B, L, L]`` hold each clade (bit
    mask)."""
    boot = np.asarray(replicates, dtype=np.float64)
    L = boot.shape[-1]
    seen: dict[int, int] = {}
    # each replicate's languages in a random order: scipy resolves tied distances by position,
    # and ties are common (a corrected similarity above 1 is clipped to 1), so in a fixed order
    # the first languages would win every tie and get support no data gave them (a third of
    # null units had a "supported" clade; docs/results.md §1d)
    orders = np.argsort(np.random.default_rng([L, len(boot)]).random((len(boot), L)), axis=1)
    b = np.arange(len(boot))[:, None, None]
    shuffled = boot[b, orders[:, :, None], orders[:, None, :]]
    for order, used in zip(orders, _linked(condensed_distance(shuffled), method)):
        for clade in _clades(linkage(used, method=method), L, order):
            seen[clade] = seen.get(clade, 0) + 1
    return seen


def group_support(replicates: np.ndarray, groups: list[list[int]],
                  method: str = "average") -> list[float]:
    """Each group's bootstrap support (language indices): the share of the trees built from
    ``replicates`` ``[B, L, L]`` in which it is a clade (1 for a single language)."""
    seen = _bootstrap_clades(replicates, method)
    return [1.0 if len(g) == 1 else seen.get(sum(1 << i for i in g), 0) / len(replicates)
            for g in groups]
