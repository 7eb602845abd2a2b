"""Language divergence with a null that holds (GDPS strategy 2), cross-task divergence, conflict.

Inputs are one unit's sketches ``[S, L, T, D]`` (steps, languages, tasks, sketch coordinates),
as ``gradlens.evidence.unit_sketches`` reads them. Pure numpy.

**Noise-corrected similarity.** Language ``a``'s gradient at step ``s`` is ``x_sa = mu_a +
noise``. Raw cosines of mean gradients are attenuated by each language's own noise, so a noisy
language looks far from every other even when all share one mean. Products of *different*
steps carry no noise, so

    G_ab = sum_{s != t} <x_sa, x_tb> / (S (S - 1))

is an unbiased estimate of ``<mu_a, mu_b>``, and ``rho_ab = G_ab / sqrt(G_aa G_bb)`` (clipped to
[-1, 1]) estimates the cosine of the noise-free means: the disattenuated similarity. A language
with ``G_aa <= 0`` shows no signal beyond its noise in this unit; its similarities are 0.

**Divergence** ``delta = mean_{a<b} (1 - rho_ab)``: 0 when every language's mean gradient points
one way, whatever its noise or scale.

**Null (what noise alone gives).** The languages share one direction: ``mu_l = c_l u`` (scales
may differ, as losses do). Null data keep each language's own noise and the noise shared within
a step (the same numbers, the same parameters): ``x*_jl = c_l u + v_j z_jl``, where ``z_j`` are the ``S - 1``
Helmert contrasts of the steps (independent noise vectors, free of the means) and ``v_j`` one
random sign per contrast (a wild bootstrap; steps are the resampling unit). ``p`` is the share of null replicates at least as divergent as the data
(up to 1999 of them, fewer once 10 have reached it: a sequential test). The
issue's first proposal, permuting language labels within each step, is not valid here: it
assumes languages are exchangeable, and languages whose gradients differ in scale are not
(``bench/calibration.py`` prints both: 44 % false positives at 14 languages for the permutation,
at most 5 % for the sign flips).

**Uncertainty.** Steps are resampled with replacement (the same multiplicities for every module
of a run, so a layer's replicate is the sum of its modules'); products of a step with its own
copies are left out as in ``G``. ``excess = delta - null_mean`` and its 95 % interval (the
replicates' percentiles minus ``null_mean``) say how much divergence there is beyond noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from gradlens.analysis.pace import level_pace
from gradlens.errors import NotEnoughData

NULL_REPLICATES = 1999
STOP_HITS = 10
BOOT_REPLICATES = 200
CI_LEVEL = 0.95


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of ``[..., D]`` arrays (0 where either is zero)."""
    num = (a * b).sum(-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


# -- the noise-corrected Gram matrix ------------------------------------------------------------
def step_grams(y: np.ndarray) -> np.ndarray:
    """``[S, L, L]``: each step's inner products between languages, from ``y`` ``[S, L, r]``.

    A batched matrix product (BLAS), not ``einsum``: 10x faster for a 32-language layer,
    where this is most of a bootstrap's cost."""
    return y @ y.transpose(0, 2, 1)


def step_coordinates(x: np.ndarray, passes: int | None = None) -> np.ndarray:
    """``[S, L, r]`` coordinates with the same inner products as ``x`` ``[S, L, D]``,
    ``r <= S * L`` (an orthonormal basis of the span of the ``S * L`` vectors): all the
    statistics here are functions of inner products, and this makes them cheap for any ``D``.

    The basis itself costs about ``(S L)^2 (D + S L)``; each of the caller's ``passes`` over
    the coordinates (bootstrap or null replicates) then saves ``S L (D - r)``. With ``passes``
    given, ``x`` comes back as it is unless the basis pays for itself: a 5-module layer of a
    32-language, 100-step run (``S L = 3200``, ``D = 5120``) took 4.3 s to reduce for 200
    bootstrap passes that cost 0.9 s without it."""
    S, L, D = x.shape
    if D <= S * L:
        return x
    if passes is not None and S * L * (D + S * L) >= passes * (D - S * L):
        return x
    flat = x.reshape(S * L, D)
    w, v = np.linalg.eigh(flat @ flat.T)
    keep = w > max(w[-1], 0.0) * 1e-12
    return (v[:, keep] * np.sqrt(w[keep])).reshape(S, L, -1)


def corrected_gram(y: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Unbiased ``<mu_a, mu_b>`` ``[..., L, L]`` from ``y`` ``[S, L, r]``: products of different
    steps only. ``weights`` ``[B, S]``: step multiplicities of ``B`` bootstrap replicates (a step
    is never paired with its own copies); ``None``: every step once."""
    S, L, r = y.shape
    flat = y.reshape(S, L * r)
    own = step_grams(y).reshape(S, L * L)                            # [S, L*L]
    if weights is None:
        total = flat.sum(0).reshape(L, r)
        return (total @ total.T - own.sum(0).reshape(L, L)) / (S * (S - 1))
    w = np.asarray(weights, dtype=np.float64)
    total = (w @ flat).reshape(-1, L, r)                            # [B, L, r]
    pairs = w.sum(1) ** 2 - (w ** 2).sum(1)                         # [B]
    gram = total @ total.transpose(0, 2, 1) - ((w ** 2) @ own).reshape(-1, L, L)
    return gram / np.where(pairs > 0, pairs, np.nan)[:, None, None]


def paired_gram(y: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Covariance ``[..., L, L]`` of the languages' per-step gradients over the steps, from
    ``y`` ``[S, L, r]``: how alike the languages respond to the same batch (steps are paired,
    the same numbers in every language). ``weights`` ``[B, S]``: bootstrap multiplicities."""
    S, L, r = y.shape
    w = np.ones((1, S)) if weights is None else np.asarray(weights, dtype=np.float64)
    n = w.sum(1)                                                    # [B]
    flat = y.reshape(S, L * r)
    mean = (w @ flat / n[:, None]).reshape(-1, L, r)                # [B, L, r]
    own = step_grams(y).reshape(S, L * L)
    second = (w @ own).reshape(-1, L, L)                            # sum_s w_s y_s y_s^T
    cov = (second - n[:, None, None] * mean @ mean.transpose(0, 2, 1)) / (n - 1)[:, None, None]
    return cov[0] if weights is None else cov


def corrected_similarity(gram: np.ndarray) -> np.ndarray:
    """``rho`` ``[..., L, L]`` from Gram matrices (corrected, or the covariances of
    ``paired_gram``): ``G_ab / sqrt(G_aa G_bb)`` clipped to [-1, 1], 0 for a language without
    signal (``G_aa <= 0``), diagonal 1."""
    g = np.asarray(gram, dtype=np.float64)
    d = np.diagonal(g, axis1=-2, axis2=-1)
    ok = d > 0
    sd = np.sqrt(np.where(ok, d, 1.0))
    rho = np.clip(g / sd[..., :, None] / sd[..., None, :], -1.0, 1.0)
    rho = np.where(ok[..., :, None] & ok[..., None, :], rho, 0.0)
    L = g.shape[-1]
    rho[..., np.arange(L), np.arange(L)] = 1.0
    return np.nan_to_num(rho, nan=0.0)


COMMON_MIN_LANGUAGES = 5  # below, a one-factor model leaves too few degrees of freedom
NO_COMMON_RESPONSE = 1e-3  # the communality's floor: a language at it shares no response


def one_factor_communality(rho: np.ndarray, tolerance: float = 1e-6,
                           max_iterations: int = 100) -> np.ndarray:
    """``h`` ``[..., L]``: each language's share of variance in one factor common to all,
    fitted to the off-diagonal correlations ``rho`` ``[..., L, L]`` by iterated principal axes
    (the diagonal replaced by ``h``, ``h`` by the top eigenpair's ``w v^2``, kept in
    [``NO_COMMON_RESPONSE``, 1]) until ``h`` moves less than ``tolerance`` (or
    ``max_iterations``: what converges slowly is a fit at its bounds; at 5 languages one
    bootstrap replicate in 200 had not settled by 100, at 8 or more all were within 1e-5).

    The top eigenvector is followed by power steps from the last one (one full
    eigendecomposition to start): 25-30x faster than an eigh per iteration at 32 languages and
    200 bootstrap replicates, to the same fixed point."""
    r = np.array(rho, dtype=np.float64)
    L = r.shape[-1]
    idx = np.arange(L)
    h = np.abs(np.where(np.eye(L, dtype=bool), 0.0, r)).max(-1)
    r[..., idx, idx] = h
    v = np.linalg.eigh(r)[1][..., :, -1]
    for _ in range(max_iterations):
        r[..., idx, idx] = h
        rv = (r @ v[..., None])[..., 0]
        v = rv / np.maximum(np.linalg.norm(rv, axis=-1, keepdims=True), 1e-300)
        rv = (r @ v[..., None])[..., 0]
        w = (v * rv).sum(-1)                                        # the Rayleigh quotient
        new = np.clip(w[..., None] * v ** 2, NO_COMMON_RESPONSE, 1.0)
        v = rv / np.maximum(np.linalg.norm(rv, axis=-1, keepdims=True), 1e-300)
        moved = np.abs(new - h).max()
        h = new
        if moved < tolerance:
            break
    return h


def common_response_similarity(cov: np.ndarray) -> np.ndarray:
    """Paired-step correlations ``[..., L, L]`` from their covariances (``paired_gram``),
    corrected for each language's own noise: ``r_ab / sqrt(h_a h_b)`` clipped to [-1, 1], with
    ``h`` the languages' one-factor communalities (``one_factor_communality``).

    A language's per-step gradient is its response to the batch, which every language shares
    in part, plus noise of its own; the noisier it is, the lower its raw correlation with every
    other language, so raw correlations group the quiet languages together (a "supported" clade
    in every simulated unit with 8 or 14 languages that shared one response). Under one common
    response the corrected value is 1 for every pair; a pair falls below 1 when it does not
    share what the others share. A language whose communality sits at its floor shares no
    response with the others, and its similarity to each is 0 (as a language without signal
    gets in ``corrected_similarity``), not its noise divided by nearly nothing. Fewer than 3
    languages: the raw correlations."""
    r = corrected_similarity(cov)
    L = r.shape[-1]
    if L < 3:
        return r
    h = one_factor_communality(r)
    sd = np.sqrt(h)
    rho = np.clip(r / sd[..., :, None] / sd[..., None, :], -1.0, 1.0)
    shares = h > NO_COMMON_RESPONSE
    rho = np.where(shares[..., :, None] & shares[..., None, :], rho, 0.0)
    rho[..., np.arange(L), np.arange(L)] = 1.0
    return rho


def divergence_of(gram: np.ndarray) -> np.ndarray:
    """``delta`` ``[...]``: mean over language pairs of ``1 - rho``."""
    rho = corrected_similarity(gram)
    L = rho.shape[-1]
    iu = np.triu_indices(L, 1)
    return (1.0 - rho[..., iu[0], iu[1]]).mean(-1)


def bootstrap_weights(steps: int, replicates: int = BOOT_REPLICATES, seed: int = 0) -> np.ndarray:
    """``[B, S]`` multiplicities of steps drawn with replacement (seeded: every module of a run
    gets the same draws, so replicates add over modules). A draw of one step repeated is drawn
    again: it holds no pair of different steps, so no noise-corrected gram and no covariance,
    and every path that resamples (divergence, trees, groups' support, drift) drops it alike."""
    rng = np.random.default_rng([seed, steps, 1])
    w = rng.multinomial(steps, np.full(steps, 1.0 / steps), size=replicates)
    if steps > 1:
        while (bad := np.flatnonzero((w > 0).sum(1) < 2)).size:
            w[bad] = rng.multinomial(steps, np.full(steps, 1.0 / steps), size=bad.size)
    return w.astype(np.float64)


def helmert(steps: int) -> np.ndarray:
    """``[S - 1, S]`` orthonormal contrasts (rows orthogonal to the all-ones vector)."""
    h = np.zeros((steps - 1, steps))
    for j in range(1, steps):
        h[j - 1, :j] = 1.0
        h[j - 1, j] = -float(j)
        h[j - 1] /= np.sqrt(j * (j + 1))
    return h


def null_divergence(y: np.ndarray, replicates: int = NULL_REPLICATES, seed: int = 0,
                    chunk: int = 200, observed: float | None = None,
                    enough: int = STOP_HITS, grams: "_NullGrams | None" = None) -> np.ndarray:
    """``[B]`` divergences of null data sharing one direction (module docstring), from ``y``
    ``[S, L, r]``. All ``2^(S-1)`` sign vectors when that is at most ``replicates``.

    With ``observed``, drawing stops once ``enough`` replicates reach it (a sequential Monte
    Carlo test, Besag & Clifford 1991): a module far from significance is settled in a few
    hundred replicates, and only the promising ones pay for all of them.

    The noise of the null data is the data's own, as ``S - 1`` Helmert contrasts of the steps:
    independent, mean-free noise vectors with each language's noise and the step-shared noise
    intact. Plain residuals ``x_s - mean`` would not do: they sum to zero, so every pair of them
    has an inner product of about ``-D sigma^2 / S``, which inflates the null when ``D`` is
    large against ``S^2``. The null then has ``S - 1`` steps; its means are scaled by
    ``sqrt(S / (S - 1))`` so that their signal-to-noise ratio is the data's.

    ``grams``: the null data of ``y`` already set up (``_NullGrams(y)``), for a caller that
    also wants its Grams (``null_grams``).
    """
    signs, exhaustive = _null_signs(y.shape[0], replicates, seed)
    grams = _NullGrams(y) if grams is None else grams
    out, reached = [], 0
    for lo in range(0, len(signs), chunk):
        out.append(divergence_of(grams(signs[lo: lo + chunk])))
        if observed is not None and not exhaustive:
            reached += int((out[-1] >= observed - 1e-12).sum())
            if reached >= enough:
                break
    return np.concatenate(out)


NULL_GRAMS = 99  # null replicates kept per module for the tests of a similarity's structure


def null_grams(y: np.ndarray, replicates: int = NULL_GRAMS, seed: int = 0,
               grams: "_NullGrams | None" = None) -> np.ndarray:
    """``[B, L, L]`` corrected Grams of the same null data as ``null_divergence`` (the
    languages share one direction; each keeps its own scale and noise), from ``y``
    ``[S, L, r]``. The sign vectors depend only on ``S`` and ``seed``, so every module of a run
    gets the same ones and a unit's null Grams are the sum of its modules': what a similarity
    looks like when only the languages' noise and scales shape it (the Mantel test's second
    null, ``gradlens.analysis.typology``). ``grams``: as for ``null_divergence``."""
    signs, _ = _null_signs(y.shape[0], replicates, seed)
    return (_NullGrams(y) if grams is None else grams)(signs)


def _all_signs(n: int) -> np.ndarray:
    """``[2^n, n]``: every vector of ``n`` signs, the all-plus one first."""
    return 1.0 - 2.0 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)


def _null_signs(steps: int, replicates: int, seed: int) -> tuple[np.ndarray, bool]:
    """``[B, S - 1]`` signs of the null's Helmert contrasts (all ``2^(S-1)`` when that is at most
    ``replicates``), and whether they are all of them."""
    n = steps - 1
    if 2 ** n <= replicates:
        return _all_signs(n), True
    return np.random.default_rng([seed, steps, 2]).choice([-1.0, 1.0], size=(replicates, n)), False


class _NullGrams:
    """The null data of ``y`` ``[S, L, r]`` (``null_divergence``'s docstring), called with
    signs ``[b, S - 1]`` for their corrected Grams ``[b, L, L]``."""

    def __init__(self, y: np.ndarray):
        S, L, r = y.shape
        z = (helmert(S) @ y.reshape(S, L * r)).reshape(S - 1, L, r)     # [S-1, L, r]
        n = S - 1
        mean = y.mean(0)                                                # [L, r]
        # the pooled language (each weighted by its inverse noise) carries the shared direction
        noise = np.sqrt((z ** 2).sum((0, 2)) / n)                       # per-language noise norm
        weight = np.where(noise > 0, 1.0 / np.where(noise > 0, noise, 1.0), 0.0)
        pooled = np.concatenate([y, (weight[None, :, None] * y).sum(1, keepdims=True)], axis=1)
        g = corrected_gram(pooled)                                      # [L+1, L+1]
        # c_l = <mu_l, mu_pool> / |mu_pool|: far more precise than sqrt(G_ll) in high dimension
        scale = np.clip(g[:L, L], 0.0, None) / np.sqrt(g[L, L]) if g[L, L] > 0 else np.zeros(L)
        u = mean.T @ weight
        norm = np.linalg.norm(u)
        self.nu = np.sqrt(S / n) * scale[:, None] * (u / norm if norm > 0 else u)[None]  # [L, r]
        self.n, self.L, self.r = n, L, r
        self.flat = z.reshape(n, L * r)
        self.cross = (self.nu @ z.transpose(0, 2, 1) + z @ self.nu.T).reshape(n, L * L)
        self.fixed = n * self.nu @ self.nu.T + step_grams(z).sum(0)

    def __call__(self, v: np.ndarray) -> np.ndarray:
        n, L, r = self.n, self.L, self.r
        total = n * self.nu[None] + (v @ self.flat).reshape(-1, L, r)
        own = self.fixed[None] + (v @ self.cross).reshape(-1, L, L)
        return (total @ total.transpose(0, 2, 1) - own) / (n * (n - 1))


def monte_carlo_p(null: np.ndarray, observed: float) -> float:
    """``(1 + h) / (1 + B)`` for ``h`` of the ``B`` replicates drawn reaching ``observed``: at
    least Besag & Clifford's ``h / B`` when drawing stopped early, so never smaller."""
    return (1 + int((null >= observed - 1e-12).sum())) / (1 + len(null))


@dataclass(frozen=True)
class Divergence:
    """How far the languages' mean gradients diverge for one unit and task, beyond noise.

    ``similarity`` ``[L, L]``: noise-corrected cosines ``rho``; ``cross`` ``[L, L]``: ``1 - rho``
    per pair (diagonal 0); ``divergence``: their mean over pairs; ``null_mean``: its mean when
    the languages share one direction (what noise alone gives); ``excess`` and ``excess_ci``:
    ``divergence - null_mean`` with its bootstrap interval over steps; ``p_value``: the share of
    null replicates at least as divergent (``replicates`` of them).

    Per language: ``self_div`` ``[L]`` = ``1 - cos(o_l, e_l)`` of its odd- and even-step means
    (how noisy it is); ``reliability`` ``[L]`` = ``G_ll / |mean_l|^2``, the share of its mean
    gradient that is signal (at most 1; ``<= 0``: no signal, its similarities are 0).

    ``gram`` ``[L, L]``: the corrected Gram ``G``, and ``boot_grams`` ``[B, L, L]`` its
    bootstrap replicates: both add over modules, so a layer's similarity and support follow from
    its modules'. ``null_grams`` ``[NULL_GRAMS, L, L]``: the Grams of the null's data
    (``null_grams``), which add over modules the same way.
    """

    languages: list[str]
    gram: np.ndarray
    similarity: np.ndarray
    cross: np.ndarray
    divergence: float
    null_mean: float
    excess_ci: tuple[float, float]
    p_value: float
    replicates: int
    self_div: np.ndarray
    reliability: np.ndarray
    boot_grams: np.ndarray
    null_grams: np.ndarray | None = None

    @property
    def excess(self) -> float:
        return self.divergence - self.null_mean

    @property
    def no_signal(self) -> list[str]:
        """Languages whose mean gradient in this unit is indistinguishable from noise."""
        return [lang for lang, r in zip(self.languages, self.reliability) if not r > 0]

    def pairs(self) -> list[tuple[str, str, float]]:
        """Language pairs with their divergence ``1 - rho``, most divergent first."""
        L = len(self.languages)
        out = [(self.languages[a], self.languages[b], float(self.cross[a, b]))
               for a in range(L) for b in range(a + 1, L)]
        return sorted(out, key=lambda p: -p[2])


def language_divergence(sketches: np.ndarray, languages: list[str], task: int = 0,
                        replicates: int = NULL_REPLICATES, seed: int = 0,
                        moving: bool = False) -> Divergence:
    """Divergence of ``sketches[:, :, task]`` (``[S, L, T, D]``; at least 3 steps, 2 languages);
    ``moving``: the model trained between the steps, whose languages' paces are levelled first
    (``pace.level_pace``; without it, languages sharing the direction at every step were
    called divergent in up to 46 % of simulated units, docs/results.md §1b, §1i).

    The interval resamples steps with ``bootstrap_weights(S, seed=seed)``: the same draws for
    every module analysed with the same seed, so their replicates add.
    """
    x = np.asarray(sketches, dtype=np.float64)[:, :, task]         # [S, L, D]
    if moving:
        x = level_pace(x)
    S, L = x.shape[:2]
    if S < 3:
        raise NotEnoughData(f"divergence needs at least 3 completed steps (noise is measured between "
                         f"steps), the run has {S}")
    if L < 2:
        raise NotEnoughData(f"divergence needs at least 2 languages, got {L}")
    y = step_coordinates(x)
    gram = corrected_gram(y)
    rho = corrected_similarity(gram)
    delta = float(divergence_of(gram))
    setup = _NullGrams(y)
    null = null_divergence(y, replicates, seed, observed=delta, grams=setup)
    boot = corrected_gram(y, bootstrap_weights(S, seed=seed))
    boot_delta = divergence_of(boot)
    alpha = (1 - CI_LEVEL) / 2
    null_mean = float(null.mean())
    # replicates of fewer distinct steps are noisier and so more divergent: centre their spread
    # on delta (percentiles shifted by the replicates' median bias)
    q_lo, q_med, q_hi = np.quantile(boot_delta, [alpha, 0.5, 1 - alpha])
    lo, hi = q_lo - q_med + delta - null_mean, q_hi - q_med + delta - null_mean
    odd, even = x[0::2].mean(0), x[1::2].mean(0)
    mean_sq = (x.mean(0) ** 2).sum(-1)
    reliability = np.where(mean_sq > 0, np.diag(gram) / np.where(mean_sq > 0, mean_sq, 1.0), 0.0)
    return Divergence(
        languages=list(languages), gram=gram, similarity=rho, cross=1.0 - rho, divergence=delta,
        null_mean=null_mean, excess_ci=(float(lo), float(hi)),
        p_value=monte_carlo_p(null, delta),
        replicates=len(null), self_div=1.0 - _cos(odd, even), reliability=reliability,
        boot_grams=boot.astype(np.float32),
        null_grams=null_grams(y, seed=seed, grams=setup).astype(np.float32))


def bh_qvalues(p_values) -> np.ndarray:
    """Benjamini–Hochberg q-values ``[M]`` of ``p_values`` ``[M]`` (false discovery rate across
    the modules tested together): ``q_(i) = min_{j >= i} p_(j) M / j``."""
    p = np.asarray(p_values, dtype=np.float64)
    M = len(p)
    if M == 0:
        return p
    order = np.argsort(p)
    scaled = p[order] * M / np.arange(1, M + 1)
    q = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(M)
    out[order] = np.clip(q, 0.0, 1.0)
    return out


# -- tasks --------------------------------------------------------------------------------------
CONFLICT_FLIPS = 9999


@lru_cache(maxsize=4)
def _sign_flips(steps: int, flips: int, seed: int) -> np.ndarray:
    """``[B, S]`` signs: all ``2^S`` sign vectors when that is at most ``flips``, else ``flips``
    drawn (seeded, so every module of a run is tested against the same flips)."""
    if 2 ** steps <= flips:
        out = _all_signs(steps)
    else:
        out = np.random.default_rng([seed, steps, 3]).choice([-1.0, 1.0], size=(flips, steps))
    out.flags.writeable = False
    return out


def sign_flip_draws(steps: int, flips: int = CONFLICT_FLIPS) -> int:
    """How many sign vectors besides the data's own ``sign_flip_p`` weighs for ``steps``
    values: all ``2^S - 1`` others when they are at most ``flips``, else ``flips`` drawn; its p is
    never below ``1 / (1 + draws)``."""
    return 2 ** steps - 1 if 2 ** steps <= flips else flips


def sign_flip_p(values: np.ndarray, flips: int = CONFLICT_FLIPS, seed: int = 0) -> float:
    """One-sided p that the mean of ``values`` ``[S]`` (independent, symmetric about their mean)
    is below 0: the share of sign flips whose mean is at most the observed one, all ``2^S``
    of them when that is at most ``flips`` (the identity among them), else
    ``(1 + h) / (1 + B)`` over ``flips`` drawn."""
    v = np.asarray(values, dtype=np.float64)
    signs = _sign_flips(len(v), flips, seed)
    hits = int((signs @ v <= v.sum() + 1e-12).sum())
    return hits / len(signs) if 2 ** len(v) <= flips else (1 + hits) / (1 + flips)


@dataclass(frozen=True)
class Conflict:
    """Primary/auxiliary task cosines of one unit.

    ``cosine`` ``[S, L]``: cos(g_primary, g_aux) per step and language; ``rate``: the fraction
    of those below zero (where MGCM projects the auxiliary gradient).

    **Its null.** A module conflicts *systematically* when its step cosine (averaged over the
    languages; steps are independent batches) is below 0 on average beyond step-to-step noise:
    ``p_value`` is the one-sided sign-flip test of that mean (``sign_flip_p``), ``mean_ci`` and
    ``rate_ci`` the 95 % intervals of the mean cosine and of the rate over the run's shared
    bootstrap draws of steps. A rate near 0.5 with a mean cosine near 0 is what two unrelated
    noisy gradients give; the rate alone says how often MGCM would project, not that the tasks
    disagree. ``bench/calibration.py --only conflict`` measures its false positives and power.
    """

    languages: list[str]
    cosine: np.ndarray
    rate: float
    rate_by_language: np.ndarray

    @property
    def mean_cosine(self) -> np.ndarray:
        """``[S]``: the cosine per step, averaged over the languages."""
        return self.cosine.mean(axis=1)

    @property
    def mean(self) -> float:
        """The step cosine averaged over the steps (and languages)."""
        return float(self.mean_cosine.mean())

    def _interval(self, per_step: np.ndarray) -> tuple[float, float]:
        w = bootstrap_weights(len(per_step))
        lo, hi = np.percentile(w @ per_step / len(per_step), [2.5, 97.5])
        return float(lo), float(hi)

    @cached_property
    def mean_ci(self) -> tuple[float, float]:
        return self._interval(self.mean_cosine)

    @cached_property
    def rate_ci(self) -> tuple[float, float]:
        return self._interval((self.cosine < 0).mean(axis=1))

    @cached_property
    def p_value(self) -> float:
        return sign_flip_p(self.mean_cosine)

    @property
    def flips(self) -> int:
        """The sign vectors ``p_value`` was weighed against (``sign_flip_draws``)."""
        return sign_flip_draws(len(self.mean_cosine))


def task_conflict(sketches: np.ndarray, languages: list[str], primary: int = 0, aux: int = 1) -> Conflict:
    """Conflict between task ``primary`` (ST) and ``aux`` (ASR) in ``sketches [S, L, T, D]``."""
    x = np.asarray(sketches, dtype=np.float64)
    if x.shape[2] <= max(primary, aux):
        raise NotEnoughData(f"the run has {x.shape[2]} task(s); conflict needs tasks {primary} and {aux}")
    cos = _cos(x[:, :, primary], x[:, :, aux])  # [S, L]
    neg = cos < 0
    return Conflict(list(languages), cos, float(neg.mean()), neg.mean(axis=0))


@dataclass(frozen=True)
class TaskDivergence:
    """How far a unit's two tasks pull it apart on average, per language, beyond noise.

    ``cosine`` ``[L]``: the noise-corrected cosine of each language's primary and auxiliary
    mean gradients, ``G_pa / sqrt(G_pp G_aa)`` from ``corrected_gram`` (products of different
    steps only, so neither task's own noise nor the noise the two share through the same
    utterances enters it; 0 where either task shows no signal). It is not clipped: clipped at
    1, tasks that share one direction would always read below 1 (an interval below 1 in every
    simulated unit), so noise may carry a value a little past 1. ``boot`` ``[B]``: their mean
    over the languages in each of the run's shared bootstrap draws of steps.

    ``mean`` near 1: the tasks pull the unit one way (the null of no task divergence); 0:
    unrelated directions; below 0: opposed on average, a conflict of the means that the
    per-step conflict test does not see when the two tasks' noise is shared (it keeps each
    step's cosine positive). Unlike the ratio of cross to self divergence it replaced, it does
    not grow with the signal-to-noise ratio: a ratio ranked modules by how surely, not how
    far, their tasks differ (docs/results.md §1j). ``bench/calibration.py --only task`` measures
    the interval's coverage.
    """

    languages: list[str]
    cosine: np.ndarray
    boot: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.cosine.mean())

    @cached_property
    def mean_ci(self) -> tuple[float, float]:
        """The 95 % interval of ``mean`` over the bootstrap draws of steps."""
        lo, hi = np.percentile(self.boot, [2.5, 97.5])
        return float(lo), float(hi)


