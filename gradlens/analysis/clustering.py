"""Language distance and clustering from gradient similarity (GradSim; GDPS strategy 1).

Rows are languages, columns sketch coordinates. Cosine similarity of the languages' mean
gradients, distance ``1 - cos``, agglomerative clustering with scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import cophenet, fcluster, linkage
from scipy.spatial.distance import squareform

METHODS = ("average", "complete", "ward")


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
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if len(languages) != len(mean_grads):
        raise ValueError(f"{len(languages)} languages but {len(mean_grads)} gradient rows")
    if len(languages) < 2:
        raise ValueError("clustering needs at least two languages")
    sim = cosine_similarity(mean_grads)
    dist = np.clip(1.0 - sim, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    dist = (dist + dist.T) / 2
    condensed = squareform(dist, checks=False)
    # Ward assumes Euclidean distances; on unit vectors sqrt(2 (1 - cos)) is one.
    used = np.sqrt(2 * condensed) if method == "ward" else condensed
    z = linkage(used, method=method)
    coph = float(cophenet(z, used)[0]) if len(languages) > 2 else 1.0
    return Clustering(list(languages), sim, dist, z, method, coph)
