"""Joint factorization, CCA and principal angles against sklearn and scipy."""

import numpy as np
import pytest
from scipy.linalg import subspace_angles
from sklearn.cross_decomposition import CCA

from gradlens.analysis.alignment import (JointFactorization, canonical_correlations,
                                         principal_angles, subspace_alignment)


def paired(S=80, r=4, shared=3, noise=0.5, seed=0):
    """Two ``[S, r]`` views driven by ``shared`` common latent series."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(S, shared))
    views = []
    for _ in range(2):
        latent = np.c_[z, rng.normal(size=(S, r - shared))]
        views.append(latent @ rng.normal(size=(r, r)) + noise * rng.normal(size=(S, r)))
    return views


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_canonical_correlations_match_sklearn(seed):
    za, zb = paired(seed=seed)
    ours = canonical_correlations(za, zb)
    cca = CCA(n_components=4, scale=False, max_iter=100_000, tol=1e-12).fit(za, zb)
    xs, ys = cca.transform(za, zb)
    theirs = [np.corrcoef(xs[:, i], ys[:, i])[0, 1] for i in range(4)]
    assert np.allclose(ours, theirs, atol=1e-4)
    assert ours[0] > 0.8 and ours[-1] < ours[0]


def test_principal_angles_match_scipy():
    rng = np.random.default_rng(5)
    va, _ = np.linalg.qr(rng.normal(size=(60, 4)))
    vb, _ = np.linalg.qr(rng.normal(size=(60, 4)))
    assert np.allclose(principal_angles(va, vb), np.sort(subspace_angles(va, vb)), atol=1e-10)
    assert np.allclose(principal_angles(va, va), 0, atol=1e-6)


def test_joint_factorization_finds_the_shared_basis():
    rng = np.random.default_rng(1)
    S, L, D, r = 30, 3, 40, 2
    basis, _ = np.linalg.qr(rng.normal(size=(D, r)))
    x = rng.normal(size=(S, L, r)) @ basis.T                 # every language inside span(basis)
    fit = JointFactorization(r).fit(x)
    assert fit.explained_ == pytest.approx(1.0)
    assert np.allclose(principal_angles(fit.basis_, basis), 0, atol=1e-6)
    assert fit.projections_.shape == (L, S, r)
    assert np.allclose(fit.projections_[1], x[:, 1] @ fit.basis_)


def test_too_few_steps_for_the_rank_is_an_error_not_correlations_of_one():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 3, 1, 32))                       # pure noise, 6 steps
    # what the check prevents: with 2r >= S, unrelated data correlate perfectly
    za, zb = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    qa = np.linalg.qr(za - za.mean(0))[0]
    qb = np.linalg.qr(zb - zb.mean(0))[0]
    assert np.linalg.svd(qa.T @ qb, compute_uv=False)[0] > 0.999
    with pytest.raises(ValueError, match="rank 3 needs at least 13 steps.*has 6.*rank to 1"):
        subspace_alignment(x, list("abc"), rank=3)
    with pytest.raises(ValueError, match="at least 13 steps"):
        canonical_correlations(za, zb)
    a = subspace_alignment(x, list("abc"))                   # the default rank fits the steps
    assert a.rank == 1 and (a.correlations[0, 1] < 0.999).all()


def test_alignment_is_read_against_its_chance_level():
    """Pure noise at 16 steps: mean CCA well above 0 (the bias the issue measured), yet no
    alignment beyond chance; languages sharing their step-to-step moves align far beyond it."""
    rng = np.random.default_rng(5)
    noise = [subspace_alignment(rng.normal(size=(16, 4, 1, 128)), list("abcd")) for _ in range(10)]
    assert min(a.mean_off_diagonal() for a in noise) > 0.2
    assert abs(np.mean([a.mean_off_diagonal() - a.chance_level() for a in noise])) < 0.03
    assert np.mean([a.excess() for a in noise]) < 0.05
    assert np.mean([a.p_value for a in noise]) > 0.3
    common = rng.normal(size=(16, 1, 1, 128))
    shared = subspace_alignment(common + 0.3 * rng.normal(size=(16, 4, 1, 128)), list("abcd"))
    assert shared.excess() > 0.8 and shared.p_value < 0.05


def test_aligned_languages_score_higher_than_unrelated_ones():
    rng = np.random.default_rng(3)
    S, D = 40, 64
    common = rng.normal(size=(S, 3)) @ rng.normal(size=(3, D))
    x = np.stack([common + 0.3 * rng.normal(size=(S, D)),
                  common + 0.3 * rng.normal(size=(S, D)),
                  rng.normal(size=(S, 3)) @ rng.normal(size=(3, D))], axis=1)[:, :, None]
    a = subspace_alignment(x, ["a", "b", "c"], rank=3)
    assert a.mean[0, 1] > 0.9 > a.mean[0, 2]
    assert a.angles[0, 1].max() < a.angles[0, 2].max()
    assert np.allclose(np.diag(a.mean), 1) and np.allclose(a.mean, a.mean.T)


def test_a_p_value_at_the_floor_of_its_draws_is_written_as_that_bound():
    """20 shuffles cannot give less than 1/21: written as 0.05 it read as a measured p = 0.05."""
    from gradlens.report import p_text

    assert p_text(1 / 21, 20, "shuffles") == "p = 0.048, the smallest 20 shuffles can give"
    assert p_text(3 / 21, 20, "shuffles") == "p = 0.143 over 20 shuffles"
    assert p_text(1 / 1000, 999) == "p = 0.001, the smallest 999 permutations can give"
    assert p_text(0.0123, 999) == "p = 0.0123 over 999 permutations"


def test_the_alignment_test_is_calibrated_and_holds_on_a_moving_model():
    """Fast seeded version of ``bench/calibration.py --only alignment`` (docs/results.md §1e,
    §1i): languages whose steps nothing pairs are called aligned at about the shuffles' 1/21; a
    shared response to each batch is found; a model that moves while probed makes its own
    trend look like alignment when its steps are paired, not when their detrended contrasts
    are (what a moving run's evidence reads), and the shared response is still found there."""
    from gradlens.analysis.calibration import Scenario, alignment_rates

    null = alignment_rates(Scenario(4, step_noise=0.0), trials=150, seed=1)
    assert null.rejection_rate <= 0.1 and null.mean_excess < 0.05
    assert alignment_rates(Scenario(4), trials=30, seed=2).rejection_rate >= 0.8
    moving = Scenario(4, step_noise=0.0, drift=0.8, scale_drift=(0.5, 2.0), snr=10.0)
    assert alignment_rates(moving, trials=40, seed=3, moving=False).rejection_rate >= 0.8
    assert alignment_rates(moving, trials=60, seed=3).rejection_rate <= 0.12
    shared = Scenario(4, drift=0.8, scale_drift=(0.5, 2.0))
    assert alignment_rates(shared, trials=30, seed=4).rejection_rate >= 0.8


def test_the_alignment_verdict_says_what_the_test_shows_and_what_it_cannot():
    from gradlens.analysis.calibration import Scenario, simulate
    from gradlens.report import alignment_verdict

    rng = np.random.default_rng(4)
    langs = list("abcd")
    shared, _ = simulate(Scenario(4, step_noise=2.0), rng)
    assert alignment_verdict(subspace_alignment(shared, langs)).startswith(
        "No shuffle of the steps reached this alignment")
    lone, _ = simulate(Scenario(4, step_noise=0.0), rng)
    a = subspace_alignment(lone, langs)
    assert a.p_value > 0.05
    assert alignment_verdict(a).startswith("The data show no alignment beyond chance")
    assert "weak evidence" in alignment_verdict(a)