def task_divergence(sketches: np.ndarray, languages: list[str], primary: int = 0,
                    aux: int = 1, moving: bool = False) -> TaskDivergence:
    """Cross-task divergence between tasks ``primary`` and ``aux`` of ``sketches [S, L, T, D]``;
    ``moving``: the model trained between the steps, so each (language, task)'s pace is levelled
    first (``pace.level_pace``), as the language divergence test's is."""
    x = np.asarray(sketches, dtype=np.float64)
    if x.shape[2] <= max(primary, aux):
        raise NotEnoughData(f"the run has {x.shape[2]} task(s); cross-task divergence needs tasks "
                            f"{primary} and {aux}")
    S, L = x.shape[:2]
    if S < 2:
        raise NotEnoughData(f"cross-task divergence needs at least 2 steps, the run has {S}")
    y = x[:, :, [primary, aux]].reshape(S, 2 * L, -1)                 # (language, task) units
    y = (level_pace(y) if moving else y).reshape(S, L, 2, -1)
    w = bootstrap_weights(S)
    # each language's own 2 x 2 Gram only (its tasks against each other), point and replicates
    g = np.stack([np.concatenate([corrected_gram(y[:, i])[None], corrected_gram(y[:, i], w)])
                  for i in range(L)], axis=1)                        # [1 + B, L, 2, 2]
    pp, aa, pa = g[..., 0, 0], g[..., 1, 1], g[..., 0, 1]               # [1 + B, L]
    ok = (pp > 0) & (aa > 0)
    cosine = np.where(ok, pa / np.sqrt(np.where(ok, pp * aa, 1.0)), 0.0)
    cosine = np.nan_to_num(cosine, nan=0.0)
    return TaskDivergence(list(languages), cosine[0], cosine[1:].mean(1))
