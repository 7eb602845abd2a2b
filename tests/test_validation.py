"""``gradlens validate``: which modules are fine-tuned, the realised benefit, the rank correlation
with its bootstrap interval (calibrated on a planted truth and a null), the spec's resume rules,
and the whole command end to end on the tiny model."""

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from gradlens import validation as va
from gradlens.analysis.evidence import module_evidence, with_q_values
from gradlens.analysis.validation import (prediction_verdict, rank_correlation,
                                          realised_benefit, span)
from gradlens.arms import loss_partition
from gradlens.train.config import TrainConfig

LANGS = ["a", "b", "c", "d", "e", "f"]


def test_span_puts_the_plan_first_then_spans_the_rest_from_top_to_bottom():
    gains = {f"m{i}": float(20 - i) for i in range(20)}  # m0 highest ... m19 lowest
    chosen = span(gains, planned=["m3", "m1"], n=6)
    assert {"m1", "m3"} <= set(chosen)  # the plan's
    assert chosen[0] == "m0" and chosen[-1] == "m19"  # the top and the bottom of the others
    assert len(set(chosen)) == 6 and chosen == sorted(chosen, key=lambda m: -gains[m])
    assert span(gains, [], 30) == sorted(gains, key=lambda m: -gains[m])  # all when n is large
    # at most half of n from the plan: the rest must still span the gain
    assert len([m for m in span(gains, [f"m{i}" for i in range(10)], 4) if int(m[1:]) < 10]) <= 3


def test_realised_benefit_is_shared_minus_split_averaged_over_languages_then_seeds():
    shared = {0: {"a": 2.0, "b": 3.0}, 1: {"a": 2.2, "b": 3.2}, 2: {"a": 9.0}}
    split = {0: {"a": 1.5, "b": 3.1}, 1: {"a": 2.0, "b": 3.0}}
    mean, per_seed = realised_benefit(shared, split)
    assert per_seed == pytest.approx([0.2, 0.2]) and mean == pytest.approx(0.2)
    assert realised_benefit(shared, {}) is None


def test_rank_correlation_is_spearmans_rho_with_an_interval_around_it():
    rng = np.random.default_rng(0)
    x = rng.normal(size=12)
    y = x + 0.5 * rng.normal(size=12)
    rc = rank_correlation(x, y)
    assert rc.rho == pytest.approx(spearmanr(x, y).statistic)
    assert rc.low < rc.rho < rc.high and rc.n == 12
    assert rank_correlation([1, 2, 3], [3, 2, 1]).low is None  # too few for an interval
    assert rank_correlation([1, 1, 1, 1], [1, 2, 3, 4]).rho is None  # a constant side


def test_the_intervals_false_positive_rate_and_power_on_simulated_modules():
    """Ten modules, as ``validate`` fine-tunes by default: under the null (benefit independent
    of the prediction) the interval lies above 0 at most about as often as its one-sided 2.5 %;
    with a planted dependence (latent correlation 0.8) it finds it most of the time."""
    rng = np.random.default_rng(1)
    false, found = 0, 0
    for r in range(300):
        x = rng.normal(size=10)
        null = rank_correlation(x, rng.normal(size=10), boots=500, seed=r)
        false += null.low > 0
        planted = rank_correlation(x, 0.8 * x + 0.6 * rng.normal(size=10), boots=500, seed=r)
        found += planted.low > 0
    assert false / 300 <= 0.06
    assert found / 300 >= 0.6


def test_the_verdict_is_worded_no_stronger_than_the_interval():
    from gradlens.analysis.validation import RankCorrelation

    assert "predicts the realised benefit (" in prediction_verdict(
        "gain", RankCorrelation(0.7, 0.2, 0.9, 10))
    assert "weakly" in prediction_verdict("gain", RankCorrelation(0.4, 0.05, 0.7, 10))
    assert "no prediction is shown" in prediction_verdict("gain", RankCorrelation(0.6, -0.1, 0.9, 10))
    assert "wrong way round" in prediction_verdict("gain", RankCorrelation(-0.7, -0.9, -0.2, 10))
    assert "nothing can be said" in prediction_verdict("gain", RankCorrelation(None, None, None, 2))


def test_loss_groups_cut_the_languages_in_order_of_their_loss():
    assert loss_partition(["a", "b", "c", "d"], [3.0, 1.0, 4.0, 2.0], [2, 2]) == \
        [["b", "d"], ["a", "c"]]
    with pytest.raises(ValueError, match="group sizes"):
        loss_partition(["a", "b"], [1.0, 2.0], [1, 2])


