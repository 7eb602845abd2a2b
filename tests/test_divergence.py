"""Divergence and conflict recover planted truths in synthetic gradients."""

import numpy as np
import pytest

from gradlens.analysis.divergence import language_divergence, task_conflict

LANGS = ["a", "b", "c", "d"]


def synthetic(specific: bool, S=40, D=512, noise=0.5, seed=0) -> np.ndarray:
    """``[S, L, 2, D]``: a shared direction, plus a per-language one when ``specific``."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=D)
    own = rng.normal(size=(len(LANGS), D))
    mean = shared[None, :] + (3.0 * own if specific else 0.0)  # [L, D]
    x = mean[None, :, None, :] + noise * rng.normal(size=(S, len(LANGS), 2, D)) * np.sqrt(D) / 10
    return x


def test_a_planted_language_specific_module_ranks_first():
    ratios = {name: language_divergence(synthetic(spec, seed=i), LANGS).ratio
              for i, (name, spec) in enumerate([("shared1", False), ("specific", True), ("shared2", False)])}
    assert max(ratios, key=ratios.get) == "specific"
    assert ratios["specific"] > 3 * max(ratios["shared1"], ratios["shared2"])


def test_pure_noise_gives_a_ratio_near_one():
    """Cross and self compare half-means alike, so languages that differ only by noise sit at 1."""
    ratios = [language_divergence(synthetic(False, noise=3.0, seed=s), LANGS).ratio for s in range(5)]
    assert 0.9 < np.mean(ratios) < 1.1


def test_the_permutation_test_separates_planted_truth_from_noise():
    assert language_divergence(synthetic(True, seed=7), LANGS).p_value == pytest.approx(1 / 24)
    noise_p = [language_divergence(synthetic(False, noise=3.0, seed=s), LANGS).p_value
               for s in range(20)]
    assert np.mean(np.array(noise_p) < 0.05) <= 0.2 and np.mean(noise_p) > 0.3
    seven = list("abcdefg")  # 7! > 999: sampled permutations
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 7, 1, 64)) + 5 * rng.normal(size=(1, 7, 1, 64))
    assert language_divergence(x, seven).p_value == pytest.approx(1 / 1000)


def test_divergences_match_their_definitions():
    x = synthetic(True, S=6)
    d = language_divergence(x, LANGS)
    a, b = x[0::2, 0, 0].mean(0), x[1::2, 0, 0].mean(0)
    assert d.self_div[0] == pytest.approx(1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    from scipy.spatial.distance import cosine

    odd, even = x[0::2, :, 0].mean(0), x[1::2, :, 0].mean(0)
    assert d.cross[1, 2] == pytest.approx((cosine(odd[1], even[2]) + cosine(even[1], odd[2])) / 2)
    assert np.allclose(np.diag(d.cross), d.self_div)
    with pytest.raises(ValueError, match="at least 2 steps"):
        language_divergence(x[:1], LANGS)


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
    from gradlens.analysis.views import unit_sketches, units
    from gradlens.store import Run

    with Run(tiny_run) as run:
        for key in units(run, "module"):
            x = unit_sketches(run, key)
            d = language_divergence(x, run.languages)
            c = task_conflict(x, run.languages)
            assert np.isfinite(d.ratio) and d.cross.shape == (4, 4)
            assert c.cosine.shape == (len(run.done_steps), 4) and 0 <= c.rate <= 1


def test_a_blocks_mean_read_module_by_module_equals_the_mean_of_its_sketches(tiny_run):
    from gradlens.analysis.views import unit_mean, unit_sketches
    from gradlens.store import Run

    with Run(tiny_run) as run:
        for key in ("speech_encoder", "text_decoder.layers.1"):
            assert np.allclose(unit_mean(run, key), unit_sketches(run, key).mean(0), atol=1e-6)
