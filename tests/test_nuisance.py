"""Nuisance covariates: the share of a covariate's variance a grouping explains, its permutation
null, the plan keeping shared a split whose groups follow one, and the probe's record of it."""

import h5py
import numpy as np
import pytest

from gradlens.analysis.allocation import propose_plan
from gradlens.analysis.evidence import module_evidence, with_q_values
from gradlens.analysis.nuisance import explained_share, nuisance_test

LANGS = ["a", "b", "c", "d", "e", "f", "g", "h"]


def test_the_share_is_the_anova_eta_squared_of_each_grouping():
    rng = np.random.default_rng(0)
    v = rng.normal(size=8)
    labels = np.array([[0, 0, 1, 1, 2, 2, 2, 0], [1, 0, 1, 0, 1, 0, 1, 0]])
    for row, share in zip(labels, explained_share(v, labels)):
        means = np.array([v[row == g].mean() for g in row])
        assert share == pytest.approx(1 - ((v - means) ** 2).sum() / ((v - v.mean()) ** 2).sum())


def test_the_permutation_p_is_calibrated_under_the_null_and_finds_a_grouping_by_the_covariate():
    rng = np.random.default_rng(1)
    sizes = np.array([0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 4, 5, 5, 5])  # six uneven groups of 14
    ps = [nuisance_test("duration", rng.normal(size=14), sizes, draws=500, seed=i).p_value
          for i in range(300)]
    assert np.mean(np.array(ps) < 0.05) <= 0.09
    values = np.sort(rng.normal(size=14))  # the groups cut the sorted covariate: they follow it
    found = nuisance_test("duration", values, sizes)
    assert found.p_value < 0.01 and found.share > 0.8 and found.follows()
    assert "utterance duration (η² " in found.text()


def _module(cluster: list[int], seed: int, name: str):
    rng = np.random.default_rng(seed)
    mean = np.tile(rng.normal(size=128), (8, 1)) + 2.5 * rng.normal(size=(2, 128))[cluster]
    x = mean[None, :, None, :] + 1.5 * rng.normal(size=(24, 8, 2, 128))
    return x, name


def test_a_split_whose_groups_follow_utterance_duration_is_kept_shared_and_says_why():
    duration = np.array([1.0, 1.1, 1.2, 1.3, 2.0, 2.1, 2.2, 2.3])  # a b c d short, e f g h long
    by_duration = _module([0, 0, 0, 0, 1, 1, 1, 1], 0, "m.duration")
    across = _module([0, 1, 0, 1, 0, 1, 0, 1], 1, "m.across")
    ev = with_q_values([module_evidence(x, LANGS, ["st", "asr"], name, 1000,
                                        nuisances={"duration": duration})
                        for x, name in (by_duration, across)])
    plan = propose_plan(ev, budget=1.0, total_params=2000, model="tiny", languages=LANGS)
    assert list(plan.modules) == ["m.across"]
    assert plan.decisions["m.duration"].startswith("kept shared: its groups follow a nuisance")
    assert "utterance duration" in plan.decisions["m.duration"]
    assert "groups checked against utterance duration" in plan.decisions["m.across"]
    fields = plan.modules["m.across"].evidence
    assert fields["duration_share"] < 0.5 and fields["duration_p"] > 0.05
    assert fields["loss_share"] is None  # not recorded for this run: said, not invented
    # without the covariate the same module is split: the check is what keeps it shared
    bare = with_q_values([module_evidence(x, LANGS, ["st", "asr"], name, 1000)
                          for x, name in (by_duration, across)])
    assert set(propose_plan(bare, 1.0, 2000, "tiny", LANGS).modules) == {"m.duration", "m.across"}


def test_the_run_records_each_languages_audio_seconds_and_older_runs_say_they_have_none(tmp_path):
    from conftest import random_run
    from gradlens.evidence import run_nuisances
    from gradlens.store import DURATION, Run, RunWriter

    path = random_run(tmp_path / "r", steps=3)
    with Run(path) as run:
        assert np.isnan(run.duration()).all()  # written without durations: none recorded
        assert set(run_nuisances(run)) == {"loss"}
    with h5py.File(path / "grads.h5", "r+") as f:  # a run made before the probe recorded it
        del f[DURATION]
    with Run(path) as run:
        assert run.duration() is None and set(run_nuisances(run)) == {"loss"}
    with Run(path) as run:
        modules, k = run.modules, run.sketch_dim
    with RunWriter(path, languages=["spa", "ita", "deu", "rus"], tasks=["st", "asr"],
                   modules=modules, sketch_dim=k, sketch_seed=0, model="tiny", model_config={},
                   probe_config={"steps": 4, "tasks": ["st", "asr"]}) as w:
        shape = (4, 2, len(modules), k)  # resuming it still appends, without durations
        w.append(3, np.zeros(shape, np.float16), np.ones(shape[:3], np.float32),
                 np.ones(shape[:2], np.float32), np.array([1.0, 2, 3, 4], np.float32))
    with Run(path) as run:
        assert len(run.done_steps) == 4 and run.duration() is None
    fresh = random_run(tmp_path / "new", steps=2)
    with RunWriter(fresh, languages=["spa", "ita", "deu", "rus"], tasks=["st", "asr"],
                   modules=modules, sketch_dim=k, sketch_seed=0, model="tiny", model_config={},
                   probe_config={"steps": 3, "tasks": ["st", "asr"]}) as w:
        w.append(2, np.zeros(shape, np.float16), np.ones(shape[:3], np.float32),
                 np.ones(shape[:2], np.float32), np.array([1.0, 2, 3, 4], np.float32))
    with Run(fresh) as run:
        assert run.duration()[2].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_groups_that_follow_the_loss_level_are_named_but_still_split():
    """A real conflict raises the loss of the languages it hurts (the positive control's planted
    group has the higher losses), so the loss level is reported, not held against the split."""
    loss = np.array([1.0, 1.1, 1.2, 1.3, 3.0, 3.1, 3.2, 3.3])
    x, name = _module([0, 0, 0, 0, 1, 1, 1, 1], 0, "m.loss")
    ev = with_q_values([module_evidence(x, LANGS, ["st", "asr"], name, 1000,
                                        nuisances={"loss": loss})])
    plan = propose_plan(ev, budget=1.0, total_params=1000, model="tiny", languages=LANGS)
    assert list(plan.modules) == ["m.loss"]
    assert "they follow loss level" in plan.decisions["m.loss"]
    assert plan.modules["m.loss"].evidence["loss_p"] < 0.05


def test_a_plan_that_splits_nothing_says_why_by_reason():
    from gradlens.analysis.allocation import nothing_split_text

    text = nothing_split_text({
        "m1": "kept shared: no divergence beyond noise (excess …)",
        "m2": "kept shared: no divergence beyond noise (excess …)",
        "m3": "kept shared: its groups follow a nuisance, not the languages: utterance duration",
        "m4": "kept shared: over the budget (…)"})
    assert text == ("no module is split: 2 show no divergence beyond noise, 1 has groups that "
                    "follow a nuisance (m3), 1 did not fit in the budget (m4)")
