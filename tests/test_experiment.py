"""Plan experiments: arm construction, scoring and significance, resume, and a miniature run."""

import json

import numpy as np
import pytest
import sacrebleu
from sacrebleu.significance import PairedTest

from gradlens.arms import build_arms, extra_of, random_partition, typology_partition
from gradlens.plan import SharingPlan, new_plan
from gradlens.significance import holm, paired_test, seed_interval

LANGS = ["spa", "ita", "deu", "nld", "rus", "ukr"]
# a model's modules: same-sized ones in other layers, as transformers have
N_PARAMS = {f"enc.layers.{i}.{m}": n for i in range(4)
            for m, n in (("ffn", 1000), ("attn", 400), ("norm", 20))}


def proposed(**splits) -> SharingPlan:
    """The plan the tests compare arms with; ``splits`` (module -> groups) replace its own."""
    return new_plan("tiny", LANGS, "runs/x", splits or {
        "enc.layers.1.ffn": [["spa", "nld", "ukr"], ["ita", "deu", "rus"]],
        "enc.layers.2.attn": [["spa"], ["ita", "deu"], ["nld", "rus", "ukr"]]})


def typology() -> np.ndarray:
    fam = {"spa": 0, "ita": 0, "deu": 1, "nld": 1, "rus": 2, "ukr": 2}
    return np.array([[0.0 if fam[a] == fam[b] else 1.0 for b in LANGS] for a in LANGS])


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_every_arm_is_a_valid_plan_and_all_but_shared_spend_the_same_parameters(seed):
    arms = build_arms(proposed(), N_PARAMS, seed, typology())
    assert list(arms) == ["proposed", "random-groups", "random-modules", "typology", "shared"]
    for plan in arms.values():
        plan.check(list(N_PARAMS))
    extra = extra_of(arms, N_PARAMS)
    assert extra["proposed"] == 1000 + 2 * 400
    assert extra["random-groups"] == extra["random-modules"] == extra["typology"] == extra["proposed"]
    assert extra["shared"] == 0 and arms["shared"].modules == {}


def test_random_modules_spend_exactly_the_plans_parameters_when_it_took_every_small_module():
    # the plan splits all four norms (as a budget spent on cheap modules does on a small model):
    # the arm may not fall back to larger modules, so it reuses norms, in random groups
    p = proposed(**{f"enc.layers.{i}.norm": [["spa", "nld", "ukr"], ["ita", "deu", "rus"]]
                    for i in range(4)}, **{"enc.layers.0.ffn": [["spa", "nld"], ["ita", "deu", "rus", "ukr"]]})
    for seed in range(5):
        arms = build_arms(p, N_PARAMS, seed, typology())
        arms["random-modules"].check(list(N_PARAMS))
        extra = extra_of(arms, N_PARAMS)
        assert extra["random-modules"] == extra["proposed"] == 4 * 20 + 1000
        assert "enc.layers.0.ffn" not in arms["random-modules"].modules  # others were left


def test_random_arms_keep_group_sizes_and_draw_other_modules():
    p = proposed()
    arms = build_arms(p, N_PARAMS, 3, typology())
    for key, entry in p.modules.items():
        assert sorted(map(len, arms["random-groups"].modules[key].groups)) == \
            sorted(map(len, entry.groups))
    picked = arms["random-modules"].modules
    assert not set(picked) & set(p.modules)
    assert sorted(N_PARAMS[k] for k in picked) == sorted(N_PARAMS[k] for k in p.modules)
    # the same seed rebuilds the same arms; another seed draws others
    assert build_arms(p, N_PARAMS, 3, typology()) == arms
    draws = {json.dumps(build_arms(p, N_PARAMS, s, typology())["random-groups"].to_dict()["modules"],
                        sort_keys=True) for s in range(8)}
    assert len(draws) > 1


def test_typology_groups_follow_the_distance_and_keep_the_group_count():
    d = typology()
    assert typology_partition(LANGS, 3, d) == [["ita", "spa"], ["deu", "nld"], ["rus", "ukr"]]
    # ties everywhere still give exactly the number of groups asked for
    flat = np.ones((6, 6)) - np.eye(6)
    for g in (2, 4, 5):
        assert len(typology_partition(LANGS, g, flat)) == g
    arms = build_arms(proposed(), N_PARAMS, 0, d)
    assert [len(e.groups) for e in arms["typology"].modules.values()] == [2, 3]


