"""How a run that trains between its probe steps is read (gradlens.analysis.pace)."""

import numpy as np
import pytest

from gradlens.analysis.pace import TREND_DEGREE, detrended_rows, level_pace
from gradlens.errors import NotEnoughData


def test_detrended_rows_remove_every_quintic_trend_and_keep_white_noise_white():
    S = 20
    t = np.linspace(0, 3, S)
    trend = np.stack([1 + 2 * t, t ** 2 - t, 0.3 * t ** 3, t ** 5 - t ** 4, np.ones(S)],
                     1)[:, None]  # [S, 1, 5]
    rows = detrended_rows(trend)
    assert rows.shape == (S - TREND_DEGREE - 1, 1, 5)
    assert np.abs(rows).max() < 1e-9 * np.abs(trend).max()
    # white noise stays white: the rows are independent with the steps' variance
    noise = np.random.default_rng(0).standard_normal((S, 1, 20_000))
    cov = np.einsum("ild,jld->ij", detrended_rows(noise), detrended_rows(noise)) / 20_000
    assert np.allclose(cov, np.eye(S - TREND_DEGREE - 1), atol=0.05)
    # what is not a trend passes whole: a response to each batch keeps its energy
    jolt = np.zeros((S, 1, 1))
    jolt[7] = 1.0
    assert 0.5 < (detrended_rows(jolt) ** 2).sum() <= 1.0
    with pytest.raises(NotEnoughData, match=f"at least {TREND_DEGREE + 4} steps, this has 6"):
        detrended_rows(np.zeros((6, 2, 3)))


def test_level_pace_gives_every_language_the_same_pace_and_leaves_a_silent_one_alone():
    rng = np.random.default_rng(1)
    S, L, D = 20, 4, 512
    u = rng.standard_normal(D)
    pace = np.stack([np.linspace(1, f, S) for f in (0.25, 1.0, 4.0)], 1)        # [S, 3]
    x = np.concatenate([pace[:, :, None] * u, np.zeros((S, 1, D))], 1)
    x = x + 0.3 * rng.standard_normal((S, L, D))
    y = level_pace(x)
    along = y[:, :3] @ u / (u @ u)                                              # [S, 3]
    for lang in range(3):  # flat now (from 1 to 0.25 or 4 before), each at its own mean scale
        change = np.polyfit(np.arange(S), along[:, lang], 1)[0] * (S - 1)
        assert abs(change) < 0.05 * along[:, lang].mean(), (lang, change)
        assert along[:, lang].mean() == pytest.approx(pace[:, lang].mean(), rel=0.05)
    assert np.array_equal(y[:, 3], x[:, 3])                                     # no signal
    # several modules side by side are levelled one by one, as the run's evidence is
    two = np.concatenate([x, 3 * x[:, ::-1]], axis=-1)
    assert np.allclose(level_pace(two, D), np.concatenate([y, level_pace(3 * x[:, ::-1])], -1))
    with pytest.raises(ValueError, match="do not split into modules of 300"):
        level_pace(two, 300)


def test_the_divergence_test_holds_on_a_moving_model_once_the_paces_are_levelled():
    """Fast seeded version of ``bench/calibration.py --only drift`` (docs/results.md §1b, §1i):
    languages that share the direction at every step while the model turns and their scales
    move at their own pace were called divergent in about half the units at a strong signal;
    levelled, at the test's level, and a planted group is still found."""
    from gradlens.analysis.calibration import Scenario, rejection_rate

    null = Scenario(14, drift=0.8, scale_drift=(0.5, 2.0), snr=10.0)
    assert rejection_rate(null, 40, replicates=199, seed=2, moving=False).rejection_rate > 0.25
    assert rejection_rate(null, 60, replicates=199, seed=2).rejection_rate <= 0.1
    power = Scenario(4, effect=0.3, drift=0.8, scale_drift=(0.5, 2.0), scale_bend=4.0)
    assert rejection_rate(power, 30, replicates=199, seed=3).rejection_rate >= 0.8


def test_a_moving_run_s_tasks_at_their_own_pace_are_not_read_as_apart():
    """ST and ASR share each step's direction while it turns; ASR's scale falls 4x over the
    run, ST's stays. On the steps as they are ASR's mean weights the early direction more, and
    the cross-task cosine's interval lay below 1 in most units; levelled, in none."""
    from gradlens.analysis.divergence import task_divergence

    rng = np.random.default_rng(0)
    S, L, D = 20, 4, 256
    apart = {False: 0, True: 0}
    for _ in range(20):
        a, b = rng.normal(size=(2, D))
        b -= (a @ b) / (a @ a) * a
        a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
        t = np.linspace(0, 1, S)[:, None, None]
        u = (1 - t) * a + t * (0.2 * a + np.sqrt(0.96) * b)
        u = np.repeat(u / np.linalg.norm(u, axis=-1, keepdims=True), L, 1)    # [S, L, D]
        pace = np.linspace(2.0, 0.5, S)[:, None, None]
        x = 10 * np.sqrt(D / S) * np.stack([u, u * pace], 2) + rng.normal(size=(S, L, 2, D))
        for moving in apart:
            apart[moving] += task_divergence(x, list("abcd"), moving=moving).mean_ci[1] < 1
    assert apart[False] >= 10 and apart[True] <= 1, apart
