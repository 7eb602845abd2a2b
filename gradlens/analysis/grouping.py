"""GradSim grouping: the partition of the languages that maximises within-group affinity.

Affinity follows Task Affinity Grouping (Fifty et al. 2021), which GradSim (Wang et al. 2023)
adopts: each language scores the mean similarity to the *other* members of its group, a
language alone scores 0, and a partition scores the sum over languages. Averaging (rather than
summing pairs) keeps the objective from favouring one big group whenever all similarities are
positive, as gradient cosines between languages usually are.

With ``g`` asked for, that is the whole objective. It cannot choose ``g`` itself: splitting a
group of uniform similarity leaves the score unchanged, so noise favours ever finer partitions.
When ``g`` is left open, the best partition for each ``g`` in ``2..L-1`` is scored by its
silhouette on the distance ``1 - similarity`` (Rousseeuw's, as scikit-learn computes it), and
the best silhouette wins.

Up to ``EXACT_MAX`` languages the best partition is found exactly by dynamic programming over
subsets (about 3^L/2 terms, milliseconds for 12 languages). Beyond, a stated heuristic: cut the
average-linkage tree into ``g`` groups, then move single languages between groups while the
score improves (a local optimum, not a guaranteed best).

    python -c "import numpy as np; from gradlens.analysis.grouping import LanguageGrouping; \\
               print(LanguageGrouping(2).fit(np.eye(4), list('abcd')).groups_)"
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from gradlens.analysis.clustering import checked_similarity, condensed_distance
from gradlens.errors import ConfigError

EXACT_MAX = 12


def index_groups(groups: list[list[str]], languages: list[str]) -> list[list[int]]:
    """``groups`` of language codes as groups of their indices in ``languages``."""
    where = {lang: i for i, lang in enumerate(languages)}
    return [[where[lang] for lang in g] for g in groups]


def group_score(pair_sum: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Score of groups with within-pair similarity sums ``pair_sum`` and sizes ``size``.

    ``2 W / (n - 1)``: the sum over members of their mean similarity to the other members;
    0 for a group of one.
    """
    size = np.asarray(size, dtype=np.float64)
    return np.where(size >= 2, 2.0 * pair_sum / np.maximum(size - 1, 1), 0.0)


def partition_score(similarity: np.ndarray, labels: np.ndarray) -> float:
    """Score of the partition given by ``labels`` ``[L]`` under ``similarity`` ``[L, L]``."""
    sim = _off_diagonal(similarity)
    _, group = np.unique(np.asarray(labels), return_inverse=True)
    onehot = np.eye(group.max() + 1)[group.ravel()]                 # [L, g]
    pair_sum = ((sim @ onehot) * onehot).sum(0) / 2                 # [g]
    return float(group_score(pair_sum, onehot.sum(0)).sum())


def _off_diagonal(similarity: np.ndarray) -> np.ndarray:
    sim = np.array(similarity, dtype=np.float64)
    np.fill_diagonal(sim, 0.0)
    return sim


