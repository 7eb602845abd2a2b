"""Calibration of the divergence test on simulated gradients with a planted truth.

A simulated unit: ``S`` steps, ``L`` languages, ``D`` sketch coordinates. Each language's
gradient at a step is its mean plus noise shared by the step (the same numbers and parameters
for every language) plus its own noise, whose scale differs by language (1-3x by default):

    x_sl = c_l mu_l + eta_s + sigma_l eps_sl

``mu_l`` is one direction for every language (the null), or, with ``effect`` > 0, the second
half of the languages (a planted group) pull towards another direction: ``mu = sqrt(1 - effect)
u + sqrt(effect) w`` with ``w`` orthogonal to ``u``, so ``effect`` is ``1 - cos`` between the two
groups' true means. ``scales`` lets the languages' gradient scales ``c_l`` differ (as their
losses do) while sharing a direction.

A run that trains between its probe steps moves the model, and every language with it: steps
are then not exchangeable. ``drift`` rotates the shared direction over the steps (``1 - cos``
between the first and the last step's, every language alike, the planted group keeping its
angle to the rest), and ``scale_drift`` lets each language's scale change over the steps by its
own factor (drawn in the range, reached at the last step), as languages' losses fall at their
own pace: along a straight line, or with ``scale_bend`` = k > 0 along ``1 - exp(-k t)`` (most
of the change early, as a loss falls fast and then levels off).

``group_response`` gives the planted group (the second half of the languages) a response of
its own to each step's batch on top of the one all share (``eta_s``): paired-step structure,
with one mean for every language.

``nuisance_by_group`` ties the languages' noise, scale and scale drift to the planted group
(the second half takes each range's high end, the rest its low end) without any difference in
direction: one family's data noisier, its loss larger, falling at its own pace.

``rejection_rate`` gives the share of simulated units whose test rejects at ``alpha``: the
false-positive rate under the null, the power under a planted effect. ``bench/calibration.py``
prints them; ``tests/test_divergence.py`` runs small seeded versions.

``clade_rates`` does the same for the tree's bootstrap support: how often a supported clade
shows where none was planted, how often the planted group is one.

``alignment_rates`` does it for the CCA alignment test (``Alignment.p_value``, steps shuffled):
its null is that nothing pairs the languages' steps (``step_noise = 0``, no response to the
batch that languages share); ``step_noise`` > 0 plants one.

``mantel_rates`` does it for the Mantel test of a unit's gradient distance against URIEL (the
Dendrograms page's): the simulated languages get real codes, the second half one family, so a
planted group is a family and a nuisance can follow one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradlens.analysis.alignment import subspace_alignment
from gradlens.analysis.clustering import cluster_similarity
from gradlens.analysis.divergence import (bootstrap_weights, corrected_gram,
                                          corrected_similarity, divergence_of,
                                          language_divergence, step_coordinates, task_conflict,
                                          task_divergence)
from gradlens.analysis.evidence import sketch_null_similarity, sketch_similarity
from gradlens.analysis.gain import between_group_energy, held_out_gain
from gradlens.analysis.grouping import LanguageGrouping
from gradlens.analysis.typology import FEATURE_SETS, agreement_of


@dataclass(frozen=True)
class Scenario:
    """One simulated setting. ``snr``: the mean's norm against one step's noise norm at
    ``sigma = 1``, times ``sqrt(S)`` (so ``snr = 1`` is a mean as large as the noise of a
    ``S``-step average)."""

    languages: int
    steps: int = 20
    dim: int = 256
    noise: tuple[float, float] = (1.0, 3.0)
    scales: tuple[float, float] = (1.0, 1.0)
    step_noise: float = 1.0
    snr: float = 3.0
    effect: float = 0.0
    drift: float = 0.0
    scale_drift: tuple[float, float] = (1.0, 1.0)
    group_response: float = 0.0
    nuisance_by_group: bool = False
    own_direction: float = 0.0
    scale_bend: float = 0.0

    @property
    def moves(self) -> bool:
        """Whether the simulated model trains between its probe steps."""
        return self.drift > 0 or self.scale_drift != (1.0, 1.0)


def _pace(steps: int, bend: float) -> np.ndarray:
    """``[S]`` how far a language's scale has moved to its last-step factor at each step: from 0
    to 1 along a straight line, or along ``1 - exp(-bend t)`` (rescaled to end at 1)."""
    t = np.linspace(0, 1, steps)
    return t if bend <= 0 else (1 - np.exp(-bend * t)) / (1 - np.exp(-bend))


def simulate(sc: Scenario, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """One unit's sketches ``[S, L, 1, D]`` and its true divergence (mean ``1 - cos`` of the true
    means over language pairs)."""
    x, directions, _ = simulate_means(sc, rng)
    cos = directions @ directions.T
    iu = np.triu_indices(sc.languages, 1)
    return x, float((1 - cos[iu]).mean())


def simulate_means(sc: Scenario, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One unit's sketches ``[S, L, 1, D]``, the languages' true directions ``[L, D]`` (unit
    norm) and their true mean gradients ``[S, L, D]`` at each step."""
    L, S, D = sc.languages, sc.steps, sc.dim
    u = rng.standard_normal(D)
    u /= np.linalg.norm(u)
    w = rng.standard_normal(D)
    w -= (w @ u) * u
    w /= np.linalg.norm(w)
    directions = np.repeat(u[None], L, 0)
    if sc.effect > 0:
        directions[L // 2:] = np.sqrt(1 - sc.effect) * u + np.sqrt(sc.effect) * w
    if sc.own_direction > 0:
        # every language also pulls its own way (drawn only here, so the other scenarios'
        # draws stay as they were): divergence with no group to find
        z = rng.standard_normal((L, D))
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        directions = np.sqrt(1 - sc.own_direction) * directions + np.sqrt(sc.own_direction) * z
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    size = sc.snr * np.sqrt(D) / np.sqrt(S)
    scales = _by_group(rng.uniform(*sc.scales, size=L), sc.scales, sc.nuisance_by_group)
    means = (directions * size * scales[:, None])[None]                            # [1, L, D]
    if sc.drift > 0 or sc.scale_drift != (1.0, 1.0):
        # training between steps (drawn only here, so the other scenarios' draws stay as they
        # were): the shared direction turns in the (u, v) plane, every language alike, and each
        # language's scale moves from 1 to its own factor at the last step
        v = rng.standard_normal(D)
        v -= (v @ u) * u + (v @ w) * w
        v /= np.linalg.norm(v)
        angle = np.arccos(1 - sc.drift) * np.linspace(0, 1, S)[:, None, None]     # [S, 1, 1]
        along = means @ u                                                          # [1, L]
        means = means + along[:, :, None] * ((np.cos(angle) - 1) * u + np.sin(angle) * v)
        factor = _by_group(rng.uniform(*sc.scale_drift, size=L), sc.scale_drift,
                           sc.nuisance_by_group)
        means = means * (1 + _pace(S, sc.scale_bend)[:, None] * (factor - 1))[:, :, None]
    sigma = _by_group(rng.uniform(*sc.noise, size=L), sc.noise, sc.nuisance_by_group)
    x = (means + sc.step_noise * rng.standard_normal((S, 1, D))
         + sigma[None, :, None] * rng.standard_normal((S, L, D)))
    if sc.group_response > 0:
        # the planted group (second half) also shares a response of its own to each batch, as
        # related languages' cognates might: what the paired similarity looks for
        x[:, L // 2:] += sc.group_response * rng.standard_normal((S, 1, D))
    return x[:, :, None, :], directions, np.broadcast_to(means, (S, L, D))


def _by_group(drawn: np.ndarray, bounds: tuple[float, float], by_group: bool) -> np.ndarray:
    """``drawn`` (one value per language), or with ``by_group`` the range's low end for the
    first half of the languages and its high end for the planted group (the second half)."""
    if not by_group:
        return drawn
    half = len(drawn) // 2
    return np.where(np.arange(len(drawn)) < half, bounds[0], bounds[1])


def permutation_p(sketches: np.ndarray, replicates: int, seed: int) -> float:
    """The rejected alternative, for comparison: the same divergence, its null made by permuting
    the language labels within each step (valid only if languages are exchangeable)."""
    y = step_coordinates(np.asarray(sketches, dtype=np.float64)[:, :, 0])
    S, L, _ = y.shape
    observed = float(divergence_of(corrected_gram(y)))
    rng = np.random.default_rng(seed)
    idx = np.argsort(rng.random((replicates, S, L)), axis=2)
    null = [float(divergence_of(corrected_gram(np.take_along_axis(y, i[:, :, None], axis=1))))
            for i in idx]
    return (1 + sum(n >= observed - 1e-12 for n in null)) / (1 + replicates)


@dataclass(frozen=True)
class Calibration:
    """Rejection rate at ``alpha`` over ``trials`` simulated units, with the share of excess
    intervals that cover the true divergence."""

    scenario: Scenario
    trials: int
    alpha: float
    rejection_rate: float
    coverage: float
    mean_excess: float
    true_divergence: float


def rejection_rate(sc: Scenario, trials: int = 200, alpha: float = 0.05, replicates: int = 499,
                   seed: int = 0, method: str = "sign-flip",
                   moving: bool | None = None) -> Calibration:
    """How often the test rejects on ``trials`` units simulated from ``sc`` (method
    ``sign-flip``: the one in force; ``permutation``: within-step label permutation);
    ``moving``: read as a run that trains between its steps is (``None``: when the scenario
    does; ``False`` on a moving scenario: the test as it was before it levelled the paces)."""
    rng = np.random.default_rng(seed)
    rejected, covered, excess, truth = 0, 0, [], []
    for t in range(trials):
        x, true = simulate(sc, rng)
        if method == "permutation":
            p = permutation_p(x, replicates, seed + t)
            cover = True
        else:
            d = language_divergence(x, [str(i) for i in range(sc.languages)],
                                    replicates=replicates, seed=seed + t,
                                    moving=sc.moves if moving is None else moving)
            p = d.p_value
            cover = d.excess_ci[0] <= true <= d.excess_ci[1]
            excess.append(d.excess)
        rejected += p <= alpha
        covered += cover
        truth.append(true)
    return Calibration(sc, trials, alpha, rejected / trials, covered / trials,
                       float(np.mean(excess)) if excess else float("nan"), float(np.mean(truth)))


# -- the conflict test --------------------------------------------------------------------------
@dataclass(frozen=True)
class ConflictScenario:
    """A unit's ST and ASR gradients: per language, the two tasks' mean gradients at cosine
    ``cosine`` (0: unrelated, the null's edge; below 0: a planted conflict), each ``snr`` times
    one step's noise norm, and the two tasks' noise correlated by ``shared`` (the same
    utterances feed both)."""

    languages: int
    steps: int = 20
    dim: int = 256
    snr: float = 0.5
    cosine: float = 0.0
    shared: float = 0.0


def simulate_conflict(sc: ConflictScenario, rng: np.random.Generator) -> np.ndarray:
    """One unit's sketches ``[S, L, 2, D]`` (task 0: ST, task 1: ASR)."""
    L, S, D = sc.languages, sc.steps, sc.dim
    u = rng.standard_normal((L, D))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = rng.standard_normal((L, D))
    v -= (v * u).sum(1, keepdims=True) * u
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    size = sc.snr * np.sqrt(D)
    st = size * u
    asr = size * (sc.cosine * u + np.sqrt(1 - sc.cosine ** 2) * v)
    e1, e2 = rng.standard_normal((2, S, L, D))
    noise_asr = sc.shared * e1 + np.sqrt(1 - sc.shared ** 2) * e2
    return np.stack([st[None] + e1, asr[None] + noise_asr], axis=2)


def conflict_rejection_rate(sc: ConflictScenario, trials: int = 200, alpha: float = 0.05,
                            seed: int = 0) -> float:
    """How often the conflict test (``Conflict.p_value``) calls a systematic conflict at
    ``alpha`` on ``trials`` units simulated from ``sc``."""
    rng = np.random.default_rng(seed)
    languages = [str(i) for i in range(sc.languages)]
    hits = sum(task_conflict(simulate_conflict(sc, rng), languages).p_value <= alpha
               for _ in range(trials))
    return hits / trials


@dataclass(frozen=True)
class TaskCosineCalibration:
    """The cross-task cosine (``TaskDivergence``) over ``trials`` units from ``scenario``:
    ``mean``: its average; ``coverage``: the share whose 95 % interval holds the planted cosine;
    ``below_zero``: the share whose interval lies below 0 (the tasks opposed on average);
    ``below_one``: below 1 (the tasks pull apart)."""

    scenario: ConflictScenario
    trials: int
    mean: float
    coverage: float
    below_zero: float
    below_one: float


def task_cosine_rates(sc: ConflictScenario, trials: int = 200,
                      seed: int = 0) -> TaskCosineCalibration:
    """Read the cross-task cosine of ``trials`` units simulated from ``sc`` (the same units
    as ``conflict_rejection_rate`` with the same seed)."""
    rng = np.random.default_rng(seed)
    languages = [str(i) for i in range(sc.languages)]
    found = [task_divergence(simulate_conflict(sc, rng), languages) for _ in range(trials)]
    ci = np.array([t.mean_ci for t in found])
    return TaskCosineCalibration(
        sc, trials, float(np.mean([t.mean for t in found])),
        float(((ci[:, 0] <= sc.cosine) & (sc.cosine <= ci[:, 1])).mean()),
        float((ci[:, 1] < 0).mean()), float((ci[:, 1] < 1).mean()))


# -- bootstrap support of the tree's clades -----------------------------------------------------
@dataclass(frozen=True)
class CladeCalibration:
    """How the tree's supported clades (``Clustering.supported_clades``) behave over ``trials``
    units simulated from ``scenario``. ``false_clade_rate``: the share of units showing at least
    one supported clade that is not a planted side (under the null every clade is false);
    ``recovered``: the share whose planted group (the second half of the languages) is a
    supported clade (NaN under the null); ``mean_supported``: supported clades per unit;
    ``median_silhouette``: the median silhouette of the best grouping (the number of groups
    chosen by it, as the Dendrograms page reports it)."""

    scenario: Scenario
    trials: int
    kind: str
    false_clade_rate: float
    recovered: float
    mean_supported: float
    median_silhouette: float


def clade_rates(sc: Scenario, trials: int = 200, seed: int = 0, kind: str = "mean",
                method: str = "average", moving: bool | None = None) -> CladeCalibration:
    """Build each simulated unit's tree as the Dendrograms page does (the ``kind`` similarity
    with its step bootstrap, ``method`` linkage; ``moving``: as for a run that trains between
    its steps, ``None``: when the scenario does) and count its supported clades."""
    rng = np.random.default_rng(seed)
    L = sc.languages
    languages = [str(i) for i in range(L)]
    sides = ({str(i) for i in range(L // 2)}, {str(i) for i in range(L // 2, L)})
    planted = sc.effect > 0 or sc.group_response > 0
    true = [s for s in sides if len(s) >= 2] if planted else []
    false, found, count, silhouettes = 0, 0, 0, []
    for _ in range(trials):
        x, _ = simulate(sc, rng)
        similarity, replicates = sketch_similarity(
            x[:, :, 0], kind, sc.moves if moving is None else moving)
        tree = cluster_similarity(similarity, languages, method, replicates)
        best = LanguageGrouping().fit(tree.similarity, languages)
        silhouettes.append(best.silhouettes_.get(len(best.groups_), np.nan))
        clades = [set(c) for c in tree.supported_clades()]
        false += any(c not in true for c in clades)
        found += sides[1] in clades
        count += len(clades)
    return CladeCalibration(sc, trials, kind, false / trials,
                            found / trials if planted else float("nan"), count / trials,
                            float(np.nanmedian(silhouettes)))


# -- the CCA alignment test ---------------------------------------------------------------------
@dataclass(frozen=True)
class AlignmentCalibration:
    """How the alignment test behaves over ``trials`` units simulated from ``scenario``:
    ``rejection_rate``, the share whose ``p_value`` is at most ``alpha`` (with 20 shuffles the
    smallest p is 1/21, so a test at 0.05 rejects only when no shuffle reaches the data);
    ``mean_excess``, the mean alignment beyond chance (``Alignment.excess``, the figure the
    plan's priority discounts by); ``mean_chance``, the mean chance level."""

    scenario: Scenario
    trials: int
    alpha: float
    rejection_rate: float
    mean_excess: float
    mean_chance: float


def alignment_rates(sc: Scenario, trials: int = 200, alpha: float = 0.05, seed: int = 0,
                    moving: bool | None = None) -> AlignmentCalibration:
    """Run ``subspace_alignment`` (default rank, 20 shuffles) on ``trials`` units from ``sc``;
    ``moving``: as for ``rejection_rate`` (``False``: the steps paired as they were before the
    detrended contrasts)."""
    rng = np.random.default_rng(seed)
    languages = [str(i) for i in range(sc.languages)]
    rejected, excess, chance = 0, [], []
    for t in range(trials):
        x, _ = simulate(sc, rng)
        a = subspace_alignment(x, languages, seed=seed + t,
                               moving=sc.moves if moving is None else moving)
        rejected += a.p_value <= alpha
        excess.append(a.excess())
        chance.append(a.chance_level())
    return AlignmentCalibration(sc, trials, alpha, rejected / trials, float(np.mean(excess)),
                                float(np.mean(chance)))


# -- the Mantel test against URIEL --------------------------------------------------------------
@dataclass(frozen=True)
class MantelCalibration:
    """How the Mantel tests of a unit's ``kind`` similarity against URIEL behave over ``trials``
    units simulated from ``scenario`` with ``languages`` (codes; the second half one family):
    ``rejection_rate`` and ``mean_r`` per URIEL distance kind (``FEATURE_SETS``)."""

    scenario: Scenario
    languages: tuple[str, ...]
    trials: int
    kind: str
    noise_null: bool
    alpha: float
    rejection_rate: dict[str, float]
    mean_r: dict[str, float]


def mantel_rates(sc: Scenario, languages: list[str], trials: int = 200, kind: str = "mean",
                 alpha: float = 0.05, seed: int = 0, noise_null: bool = True,
                 moving: bool | None = None) -> MantelCalibration:
    """Test each simulated unit as the Dendrograms page does: its ``kind`` similarity (point
    estimate) through ``agreement_of`` (999 relabellings, and the noise null where the
    similarity has one) against each URIEL distance; ``noise_null=False``: relabelling alone,
    the test as it was before the noise null (for comparison). ``moving``: the similarity as
    for a run that trains between its steps (``None``: when the scenario does; ``False`` on a
    moving scenario: the similarity of the steps as they are, as it was before
    ``gradlens.analysis.pace``)."""
    if len(languages) != sc.languages:
        raise ValueError(f"the scenario has {sc.languages} languages, got {len(languages)} codes")
    rng = np.random.default_rng(seed)
    rejected = {k: 0 for k in FEATURE_SETS}
    rs: dict[str, list[float]] = {k: [] for k in FEATURE_SETS}
    for _ in range(trials):
        x, _ = simulate(sc, rng)
        moves = sc.moves if moving is None else moving
        similarity, _ = sketch_similarity(x[:, :, 0], kind, moves)
        null = sketch_null_similarity(x[:, :, 0], kind, moves) if noise_null else None
        tests = agreement_of(similarity, list(languages), seed=seed, null=null).tests
        for k, m in tests.items():
            rejected[k] += m.p <= alpha
            rs[k].append(m.r)
    return MantelCalibration(sc, tuple(languages), trials, kind, noise_null, alpha,
                             {k: n / trials for k, n in rejected.items()},
                             {k: float(np.nanmean(v)) for k, v in rs.items()})


# -- the split's first-order gain ---------------------------------------------------------------
@dataclass(frozen=True)
class GainCalibration:
    """How the split gain of a unit's proposed groups (the best GradSim grouping of all its
    steps) compares with the truth over ``trials`` units simulated from ``scenario``: the mean
    true gain of those groups (from the true mean gradients), each estimate's mean over it
    (``in_sample``: on the steps that chose the groups, as the plan read it before; ``held_out``:
    cross-fitted, ``gain.held_out_gain``), and the share of units whose 95 % lower bound lies
    above the truth (at most 0.025 for a sound bound)."""

    scenario: Scenario
    trials: int
    true_gain: float
    in_sample: float
    held_out: float
    in_sample_above: float
    held_out_above: float


def gain_rates(sc: Scenario, trials: int = 200, seed: int = 0) -> GainCalibration:
    """Estimate each simulated unit's split gain both ways against the true gain of its groups."""
    rng = np.random.default_rng(seed)
    languages = [str(i) for i in range(sc.languages)]
    truth, inside, held, inside_above, held_above = [], [], [], 0, 0
    for _ in range(trials):
        x, _, means = simulate_means(sc, rng)
        steps = x[:, :, 0]
        y = step_coordinates(steps)
        gram = corrected_gram(y)
        best = LanguageGrouping().fit(corrected_similarity(gram), languages)
        groups = [[int(i) for i in g] for g in best.groups_]
        mu = means.mean(0)
        true = float(between_group_energy(mu @ mu.T, groups))
        boot = between_group_energy(corrected_gram(y, bootstrap_weights(len(y))), groups)
        gain, low = held_out_gain(steps, languages, len(groups))
        truth.append(true)
        inside.append(float(between_group_energy(gram, groups)))
        held.append(gain)
        inside_above += np.nanpercentile(boot, 2.5) > true
        held_above += low > true
    scale = float(np.mean(truth))
    return GainCalibration(sc, trials, scale, float(np.mean(inside)) / scale,
                           float(np.mean(held)) / scale, inside_above / trials,
                           held_above / trials)