def test_random_partition_is_a_partition_of_the_sizes():
    groups = random_partition(LANGS, [1, 2, 3], 5)
    assert sorted(map(len, groups)) == [1, 2, 3]
    assert sorted(x for g in groups for x in g) == sorted(LANGS)
    with pytest.raises(ValueError, match="do not add up"):
        random_partition(LANGS, [2, 2], 0)


def test_a_plan_that_splits_nothing_has_nothing_to_compare():
    with pytest.raises(ValueError, match="nothing to compare"):
        build_arms(new_plan("tiny", LANGS), N_PARAMS, 0)


# -- significance -----------------------------------------------------------------------------
REFS = [f"{a} thousand {b} hundred and {c}" for a in ("one", "two", "three", "four")
        for b in ("five", "six", "seven") for c in ("eight", "nine", "ten", "eleven", "twelve")]


def _system(keep_every: int, wrong: str) -> list[str]:
    return [r if i % keep_every else wrong for i, r in enumerate(REFS)]


def test_paired_test_matches_sacrebleus_randomisation_where_no_trial_ties():
    a, b = _system(3, "one"), _system(5, "thousand two")
    mine = paired_test(a, b, REFS, trials=500)
    for m, metric in (("bleu", sacrebleu.BLEU()), ("chrf", sacrebleu.CHRF())):
        _, res = PairedTest([("a", a), ("b", b)], {m: metric}, [REFS], test_type="ar",
                            n_samples=500)()
        theirs = next(v for k, v in res.items() if k != "System")
        assert mine[m]["b"] == pytest.approx(theirs[1].score)
        assert mine[m]["a"] == pytest.approx(theirs[0].score)
        assert mine[m]["p"] == pytest.approx(theirs[1].p_value)
        assert mine[m]["delta"] == pytest.approx(theirs[1].score - theirs[0].score)


def test_identical_systems_are_not_significant_though_sacrebleu_says_they_are():
    a = _system(3, "one")
    assert paired_test(a, list(a), REFS, trials=200)["bleu"]["p"] == 1.0
    _, res = PairedTest([("a", a), ("b", list(a))], {"bleu": sacrebleu.BLEU()}, [REFS],
                        test_type="ar", n_samples=200)()
    assert res["BLEU"][1].p_value < 0.01  # counts only strictly larger differences


def test_a_clearly_better_system_is_significant():
    worse, better = _system(2, "one"), _system(20, "one")
    res = paired_test(worse, better, REFS, trials=500)
    assert res["chrf"]["delta"] > 0 and res["chrf"]["p"] < 0.01


def test_seed_interval_is_the_student_t_interval():
    from scipy import stats

    x = [30.1, 31.4, 29.8]
    iv = seed_interval(x)
    lo, hi = stats.t.interval(0.95, 2, loc=np.mean(x), scale=stats.sem(x))
    assert (iv.low, iv.high) == pytest.approx((lo, hi))
    assert seed_interval([3.0]).low is None


def test_holm_adjusts_step_down_and_stays_monotone():
    adj = holm({"a": 0.01, "b": 0.04, "c": 0.03})
    assert adj == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})