# -- exact: dynamic programming over subsets ----------------------------------------------------
@lru_cache(maxsize=EXACT_MAX + 1)
def _subset_pairs(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ``(mask, sub, rest)`` with ``sub | rest == mask`` disjoint and ``sub`` holding the
    lowest bit of ``mask`` (so each split is listed once), sorted by ``mask``."""
    full = (1 << n) - 1
    subs, rests = [], []
    for sub in range(1, full + 1):
        low = sub & -sub
        allowed = full & ~sub & ~((low << 1) - 1)          # free bits above sub's lowest
        pos = np.array([j for j in range(n) if (allowed >> j) & 1], dtype=np.int64)
        idx = np.arange(1 << len(pos), dtype=np.int64)
        rest = (((idx[:, None] >> np.arange(len(pos))) & 1) << pos).sum(1) if len(pos) else idx
        subs.append(np.full(len(rest), sub, dtype=np.int64))
        rests.append(rest)
    s, r = np.concatenate(subs), np.concatenate(rests)
    m = s | r
    order = np.argsort(m, kind="stable")
    return m[order], s[order], r[order]


def _exact(similarity: np.ndarray) -> dict[int, tuple[float, np.ndarray]]:
    """Best score and labels for every number of groups ``g = 1..L``."""
    L = len(similarity)
    sim = _off_diagonal(similarity)
    full = 1 << L
    bits = ((np.arange(full)[:, None] >> np.arange(L)[None, :]) & 1).astype(np.float64)
    pair_sum = ((bits @ sim) * bits).sum(1) / 2
    score = group_score(pair_sum, bits.sum(1))
    m, s, r = _subset_pairs(L)
    starts = np.flatnonzero(np.r_[True, m[1:] != m[:-1]])
    masks = m[starts]
    tables = [np.full(full, -np.inf)]
    tables[0][0] = 0.0
    for _ in range(L):
        prev = tables[-1]
        vals = score[s] + prev[r]
        best = np.full(full, -np.inf)
        best[masks] = np.maximum.reduceat(vals, starts)
        tables.append(best)
    out = {}
    for g in range(1, L + 1):
        labels = np.zeros(L, dtype=int)
        mask, k = full - 1, g
        while k > 0:
            at = int(np.searchsorted(masks, mask))
            rows = slice(starts[at], starts[at + 1] if at + 1 < len(starts) else len(m))
            vals = score[s[rows]] + tables[k - 1][r[rows]]
            pick = int(np.argmax(vals))
            labels[[i for i in range(L) if (int(s[rows][pick]) >> i) & 1]] = g - k
            mask, k = int(r[rows][pick]), k - 1
        out[g] = (float(tables[g][full - 1]), _canonical(labels))
    return out


def silhouette(dist: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of ``labels`` ``[L]`` on distances ``dist`` ``[L, L]`` (Rousseeuw 1987,
    scikit-learn's ``silhouette_score`` with ``metric="precomputed"``): ``(b - a) / max(a, b)``
    per language, ``a`` its mean distance to the rest of its group, ``b`` the smallest mean
    distance to another group; 0 for a language alone in its group. Vectorised: the grouping
    scores up to ``L - 2`` partitions, each a few microseconds instead of a validated call."""
    labels = np.asarray(labels)
    L = len(labels)
    onehot = np.eye(labels.max() + 1)[labels]                       # [L, g]
    size = onehot.sum(0)                                            # [g]
    to_group = dist @ onehot                                        # [L, g] distance sums
    own = size[labels]
    a = to_group[np.arange(L), labels] / np.maximum(own - 1, 1)
    other = np.where(onehot > 0, np.inf, to_group / np.maximum(size, 1))
    b = other.min(1)
    den = np.maximum(a, b)
    s = np.where((own > 1) & (den > 0), (b - a) / np.where(den > 0, den, 1.0), 0.0)
    return float(s.mean())


# -- heuristic: tree cut, then single-language moves --------------------------------------------
def _local_search(sim: np.ndarray, labels: np.ndarray, g: int) -> np.ndarray:
    labels = labels.copy()
    L = len(labels)
    for _ in range(10 * L * g):
        onehot = np.eye(g)[labels]                       # [L, g]
        to_group = sim @ onehot                          # [L, g] similarity sum to each group
        size = onehot.sum(0)                             # [g]
        pair = (to_group * onehot).sum(0) / 2            # [g]
        own = labels
        a_sum = to_group[np.arange(L), own]              # [L]
        a_size = size[own]
        before = group_score(pair[own], a_size)[:, None] + group_score(pair, size)[None, :]
        after = (group_score(pair[own] - a_sum, a_size - 1)[:, None]
                 + group_score(pair[None, :] + to_group, size[None, :] + 1))
        delta = after - before
        delta[np.arange(L), own] = -np.inf               # staying is no move
        delta[a_size == 1, :] = -np.inf                  # emptying a group changes g
        i, b = np.unravel_index(np.argmax(delta), delta.shape)
        if not delta[i, b] > 1e-12:
            break
        labels[i] = b
    return labels


def _average_tree(similarity: np.ndarray) -> np.ndarray:
    return linkage(condensed_distance(np.asarray(similarity, dtype=np.float64)), method="average")


def _heuristic(similarity: np.ndarray, g: int,
               tree: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """``tree``: the average-linkage tree of ``similarity`` when the caller has it already."""
    sim = _off_diagonal(similarity)
    tree = _average_tree(similarity) if tree is None else tree
    labels = fcluster(tree, t=g, criterion="maxclust") - 1
    # maxclust may give fewer clusters on ties; split the largest until there are g
    while len(np.unique(labels)) < g:
        big = np.bincount(labels).argmax()
        labels[np.flatnonzero(labels == big)[-1]] = labels.max() + 1
    labels = _canonical(_local_search(sim, _canonical(labels), g))
    return partition_score(similarity, labels), labels


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Relabel so groups are numbered by their first language: 0, 1, 2, ..."""
    seen: dict[int, int] = {}
    return np.array([seen.setdefault(int(x), len(seen)) for x in labels])


class LanguageGrouping:
    """Best partition of languages into groups by within-group gradient affinity.

    Estimator contract: ``__init__`` stores, ``fit`` computes and returns ``self``.

    Parameters: ``n_groups`` — an int, or ``None`` to pick the number of groups ``g`` in
    ``2..L-1`` whose best partition has the best silhouette (2 when there are 2 languages).

    Fitted: ``labels_`` ``[L]`` (group of each language, numbered by first member),
    ``groups_`` (lists of language codes), ``score_``, ``scores_`` (best score per ``g`` tried),
    ``silhouettes_`` (per ``g`` tried, when ``g`` was chosen), ``exact_`` (whether the optimum is guaranteed: ``L <= EXACT_MAX``).
    """

    def __init__(self, n_groups: int | None = None):
        self.n_groups = n_groups

    def fit(self, similarity: np.ndarray, languages: list[str]) -> "LanguageGrouping":
        """``similarity`` ``[L, L]`` symmetric, e.g. cosine of the languages' mean gradients."""
        sim = checked_similarity(similarity, languages, "grouping")
        L = len(languages)
        if self.n_groups is not None and not 1 <= self.n_groups <= L:
            raise ConfigError(f"n_groups must be between 1 and {L}, got {self.n_groups}")
        if self.n_groups is not None:
            tried = [self.n_groups]
        else:
            tried = list(range(2, L)) if L > 2 else [2]
        self.exact_ = L <= EXACT_MAX
        if self.exact_:
            best = _exact(sim)
            results = {g: best[g] for g in tried}
        else:
            tree = _average_tree(sim)
            results = {g: _heuristic(sim, g, tree) for g in tried}
        self.scores_ = {g: score for g, (score, _) in results.items()}
        if len(tried) == 1:
            self.silhouettes_ = {}
            g = tried[0]
        else:
            dist = np.clip(1.0 - (sim + sim.T) / 2, 0.0, 2.0)
            np.fill_diagonal(dist, 0.0)
            self.silhouettes_ = {g: silhouette(dist, results[g][1]) for g in tried}
            g = max(tried, key=lambda k: (round(self.silhouettes_[k], 12), -k))
        self.score_, self.labels_ = results[g]
        self.groups_ = [[languages[i] for i in np.flatnonzero(self.labels_ == label)]
                        for label in range(g)]
        return self
