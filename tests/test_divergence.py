"""Divergence: a noise-corrected similarity, a null that holds, intervals that cover, and conflict."""

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from gradlens.analysis.calibration import (ConflictScenario, Scenario,
                                           conflict_rejection_rate, rejection_rate, simulate,
                                           task_cosine_rates)
from gradlens.analysis.divergence import (bh_qvalues, bootstrap_weights, corrected_gram,
                                          helmert, language_divergence, null_divergence,
                                          sign_flip_draws, sign_flip_p, step_coordinates,
                                          task_conflict, task_divergence)

LANGS = ["a", "b", "c", "d"]


def test_the_corrected_gram_uses_products_of_different_steps_only():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3, 7))
    S = len(x)
    explicit = sum(x[s] @ x[t].T for s in range(S) for t in range(S) if s != t) / (S * (S - 1))
    assert np.allclose(corrected_gram(x), explicit)
    # the coordinates keep every inner product, so the statistics do not change
    wide = rng.normal(size=(4, 3, 500))
    assert step_coordinates(wide).shape[-1] <= 12
    assert np.allclose(corrected_gram(step_coordinates(wide)), corrected_gram(wide))
    # a caller with few passes keeps the vectors when the basis would cost more than it saves
    assert step_coordinates(wide, passes=2) is wide
    assert step_coordinates(wide, passes=10_000).shape[-1] <= 12
    # bootstrap multiplicities: a step drawn twice is never paired with its own copy
    w = np.array([[2.0, 1.0, 1.0, 1.0, 0.0]])
    copies = np.concatenate([x[:1], x[:4]])                          # step 0 twice
    pairs = [(s, t) for s in range(5) for t in range(5) if s != t and {s, t} != {0, 1}]
    manual = sum(copies[s] @ copies[t].T for s, t in pairs) / len(pairs)
    assert np.allclose(corrected_gram(x, w)[0], manual)
    assert np.allclose(corrected_gram(x, np.ones((1, S)))[0], corrected_gram(x))


def test_noise_does_not_pass_for_divergence():
    """Same mean, noise 1x to 6x: raw cosines fall with the noise, the corrected ones stay at 1."""
    rng = np.random.default_rng(1)
    S, D = 40, 512
    mean = rng.normal(size=D)
    sigma = np.array([1.0, 2.0, 4.0, 6.0])
    x = mean + sigma[None, :, None] * rng.normal(size=(S, 4, D))
    d = language_divergence(x[:, :, None], LANGS)
    raw = x.mean(0) / np.linalg.norm(x.mean(0), axis=1, keepdims=True)
    assert (raw @ raw.T)[0, 3] < 0.8                                 # attenuated
    assert d.similarity[0, 3] > 0.9 and abs(d.excess) < 0.05
    assert d.p_value > 0.05 and d.excess_ci[0] <= 0 <= d.excess_ci[1]


def test_scaled_languages_share_a_direction():
    """Gradients of one direction at different scales (losses differ) are not divergent."""
    rng = np.random.default_rng(2)
    x, true = simulate(Scenario(4, scales=(0.3, 3.0), snr=4.0), rng)
    assert true == pytest.approx(0.0)
    assert language_divergence(x, LANGS).p_value > 0.05


def test_a_planted_group_is_found_with_two_languages_too():
    """The old permutation test could never go below 1/L! (0.5 for two languages)."""
    rng = np.random.default_rng(3)
    x, true = simulate(Scenario(2, effect=0.5, snr=4.0), rng)
    d = language_divergence(x, ["a", "b"])
    assert d.p_value < 0.01
    assert d.excess_ci[0] > 0 and d.excess_ci[0] <= true <= d.excess_ci[1] + 0.05
    assert d.pairs()[0][:2] == ("a", "b")


def test_the_null_enumerates_every_sign_vector_when_they_are_few():
    rng = np.random.default_rng(4)
    y = rng.normal(size=(6, 3, 10))
    assert len(null_divergence(y, replicates=1999)) == 2 ** 5
    assert len(null_divergence(rng.normal(size=(20, 3, 10)), replicates=99)) == 99
    h = helmert(6)
    assert np.allclose(h @ h.T, np.eye(5)) and np.allclose(h.sum(1), 0)


@pytest.mark.parametrize("languages", [2, 4, 14])
def test_false_positives_stay_at_alpha_with_unequal_noise(languages):
    """Fast seeded calibration (``bench/calibration.py`` runs the full one): one shared mean,
    noise 1-3x, step-shared noise. A test that rejected too often would fail here."""
    c = rejection_rate(Scenario(languages), trials=60, replicates=199, seed=languages)
    assert c.rejection_rate <= 0.1
    assert c.coverage >= 0.9


