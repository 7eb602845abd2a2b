"""Joint factorization and CCA: how well languages' update subspaces align (GDPS strategy 3).

For one unit and task, language ``l``'s per-step gradients form ``X_l`` ``[S, D]`` (rows = steps;
all languages are captured at the same parameter state, so rows pair up across languages).

1. **Joint factorization**: the stacked ``[L*S, D]`` matrix's top ``r`` right singular vectors
   are a basis ``V`` ``[D, r]`` shared by all languages; ``Z_l = X_l V`` ``[S, r]`` are the
   languages' coordinates in it.
2. **CCA** of ``Z_a`` and ``Z_b`` (columns centred): the canonical correlations are the singular
   values of ``Q_a^T Q_b``, with ``Q`` orthonormal bases of the centred columns. Their mean says
   how well the two languages move along the same directions at the same steps.
3. **Principal angles** between each language's own top-``r`` right singular subspace of ``X_l``
   (in sketch space): the assumption-free companion, no pairing of steps needed.

CCA with ``r`` components on ``S`` paired rows is biased upward: two independent ``r``-column
matrices already have a sum of squared canonical correlations of about ``r^2 / (S - 1)`` (below
``S - 1 = 2 r`` the centred column spaces must even intersect, and correlations of 1 appear
whatever the data). A rank is supported when that chance level keeps the mean squared
correlation at most 1/4, ``S >= 4 r + 1``; ``subspace_alignment`` refuses a larger rank and says
how many steps it needs. What remains of the bias is measured, not assumed: **the chance
level** is the mean canonical correlation of the same languages with their steps shuffled
independently (so nothing pairs up), and alignment is reported against it.

    python -c "import numpy as np; from gradlens.analysis.alignment import subspace_alignment; \\
               print(subspace_alignment(np.random.randn(20, 3, 1, 64), list('abc'), 4).mean)"
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import eigh
from gradlens.analysis.pace import TREND_DEGREE, detrended_rows
from gradlens.errors import ConfigError, NotEnoughData


CHANCE_SHUFFLES = 20


def min_steps(rank: int, moving: bool = False) -> int:
    """Steps CCA needs for ``rank`` components to be informative: ``4 r + 1`` rows, and on a run
    that trained between its steps the ``TREND_DEGREE + 1`` its trend takes."""
    return 4 * rank + 1 + (TREND_DEGREE + 1 if moving else 0)


def default_rank(steps: int, cap: int = 8) -> int:
    """The largest informative rank for ``steps`` steps, at most ``cap`` (0 if none)."""
    return max(0, min(cap, (steps - 1) // 4))


def _check_rank(rank: int, steps: int) -> None:
    if rank < 1:
        raise ConfigError(f"rank must be at least 1, got {rank}")
    if steps < min_steps(rank):
        raise NotEnoughData(f"CCA of rank {rank} needs at least {min_steps(rank)} steps to mean "
                         f"anything (with fewer, correlations of 1 appear whatever the data); "
                         f"this has {steps}: probe more steps or lower the rank to "
                         f"{default_rank(steps) or f'at least 1 with {min_steps(1)} steps'}")


def _top_right_vectors(x: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Top ``r`` right singular vectors ``[D, r]`` of ``x`` ``[N, D]``, the top ``r`` singular
    values, and ``|x|_F^2`` (the sum of all squared singular values).

    Through the top eigenvectors of the smaller Gram matrix (``x x^T`` or ``x^T x``), computed
    alone (LAPACK's subset driver): several times faster than a full SVD for these tall or wide
    matrices, and exact enough for the top vectors. A direction beyond ``x``'s rank is returned
    as a zero column.
    """
    wide = x.shape[0] < x.shape[1]
    gram = x @ x.T if wide else x.T @ x
    n = gram.shape[0]
    r_found = min(r, n)
    w, u = eigh(gram, subset_by_index=[n - r_found, n - 1], driver="evx")
    w, u = w[::-1], u[:, ::-1]
    sv = np.zeros(r)
    sv[:r_found] = np.sqrt(np.clip(w, 0, None))
    keep = np.zeros(r, dtype=bool)
    keep[:r_found] = sv[:r_found] > (sv[0] * 1e-6 if sv[0] > 0 else np.inf)
    v = np.zeros((x.shape[1], r))
    k = keep[:r_found]
    v[:, keep] = (x.T @ u[:, k]) / sv[keep] if wide else u[:, k]
    return v, sv, float(np.trace(gram))