# -- a miniature experiment, end to end -------------------------------------------------------
@pytest.mark.integration
def test_a_two_arm_one_seed_experiment_runs_end_to_end_and_resumes(tiny_run, tmp_path, monkeypatch):
    """The command a researcher runs: real jobs through the registry, then scores, a CSV and
    the paired test; the same command again submits nothing and gives the same results."""
    import os
    import shutil
    import subprocess
    import sys

    from conftest import stop_jobs
    from gradlens import experiment as ex
    from gradlens.plan import save_plan

    runs = tmp_path / "runs"
    shutil.copytree(tiny_run, runs / "small")
    monkeypatch.setenv("GRADLENS_RUNS", str(runs))
    plan = new_plan("tiny", ["spa", "ita", "deu", "rus"], str(runs / "small"),
                    {"text_decoder.layers.1.ffn": [["spa", "ita"], ["deu", "rus"]]})
    save_plan(plan, runs / "small" / "plan.json")
    argv = [sys.executable, "-m", "gradlens", "experiment", str(runs / "small"),
            "--plan", str(runs / "small" / "plan.json"), "--arms", "proposed,shared",
            "--seeds", "1", "--name", "mini", "--steps", "4", "--batch-size", "2",
            "--warmup-steps", "1", "--eval-every", "2", "--eval-size", "2",
            "--checkpoint-every", "2", "--trials", "200"]
    env = {**os.environ, "GRADLENS_RUNS": str(runs)}
    try:
        first = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "submitted 2 job(s)" in first.stdout
        results = ex.read_results(runs / "mini")
        assert results["complete"] and results["jobs_done"] == 2
        assert set(results["arms"]) == {"proposed", "shared"}
        # 4 languages × 2 test utterances, the same for both arms; checkpoint chosen on dev
        assert results["test_utterances"] == 8
        for arm in ("proposed", "shared"):
            assert results["arms"][arm]["steps"]["0"] in (2, 4)
            assert set(results["arms"][arm]["scores"]) == {"spa", "ita", "deu", "rus", "all"}
        spec = ex.read_spec(runs / "mini")
        assert spec["arms"]["shared"]["extra_params"] == 0
        assert spec["arms"]["proposed"]["extra_params"] > 0
        cmp = results["comparisons"]["shared"]
        for m in ("bleu", "chrf"):
            assert 0 < cmp[m]["p_utterances"] <= 1
            # one seed: no test over seeds, no interval, no verdict
            assert cmp[m]["p_holm"] is None and cmp[m]["interval"] is None
            assert cmp[m]["verdict"] == "not shown"
        assert results["declared"]["metric"] == "chrf" and results["declared"]["baseline"] == "shared"
        assert "Primary (declared before it ran): chrf, proposed against shared: no difference" \
            in first.stdout
        csv_lines = (runs / "mini" / "scores.csv").read_text().splitlines()
        assert csv_lines[0] == "arm,seed,step,language,n,bleu,chrf" and len(csv_lines) == 1 + 2 * 5

        again = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "submitted 0 job(s)" in again.stdout
        assert ex.read_results(runs / "mini")["arms"] == results["arms"]

        # the Experiments page shows the arms, the paired comparison and the hypotheses
        from streamlit.testing.v1 import AppTest

        from conftest import ROOT

        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        at.switch_page("pages/experiments.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.selectbox(key="exp_pick").value == "mini"
        frames = {tuple(df.value.columns)[0]: df.value for df in at.dataframe}
        jobs = frames["arm"]
        assert sorted(jobs["arm"]) == ["proposed", "shared"] and set(jobs["state"]) == {"succeeded"}
        assert list(jobs["step"]) == ["4 / 4", "4 / 4"]
        charts = [c.proto.spec for c in at.get("plotly_chart")]
        arms = [c for c in charts if "by arm (mean over seeds, 95" in c]
        assert len(arms) == 2 and all('"proposed"' in c for c in arms)
        assert any("dev chrF by arm" in c for c in charts)  # the curves to follow
        assert list(frames["baseline"]["baseline"]) == ["shared"]
        # the verdict is over seeds; the randomisation's p is named for what it covers
        assert "chrF seed-level p (Holm)" in frames["baseline"].columns
        assert list(frames["baseline"]["chrF seed-level p (Holm)"]) == ["one seed"]
        assert "chrF test-set p (secondary)" in frames["baseline"].columns
        assert any("speak to these test utterances only" in c.value for c in at.caption)
        assert any(m.value.startswith("**Primary (declared before it ran)") for m in at.markdown)
        hyps = frames["id"]
        assert {"reference", "proposed", "shared"} <= set(hyps.columns) and len(hyps) > 0
    finally:
        stop_jobs(runs)


# -- scoring and the experiment files, without training ----------------------------------------
def _rows(lang_hyps: dict[str, list[str]]) -> list[dict]:
    return [{"language": lang, "id": f"{lang}-{i}", "ref": REFS[i], "hyp": h}
            for lang, hyps in lang_hyps.items() for i, h in enumerate(hyps)]


def test_aggregate_scores_with_sacrebleu_and_pairs_the_arms_by_seed():
    from gradlens.experiment import aggregate

    good = {s: _rows({"spa": _system(7 + s, "one")[:30], "deu": _system(5, "two")[:30]})
            for s in range(3)}
    bad = {s: _rows({"spa": _system(2, "one")[:30], "deu": _system(2 + s, "two")[:30]})
           for s in range(3)}
    res = aggregate({"proposed": good, "shared": bad}, trials=300)
    spa = [sacrebleu.corpus_chrf([r["hyp"] for r in good[s] if r["language"] == "spa"],
                                 [[r["ref"] for r in good[s] if r["language"] == "spa"]]).score
           for s in range(3)]
    assert res["arms"]["proposed"]["scores"]["spa"]["chrf"]["mean"] == pytest.approx(np.mean(spa))
    assert res["arms"]["proposed"]["scores"]["all"]["chrf"]["n"] == 3
    cmp = res["comparisons"]["shared"]
    assert cmp["seeds"] == [0, 1, 2]
    assert cmp["chrf"]["delta"]["mean"] > 0 and cmp["chrf"]["delta"]["low"] > 0
    assert cmp["chrf"]["p_utterances"] < 0.01  # secondary: the pooled test utterances
    # the verdict's test is over the 3 seeds: a one-sample t test of their differences
    from scipy.stats import ttest_1samp

    from gradlens.experiment import seed_scores
    sc = seed_scores({"proposed": good, "shared": bad})
    deltas = [sc["proposed"][s]["all"]["chrf"] - sc["shared"][s]["all"]["chrf"] for s in range(3)]
    assert cmp["chrf"]["seeds"]["t_p"] == pytest.approx(ttest_1samp(deltas, 0).pvalue)
    assert cmp["chrf"]["p_holm"] == cmp["chrf"]["seeds"]["t_p"]  # one baseline
    assert 0 < cmp["chrf"]["interval"]["low"] < cmp["chrf"]["delta"]["mean"] \
        < cmp["chrf"]["interval"]["high"]


def test_arms_tested_on_other_utterances_are_refused():
    from gradlens.experiment import ExperimentError, aggregate

    a = {0: _rows({"spa": REFS[:10]})}
    b = {0: _rows({"spa": REFS[:10]})}
    b[0][3]["id"] = "spa-other"
    with pytest.raises(ExperimentError, match="same for every arm"):
        aggregate({"proposed": a, "shared": b}, trials=50)


def test_the_checkpoint_is_the_best_dev_evaluation():
    from gradlens.experiment import selected_step

    ev = [{"kind": "eval", "split": split, "language": "all", "step": step, "chrf": c}
          for split, step, c in (("dev", 100, 40.0), ("test", 100, 99.0), ("dev", 200, 44.0),
                                 ("dev", 300, 44.0), ("test", 300, 10.0))]
    assert selected_step(ev) == 300  # ties go to the later step; test never decides
    start = {"kind": "eval", "step": 0, "split": "dev", "language": "all", "bleu": 90.0,
             "chrf": 99.0, "n": 16}
    assert selected_step([start, *ev]) == 300  # the starting model is never the arm's result
    assert selected_step([start]) is None
    assert selected_step([r for r in ev if r["split"] == "test"]) is None


def test_an_experiment_resumes_with_the_same_design_and_refuses_another(tmp_path):
    from gradlens.experiment import ExperimentError, create, jobs_of
    from gradlens.train.config import TrainConfig

    cfg = TrainConfig(steps=10)
    spec = create(tmp_path / "e", proposed(), N_PARAMS, [0, 1], cfg, typology())
    assert len(jobs_of(spec)) == 10 and jobs_of(spec)[0] == ("proposed", 0, "e-proposed-s0")
    assert (tmp_path / "e" / "plans" / "random-modules-s1.json").exists()
    assert create(tmp_path / "e", proposed(), N_PARAMS, [0, 1], cfg, typology()) == spec
    # a newer analysis records more figures beside the same groups, listed in another order
    annotated = proposed().with_split("enc.layers.1.ffn", [["ita", "deu", "rus"], ["spa", "nld", "ukr"]],
                                      {"split_gain": 0.5})
    assert create(tmp_path / "e", annotated, N_PARAMS, [0, 1], cfg, typology()) == spec
    with pytest.raises(ExperimentError, match=r"another plan, config or arms, or with seeds \[0, 1\]"):
        create(tmp_path / "e", proposed(), N_PARAMS, [1, 2], cfg, typology())  # drops seed 0
    regrouped = proposed().with_split("enc.layers.1.ffn", [["spa", "ita", "ukr"], ["nld", "deu", "rus"]])
    with pytest.raises(ExperimentError, match="another plan, config or arms"):
        create(tmp_path / "e", regrouped, N_PARAMS, [0, 1], cfg, typology())
    with pytest.raises(ExperimentError, match="'proposed' among them"):
        create(tmp_path / "f", proposed(), N_PARAMS, [0], cfg, typology(), arms=["shared"])


def test_seeds_added_after_looking_are_refused_unless_labelled_exploratory(tmp_path):
    from gradlens.experiment import Declaration, ExperimentError, create, read_spec
    from gradlens.train.config import TrainConfig

    cfg = TrainConfig(steps=10)
    spec = create(tmp_path / "e", proposed(), N_PARAMS, [0, 1], cfg, typology())
    assert spec["declared"] == Declaration().to_dict()  # chrF against shared, fixed at 2
    with pytest.raises(ExperimentError, match=r"2 → 4 seeds is not a look this experiment "
                                              r"declared before it ran \(it declared a fixed"):
        create(tmp_path / "e", proposed(), N_PARAMS, [0, 1, 2, 3], cfg, typology())
    assert read_spec(tmp_path / "e")["seeds"] == [0, 1]  # nothing written
    more = create(tmp_path / "e", proposed(), N_PARAMS, [0, 1, 2, 3], cfg, typology(),
                  exploratory=True)
    assert more["declared"]["exploratory"] and more["extensions"][0]["from"] == 2
    assert more["extensions"][0]["to"] == 4


def test_a_declared_sequential_design_extends_at_its_looks_only(tmp_path):
    from gradlens.experiment import Declaration, ExperimentError, create
    from gradlens.train.config import TrainConfig

    cfg = TrainConfig(steps=10)
    plan = Declaration(looks=(2, 4))
    assert plan.level() == 0.025  # the level split over the looks, in advance
    with pytest.raises(ExperimentError, match="starts at its first look: 2 seeds, not 3"):
        create(tmp_path / "e", proposed(), N_PARAMS, [0, 1, 2], cfg, typology(), declared=plan)
    create(tmp_path / "e", proposed(), N_PARAMS, [0, 1], cfg, typology(), declared=plan)
    with pytest.raises(ExperimentError, match="its declared looks are \\[2, 4\\]"):
        create(tmp_path / "e", proposed(), N_PARAMS, [0, 1, 2], cfg, typology())
    more = create(tmp_path / "e", proposed(), N_PARAMS, [0, 1, 2, 3], cfg, typology())
    assert more["seeds"] == [0, 1, 2, 3] and not more["declared"]["exploratory"]
    with pytest.raises(ExperimentError, match="primary baseline 'nope'"):
        create(tmp_path / "f", proposed(), N_PARAMS, [0, 1], cfg, typology(),
               declared=Declaration(baseline="nope"))


def test_more_seeds_extend_an_experiment_without_touching_its_jobs(tmp_path):
    from gradlens.experiment import create, jobs_of, load_arm_plan
    from gradlens.train.config import TrainConfig

    cfg = TrainConfig(steps=10)
    spec = create(tmp_path / "e", proposed(), N_PARAMS, [0, 1], cfg, typology())
    before = (tmp_path / "e" / "plans" / "random-groups-s1.json").read_text()
    more = create(tmp_path / "e", proposed(), N_PARAMS, [0, 1, 2, 3], cfg, typology(),
                  exploratory=True)
    assert more["seeds"] == [0, 1, 2, 3] and more["created"] == spec["created"]
    assert jobs_of(more)[:10] == jobs_of(spec) and len(jobs_of(more)) == 20
    assert (tmp_path / "e" / "plans" / "random-groups-s1.json").read_text() == before
    # a new seed's arms are those a fresh experiment draws for it
    fresh = create(tmp_path / "f", proposed(), N_PARAMS, [3], cfg, typology())
    assert fresh["seeds"] == [3]
    assert load_arm_plan(tmp_path / "e", "random-modules", 3) == \
        load_arm_plan(tmp_path / "f", "random-modules", 3)


def test_the_training_config_holds_its_own_rules_wherever_a_job_is_made():
    from gradlens.train.config import TrainConfig

    assert TrainConfig(steps=10).warmup_steps == 10 and TrainConfig().warmup_steps == 40
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0, got inf"):
        TrainConfig(learning_rate=float("inf"))


def test_a_verdict_needs_the_seed_level_test_and_the_interval_to_agree():
    from gradlens.experiment import conclusion, primary_conclusion, verdict

    up = {"low": 0.5, "high": 3.5}
    across = {"low": -0.5, "high": 2.5}
    down = {"low": -3.5, "high": -0.5}
    assert verdict(up, 0.01) == "better" and verdict(down, 0.01) == "worse"
    assert verdict(up, 0.2) == "not shown"          # the test over seeds does not reject
    assert verdict(up, 0.04, alpha=0.025) == "not shown"  # a sequential look's level
    assert verdict(across, 0.001) == "not shown"    # the interval covers 0
    assert verdict(None, None) == "not shown"       # one seed: neither test nor interval
    shared = {"seeds": [0, 1, 2, 3], "chrf": {"verdict": "better", "p_holm": 0.01,
                                              "delta": {"mean": 2.0},
                                              "interval": {"low": 0.5, "high": 3.5}}}
    res = {"comparisons": {"shared": shared},
           "declared": {"metric": "chrf", "baseline": "shared", "exploratory": False}}
    assert primary_conclusion(res).startswith("Primary (declared before it ran): chrf, proposed "
                                              "against shared: proposed is better (Δ +2.00")
    res["declared"]["exploratory"] = True
    assert primary_conclusion(res).startswith("Primary (exploratory: seeds were added after")
    assert "exploratory" in primary_conclusion({"comparisons": {}, "declared": None})
    res = {"reference": "proposed", "complete": False, "comparisons": {
        "shared": {"chrf": {"verdict": "better"}}, "random-groups": {"chrf": {"verdict": "not shown"}}}}
    assert conclusion(res, "chrf") == ("chrf: Proposed is better than shared; no difference is "
                                       "shown against random-groups (intermediate: not every job "
                                       "has finished).")


def test_jobs_that_ended_far_below_their_starting_model_are_named(tmp_path, monkeypatch):
    from gradlens.experiment import below_start

    monkeypatch.setenv("GRADLENS_RUNS", str(tmp_path))
    spec = {"seeds": [0], "arms": {"proposed": {}, "shared": {}},
            "jobs": {"proposed": {"0": "job-a"}, "shared": {"0": "job-b"}}}
    for job, final in (("job-a", 30.0), ("job-b", 38.0)):
        (tmp_path / job).mkdir()
        rows = [{"kind": "eval", "step": step, "split": "test", "language": "all", "bleu": 1.0,
                 "chrf": chrf, "n": 32} for step, chrf in ((0, 40.0), (50, final))]
        (tmp_path / job / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert below_start(spec) == [("job-a", 40.0, 30.0)]  # job-b is within 5 chrF points


def test_the_loss_level_arm_groups_by_probe_loss_at_the_plans_sizes_and_is_opt_in():
    from gradlens.arms import DEFAULT_ARMS

    losses = np.array([3.0, 1.0, 2.5, 0.5, 2.0, 1.5])  # spa ita deu nld rus ukr
    arms = build_arms(proposed(), N_PARAMS, 0, typology(), losses)
    assert list(arms)[-2:] == ["loss-level", "shared"]
    extra = extra_of(arms, N_PARAMS)
    assert extra["loss-level"] == extra["proposed"]
    for key, entry in proposed().modules.items():
        groups = arms["loss-level"].modules[key].groups
        assert sorted(map(len, groups)) == sorted(map(len, entry.groups))
        assert all(max(losses[LANGS.index(x)] for x in a) <= min(losses[LANGS.index(x)] for x in b)
                   or max(losses[LANGS.index(x)] for x in b) <= min(losses[LANGS.index(x)] for x in a)
                   for a in groups for b in groups if a != b)  # contiguous in loss
    assert "loss-level" not in DEFAULT_ARMS  # the same command still resumes older experiments