def test_power_against_a_planted_group_difference():
    c = rejection_rate(Scenario(4, effect=0.3), trials=40, replicates=199, seed=7)
    assert c.rejection_rate >= 0.8


def test_bh_q_values_match_scipy():
    p = np.array([0.001, 0.2, 0.03, 0.04, 0.5, 0.0005, 0.9])
    assert np.allclose(bh_qvalues(p), false_discovery_control(p, method="bh"))
    assert bh_qvalues([]).shape == (0,)


def test_bootstrap_weights_are_shared_by_every_module_of_a_run():
    assert np.array_equal(bootstrap_weights(10), bootstrap_weights(10))
    w = bootstrap_weights(10, replicates=50)
    assert w.shape == (50, 10) and (w.sum(1) == 10).all()


def test_no_bootstrap_draw_repeats_a_single_step():
    # at 3 steps one draw in 9 would be one step three times: no pair of different steps, so no
    # noise-corrected gram (NaN) and no covariance (0); such draws made the trees' and groups'
    # replicates all-zero similarities while the divergence test dropped them
    w = bootstrap_weights(3, replicates=2000)
    assert ((w > 0).sum(1) >= 2).all() and (w.sum(1) == 3).all()
    x = np.random.default_rng(0).normal(size=(3, 5, 16))
    assert np.isfinite(corrected_gram(x, w)).all()


def test_too_few_steps_or_languages_are_refused():
    x = np.zeros((2, 4, 1, 8))
    with pytest.raises(ValueError, match="at least 3 completed steps"):
        language_divergence(x, LANGS)
    with pytest.raises(ValueError, match="at least 2 languages"):
        language_divergence(np.zeros((5, 1, 1, 8)), ["a"])


def test_the_cross_task_cosine_reads_the_tasks_mean_directions_whatever_their_noise():
    """1 for one direction however unequal the tasks' noise; the planted cosine for two, at
    every signal-to-noise ratio (the ratio it replaced grew with it); and an opposition of the
    means found where the tasks share their noise, which the step-cosine conflict test misses
    (docs/results.md §1j)."""

    rng = np.random.default_rng(5)
    S, D = 40, 256
    mean = rng.normal(size=(1, 4, 1, D))
    unequal = np.array([0.5, 6.0])[None, None, :, None]   # the auxiliary task far noisier
    one = [task_divergence(mean + unequal * rng.normal(size=(S, 4, 2, D)), LANGS)
           for _ in range(10)]
    assert 0.9 < np.mean([t.mean for t in one]) < 1.1
    assert sum(t.mean_ci[0] <= 1 <= t.mean_ci[1] for t in one) >= 8
    for snr in (0.2, 1.0):   # the same angle at two signal-to-noise ratios reads the same
        r = task_cosine_rates(ConflictScenario(4, snr=snr, cosine=0.8), 40)
        assert abs(r.mean - 0.8) < 0.05 and r.coverage >= 0.85, r
    assert r.below_one > 0.9   # at snr 1 the interval tells the tasks apart
    shared = ConflictScenario(4, cosine=-0.2, shared=0.5)
    assert conflict_rejection_rate(shared, 40) < 0.2
    assert task_cosine_rates(shared, 40).below_zero > 0.9
    none = ConflictScenario(4, cosine=0.0, shared=0.5)
    assert task_cosine_rates(none, 80).below_zero < 0.1
    assert np.array_equal(task_divergence(np.zeros((6, 4, 2, 8)), LANGS).cosine, np.zeros(4))

def test_planted_conflict_is_found():
    rng = np.random.default_rng(1)
    S, D = 30, 256
    st = rng.normal(size=(S, 4, D))
    asr = -0.8 * st + 0.3 * rng.normal(size=(S, 4, D))
    asr[:, 0] = 0.8 * st[:, 0] + 0.3 * rng.normal(size=(S, D))  # language a agrees
    c = task_conflict(np.stack([st, asr], axis=2), LANGS)
    assert c.rate == pytest.approx(0.75)
    assert c.rate_by_language.tolist() == [0.0, 1.0, 1.0, 1.0]
    assert (c.cosine[:, 1:] < -0.5).all()