def _own_subspaces(x: np.ndarray, r: int) -> np.ndarray:
    """``[L, D, r]``: each language's top ``r`` right singular vectors of ``x[:, l]`` (``x`` is
    ``[S, L, D]`` with ``S`` small), from one batched eigendecomposition of the ``[L, S, S]``
    Gram matrices. Directions beyond a language's rank are zero columns."""
    xl = x.transpose(1, 0, 2)                                     # [L, S, D]
    w, u = np.linalg.eigh(xl @ xl.transpose(0, 2, 1))             # ascending
    w, u = w[:, ::-1][:, :r], u[:, :, ::-1][:, :, :r]             # [L, r], [L, S, r]
    sv = np.sqrt(np.clip(w, 0, None))
    keep = sv > np.maximum(sv[:, :1] * 1e-6, 1e-300)
    v = xl.transpose(0, 2, 1) @ u / np.where(keep, sv, 1.0)[:, None, :]
    return v * keep[:, None, :]


class JointFactorization:
    """Shared SVD basis of several languages' per-step gradients.

    Estimator contract: ``__init__`` stores, ``fit`` computes and returns ``self``.

    Fitted: ``basis_`` ``[D, r]`` (orthonormal columns), ``projections_`` ``[L, S, r]``,
    ``singular_values_`` ``[r]`` (the top ones of the stacked matrix), ``explained_`` (share of the stacked squared
    norm the basis captures).
    """

    def __init__(self, rank: int = 8):
        self.rank = rank

    def fit(self, x: np.ndarray) -> "JointFactorization":
        """``x`` ``[S, L, D]``: steps, languages, sketch coordinates."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 3:
            raise ValueError(f"expected [steps, languages, features], got shape {x.shape}")
        S, L, D = x.shape
        _check_rank(self.rank, S)
        stacked = x.transpose(1, 0, 2).reshape(L * S, D)
        self.basis_, self.singular_values_, total = _top_right_vectors(stacked, self.rank)
        self.explained_ = float((self.singular_values_ ** 2).sum() / total) if total else 0.0
        self.projections_ = (stacked @ self.basis_).reshape(L, S, self.rank)
        return self


def _centred_basis(z: np.ndarray) -> np.ndarray:
    """Orthonormal basis ``[S, q]`` of the centred columns of ``z`` ``[S, r]`` (rank-revealing)."""
    zc = z - z.mean(0)
    u, sv, _ = np.linalg.svd(zc, full_matrices=False)
    keep = sv > (sv[0] * 1e-10 if len(sv) and sv[0] > 0 else np.inf)
    return u[:, keep]


def canonical_correlations(za: np.ndarray, zb: np.ndarray) -> np.ndarray:
    """Canonical correlations ``[r]`` (descending) of ``za`` and ``zb`` ``[S, r]``; a direction
    one side lacks (rank deficiency) counts as correlation 0."""
    _check_rank(za.shape[1], za.shape[0])
    return _correlations(_centred_basis(za), _centred_basis(zb), za.shape[1])


def _correlations(qa: np.ndarray, qb: np.ndarray, r: int) -> np.ndarray:
    rho = np.zeros(r)
    if qa.shape[1] and qb.shape[1]:
        found = np.linalg.svd(qa.T @ qb, compute_uv=False)
        rho[: len(found)] = np.clip(found[:r], 0.0, 1.0)
    return rho


def principal_angles(va: np.ndarray, vb: np.ndarray) -> np.ndarray:
    """Principal angles (radians, ascending) between the spans of orthonormal ``[D, r]`` bases."""
    cos = np.linalg.svd(va.T @ vb, compute_uv=False)
    return np.arccos(np.clip(cos, -1.0, 1.0))


@dataclass(frozen=True)
class Alignment:
    """Subspace alignment of the languages for one unit and task.

    ``correlations`` ``[L, L, r]`` canonical correlations in the shared basis (descending);
    ``mean`` ``[L, L]`` their mean (diagonal 1); ``angles`` ``[L, L, r]`` principal angles in
    radians between the languages' own top-``r`` subspaces (ascending; diagonal 0);
    ``explained``: share of the gradients' squared norm the shared basis captures.

    Against chance: ``chance`` ``[L, L]``: the mean canonical correlation of each pair with the
    steps shuffled (``shuffles`` times, each language's independently); ``p_value``: the share
    of shuffles whose mean over pairs reaches the observed one.
    """

    languages: list[str]
    rank: int
    correlations: np.ndarray
    mean: np.ndarray
    angles: np.ndarray
    explained: float
    chance: np.ndarray
    p_value: float
    shuffles: int

    def _off(self, m: np.ndarray) -> float:
        L = len(self.languages)
        return float(m[~np.eye(L, dtype=bool)].mean()) if L > 1 else 1.0

    def mean_off_diagonal(self) -> float:
        """Mean canonical correlation over the language pairs."""
        return self._off(self.mean)

    def chance_level(self) -> float:
        """Mean canonical correlation over the pairs when nothing pairs up."""
        return self._off(self.chance)

    def excess(self) -> float:
        """Alignment beyond chance, ``(mean - chance) / (1 - chance)``, clipped to [0, 1]: 0 when
        the languages' update subspaces line up no better than shuffled steps."""
        chance = self.chance_level()
        if chance >= 1:
            return 0.0
        return float(np.clip((self.mean_off_diagonal() - chance) / (1 - chance), 0.0, 1.0))


def subspace_alignment(sketches: np.ndarray, languages: list[str], rank: int | None = None,
                       task: int = 0, shuffles: int = CHANCE_SHUFFLES, seed: int = 0,
                       moving: bool = False) -> Alignment:
    """Joint factorization, CCA and principal angles of ``sketches[:, :, task]`` (``[S, L, T, D]``),
    with the chance level from ``shuffles`` step shuffles; ``moving``: the model trained between
    the steps, whose detrended contrasts are paired instead (``pace.detrended_rows``; on the
    steps, the training's own trend passed for alignment in up to every simulated unit,
    docs/results.md §1e, §1i).

    ``rank`` defaults to ``default_rank`` of the rows paired; a rank they cannot support raises
    ValueError.
    """
    x = np.asarray(sketches, dtype=np.float64)[:, :, task]  # [S, L, D]
    if moving:
        x = detrended_rows(x)
    S, L, _ = x.shape
    rank = default_rank(S) if rank is None else rank
    fact = JointFactorization(rank).fit(x)
    bases = [_centred_basis(fact.projections_[l]) for l in range(L)]
    own = _own_subspaces(x, rank)                                  # [L, D, r]
    corr = np.zeros((L, L, rank))
    angles = np.zeros((L, L, rank))
    for a in range(L):
        corr[a, a] = 1.0
        for b in range(a + 1, L):
            corr[a, b] = corr[b, a] = _correlations(bases[a], bases[b], rank)
            angles[a, b] = angles[b, a] = principal_angles(own[a], own[b])
    mean = corr.mean(-1)
    rng = np.random.default_rng([seed, S, L])
    chance = np.zeros((L, L))
    reached = 0
    off = ~np.eye(L, dtype=bool)
    for _ in range(shuffles):
        # centring commutes with reordering rows: shuffle the bases' rows, not the data
        shuffled = [bases[l][rng.permutation(S)] for l in range(L)]
        once = np.eye(L)
        for a in range(L):
            for b in range(a + 1, L):
                once[a, b] = once[b, a] = _correlations(shuffled[a], shuffled[b], rank).mean()
        chance += once / shuffles
        reached += once[off].mean() >= mean[off].mean() - 1e-12 if L > 1 else 1
    return Alignment(list(languages), rank, corr, mean, angles, fact.explained_, chance,
                     (1 + reached) / (1 + shuffles), shuffles)