def _evidence():
    """Real evidence from simulated sketches: two modules with planted clusters of different
    strength, four shared ones."""
    rng = np.random.default_rng(3)
    out = []
    for i, strength in enumerate([3.0, 1.5, 0, 0, 0, 0]):
        mean = np.tile(rng.normal(size=128), (6, 1))
        mean = mean + strength * rng.normal(size=(2, 128))[[0, 0, 0, 1, 1, 1]]
        x = mean[None, :, None, :] + 1.5 * rng.normal(size=(24, 6, 2, 128))
        out.append(module_evidence(x, LANGS, ["st", "asr"], f"m{i}", 1000 * (i + 1)))
    return with_q_values(out)


def test_the_design_gives_every_module_each_groupings_groups_of_the_proposed_sizes():
    ev = _evidence()
    typology = np.ones((6, 6)) - np.eye(6)
    typology[:2, :2] = typology[2:, 2:] = 0.2
    np.fill_diagonal(typology, 0)
    modules = va.design(ev, ["m0"], 4, LANGS, [1.0, 2, 3, 4, 5, 6], typology,
                        ["proposed", "random", "typology", "loss"])
    assert len(modules) == 4 and modules[0]["module"] == "m0" and modules[0]["in_plan"]
    for m in modules:
        sizes = sorted(len(g) for g in m["groupings"]["proposed"])
        for g, groups in m["groupings"].items():
            assert sorted(x for grp in groups for x in grp) == LANGS, g
            if g != "typology":  # typology keeps the count, not the sizes
                assert sorted(len(x) for x in groups) == sizes, g
            assert len(groups) == len(sizes)
        assert set(m["predictors"]) >= {"gain", "excess", "neg_q", "priority", "q_value"}
    assert modules[0]["groupings"]["proposed"] == [["a", "b", "c"], ["d", "e", "f"]]
    gains = [m["predictors"]["gain"] for m in modules]
    assert gains == sorted(gains, reverse=True)


def test_a_validation_resumes_with_its_design_and_refuses_another(tmp_path):
    modules = [{"module": "text_decoder.layers.0.ffn", "n_params": 100, "in_plan": True,
                "predictors": {"gain": 1.0}, "groupings": {"proposed": [["a"], ["b"]]}}]
    cfg = TrainConfig(steps=4, dev_loss_size=8)
    spec = va.create(tmp_path / "v", "runs/x", "tiny", ["a", "b"], modules, ["proposed"], [0, 1],
                     cfg)
    assert set(spec["arms"]) == {"shared", "m00-proposed"}
    assert spec["jobs"]["m00-proposed"]["1"] == "v-m00-proposed-s1"
    assert spec["arms"]["m00-proposed"]["extra_params"] == 100
    plan = json.loads((tmp_path / "v" / "plans" / "m00-proposed-s0.json").read_text())
    assert list(plan["modules"]) == ["text_decoder.layers.0.ffn"]
    assert va.create(tmp_path / "v", "runs/x", "tiny", ["a", "b"], modules, ["proposed"], [0, 1],
                     cfg)["created"] == spec["created"]
    with pytest.raises(va.ValidationError, match="another design"):
        va.create(tmp_path / "v", "runs/x", "tiny", ["a", "b"], modules, ["proposed"], [0, 1, 2],
                  cfg)
    with pytest.raises(va.ValidationError, match="dev_loss_size"):
        va.create(tmp_path / "w", "runs/x", "tiny", ["a", "b"], modules, ["proposed"], [0],
                  TrainConfig(steps=4))


def test_the_summary_correlates_each_predictor_with_the_proposed_groups_benefit():
    spec = {"groupings": ["proposed", "random"], "modules": [
        {"module": f"m{i}", "n_params": 10, "in_plan": i < 2,
         "predictors": {"gain": float(6 - i), "excess": float(i), "neg_q": -0.01 * i,
                        "priority": None if i == 5 else float(6 - i), "q_value": 0.01 * i,
                        "gain_low": 0.0},
         "groupings": {"proposed": [["a"], ["b"]], "random": [["b"], ["a"]]}} for i in range(6)]}
    shared = {0: {"a": 2.0, "b": 2.0}}
    losses = {"shared": shared}
    for i in range(6):  # the benefit falls with i, as the gain does; random groups help less
        losses[f"m{i:02d}-proposed"] = {0: {"a": 2.0 - 0.1 * (6 - i), "b": 2.0}}
        losses[f"m{i:02d}-random"] = {0: {"a": 2.0 - 0.01 * (6 - i), "b": 2.0}}
    out = va.summarise(spec, losses)
    assert out["correlations"]["gain"]["rho"] == pytest.approx(1.0)
    assert out["correlations"]["excess"]["rho"] == pytest.approx(-1.0)
    assert out["correlations"]["priority"]["n"] == 5  # a module without the figure is left out
    # every module costs the same here, so per extra parameter ranks alike
    assert out["per_parameter"]["gain"]["rho"] == pytest.approx(1.0)
    assert out["versus"]["random"]["mean"] > 0 and out["versus"]["random"]["n"] == 6
    assert out["modules"][0]["benefit"]["proposed"]["mean"] == pytest.approx(0.3)
    text = va.answer({**out, "complete": True})
    assert text.startswith("The predicted gain predicts the realised benefit")
    assert "above 0" in text
    csv_lines = va.table_csv(out).splitlines()
    assert csv_lines[0].startswith("module,in_plan,n_params,extra_params,grouping,groups,gain")
    assert len(csv_lines) == 1 + 6 * 2