def test_on_a_real_run_every_module_has_finite_evidence(tiny_run):
    from gradlens.evidence import unit_sketches, units
    from gradlens.store import Run

    with Run(tiny_run) as run:
        for key in units(run, "module"):
            x = unit_sketches(run, key)
            d = language_divergence(x, run.languages, replicates=99)
            c = task_conflict(x, run.languages)
            assert np.isfinite(d.divergence) and d.cross.shape == (4, 4)
            assert 0 < d.p_value <= 1 and np.isfinite(d.excess_ci).all()
            assert c.cosine.shape == (len(run.done_steps), 4) and 0 <= c.rate <= 1


def test_a_blocks_mean_read_module_by_module_equals_the_mean_of_its_sketches(tiny_run):
    from gradlens.evidence import unit_mean, unit_sketches
    from gradlens.store import Run

    with Run(tiny_run) as run:
        for key in ("speech_encoder", "text_decoder.layers.1"):
            assert np.allclose(unit_mean(run, key), unit_sketches(run, key).mean(0), atol=1e-6)


def test_drift_moves_every_language_alike_so_each_step_is_still_a_null():
    """The calibration's model that moves while probed: at every step the languages' true means
    share one direction (no effect planted), that direction turns by ``drift`` (1 - cos) from the
    first step to the last, and each language's scale ends at its own factor."""
    sc = Scenario(4, drift=0.5, scale_drift=(0.5, 2.0), snr=200.0, noise=(1e-3, 1e-3),
                  step_noise=0.0)
    x, true = simulate(sc, np.random.default_rng(0))
    means = x[:, :, 0]                                              # [S, L, D], noise ~ 0
    unit = means / np.linalg.norm(means, axis=-1, keepdims=True)
    within = np.einsum("sld,smd->slm", unit, unit)                  # cos between languages
    assert true == pytest.approx(0.0, abs=1e-12) and within.min() > 0.999
    assert 1 - unit[0, 0] @ unit[-1, 0] == pytest.approx(0.5, abs=1e-3)
    norms = np.linalg.norm(means, axis=-1)
    ratio = norms[-1] / norms[0]                                    # each language its own factor
    assert ratio.min() >= 0.5 - 1e-3 and ratio.max() <= 2.0 + 1e-3 and ratio.std() > 0.05


def test_sign_flips_are_exhaustive_for_few_steps_and_one_sided():
    assert sign_flip_p(np.full(5, -1.0)) == 1 / 32          # only the identity is as low
    assert sign_flip_draws(5) == 31 and sign_flip_draws(20) == 9999  # its floor: 1 / (1 + draws)
    assert sign_flip_p(np.full(5, 1.0)) == 1.0
    rng = np.random.default_rng(0)
    v = rng.normal(-0.3, 1.0, size=16)                       # exhaustive: 65,536 > 9,999 drawn
    exact = float(np.mean((1 - 2 * ((np.arange(2 ** 16)[:, None] >> np.arange(16)) & 1)) @ v
                          <= v.sum() + 1e-12))
    assert sign_flip_p(v) == pytest.approx(exact, abs=0.01)


def test_the_conflict_test_holds_its_level_and_finds_a_planted_conflict():
    """Fast seeded version of ``bench/calibration.py --only conflict``: unrelated tasks (the
    null's edge) are called conflicting at about alpha, a planted conflict almost always."""
    assert conflict_rejection_rate(ConflictScenario(4), trials=200, seed=3) <= 0.1
    assert conflict_rejection_rate(ConflictScenario(4, cosine=-0.2), trials=40, seed=4) >= 0.8
    assert conflict_rejection_rate(ConflictScenario(4, cosine=0.3), trials=40, seed=5) == 0.0


def test_drift_between_windows_is_one_on_a_fixed_model_and_falls_as_it_turns():
    """``window_drift``: the noise-corrected cosine of two windows' mean gradients, 1 up to
    noise when the model does not move (its interval holding 1), lower as the shared direction
    turns over the steps (half the first-to-last angle between the windows' means)."""
    from gradlens.analysis.drift import window_drift

    rng = np.random.default_rng(0)
    fixed, turned, held = [], [], 0
    for _ in range(40):
        x, _ = simulate(Scenario(4, steps=24), rng)
        d = window_drift(x[:12, :, 0].sum(1), x[12:, :, 0].sum(1))
        fixed.append(d.cosine)
        held += d.ci[0] <= 1.0 <= d.ci[1]
        x, _ = simulate(Scenario(4, steps=24, drift=0.8), rng)
        turned.append(window_drift(x[:12, :, 0].sum(1), x[12:, :, 0].sum(1)).cosine)
    assert abs(np.mean(fixed) - 1) < 0.03 and held >= 38      # a 95 % interval
    assert 0.70 < np.mean(turned) < 0.82          # cos(arccos(0.2) / 2) = 0.77 at the means