def test_the_training_config_checks_the_new_fields_and_old_configs_still_compare_alike():
    from gradlens.errors import ConfigError
    from gradlens.train.config import comparable

    with pytest.raises(ConfigError, match="dev_loss_size"):
        TrainConfig(dev_loss_size=-1)
    with pytest.raises(ConfigError, match="translate_eval"):
        TrainConfig(translate_eval="no")
    import dataclasses

    recorded_before = {k: v for k, v in dataclasses.asdict(TrainConfig()).items()
                       if k not in ("translate_eval", "dev_loss_size")}
    assert comparable(dataclasses.asdict(TrainConfig())) == recorded_before
    assert "dev_loss_size" in comparable(dataclasses.asdict(TrainConfig(dev_loss_size=8)))


def test_validate_runs_end_to_end_on_the_tiny_model_resumes_and_shows_on_its_page(
        tiny_run, tmp_path, monkeypatch):
    """The command a researcher runs: 2 modules × 2 groupings and the shared fine-tune, 1 seed,
    real jobs through the registry; then the results, the CSV and the page; the same command
    again submits nothing."""
    import os
    import shutil
    import subprocess
    import sys

    from conftest import ROOT, stop_jobs

    runs = tmp_path / "runs"
    shutil.copytree(tiny_run, runs / "small", ignore=shutil.ignore_patterns("*.lock"))
    monkeypatch.setenv("GRADLENS_RUNS", str(runs))
    argv = [sys.executable, "-m", "gradlens", "validate", str(runs / "small"), "--modules", "2",
            "--groupings", "proposed,random", "--seeds", "1", "--name", "val", "--steps", "3",
            "--batch-size", "2", "--warmup-steps", "1", "--eval-every", "3",
            "--checkpoint-every", "3", "--dev-loss-size", "3", "--eval-batch-size", "4"]
    env = {**os.environ, "GRADLENS_RUNS": str(runs)}
    try:
        first = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "submitted 5 job(s)" in first.stdout
        spec = va.read_spec(runs / "val")
        assert len(spec["modules"]) == 2 and set(spec["arms"]) == {
            "shared", "m00-proposed", "m00-random", "m01-proposed", "m01-random"}
        # every job read the dev loss of 3 utterances per language at its end, and translated
        # nothing
        from gradlens.metrics import read_metrics

        records = read_metrics(runs / "val-m00-proposed-s0" / "metrics.jsonl")
        losses = [r for r in records if r["kind"] == "dev_loss"]
        assert [r["step"] for r in losses] == [3] * 4 and all(r["n"] == 3 for r in losses)
        assert all(np.isfinite(r["loss_st"]) and r["loss_st"] > 0 for r in losses)
        assert not [r for r in records if r["kind"] == "eval"]
        res = va.read_results(runs / "val")
        assert res["complete"] and res["jobs_done"] == 5
        for m in res["modules"]:
            assert set(m["benefit"]) == {"proposed", "random"}
        # two modules: a ρ of ±1 and no interval, said plainly
        assert res["correlations"]["gain"]["low"] is None
        assert "nothing can be said yet" in res["answer"] and "nothing can be said yet" in first.stdout
        lines = (runs / "val" / va.TABLE).read_text().splitlines()
        assert len(lines) == 1 + 2 * 2 and all(line.split(",")[11] for line in lines[1:])

        again = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "submitted 0 job(s)" in again.stdout

        from streamlit.testing.v1 import AppTest

        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        at.switch_page("pages/validation.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.selectbox(key="val_pick").value == "val"
        assert any(m.value.startswith("**The predicted gain") for m in at.markdown)
        charts = [c.proto.spec for c in at.get("plotly_chart")]
        assert any("against the realised benefit" in c and "proposed groups" in c for c in charts)
        frames = {tuple(df.value.columns)[0]: df.value for df in at.dataframe}
        assert len(frames["module"]) == 2 and set(frames["groups"]["groups"]) == {"proposed", "random"}
        assert len(frames["predictor"]) == 4
    finally:
        stop_jobs(runs)
