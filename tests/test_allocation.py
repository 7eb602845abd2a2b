"""Evidence, capacity allocation under a budget, the proposed plan, and the analyze/plan CLI."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gradlens.analysis.allocation import allocate, extra_cost, propose_plan
from gradlens.analysis.evidence import module_evidence, rank_modules, with_q_values
from gradlens.evidence import run_evidence
from gradlens.plan import load_plan

LANGS = ["a", "b", "c", "d", "e", "f"]
CLUSTER = [0, 0, 0, 1, 1, 1]


def sketches(kind: str, S=24, D=256, seed=0) -> np.ndarray:
    """``[S, L, 2, D]``: ``shared`` (one direction + noise) or ``clustered`` (two planted
    clusters of languages pulling apart)."""
    rng = np.random.default_rng(seed)
    mean = np.tile(rng.normal(size=D), (len(LANGS), 1))
    if kind == "clustered":
        centres = rng.normal(size=(2, D))
        mean = mean + 2.0 * centres[CLUSTER]
    return mean[None, :, None, :] + 1.5 * rng.normal(size=(S, len(LANGS), 2, D))


def evidence(kinds: dict[str, tuple[str, int]]):
    return [module_evidence(sketches(kind, seed=i), LANGS, ["st", "asr"], name, n)
            for i, (name, (kind, n)) in enumerate(kinds.items())]


def test_a_planted_clustered_module_is_split_into_its_clusters():
    ev = evidence({"m.shared1": ("shared", 1000), "m.clustered": ("clustered", 1000),
                   "m.shared2": ("shared", 1000)})
    assert rank_modules(ev)[0].module == "m.clustered"
    plan = propose_plan(ev, budget=0.5, total_params=3000, model="tiny", languages=LANGS)
    assert list(plan.modules) == ["m.clustered"]
    entry = plan.modules["m.clustered"]
    assert sorted(map(sorted, entry.groups)) == [["a", "b", "c"], ["d", "e", "f"]]
    assert entry.evidence["excess_ci_low"] > 0 and entry.evidence["p_value"] < 0.01
    assert set(entry.evidence) >= {"excess_divergence", "q_value", "cca_mean", "conflict_rate"}
    assert plan.decisions["m.clustered"].startswith("split into 2 groups")
    assert all(plan.decisions[m].startswith("kept shared") for m in ("m.shared1", "m.shared2"))
    plan.check(["m.shared1", "m.clustered", "m.shared2"])


def test_a_run_with_no_real_differences_yields_an_empty_plan():
    """Shared modules at several noise levels per language: nothing to split, and every module
    says why."""
    rng = np.random.default_rng(11)
    ev = []
    for i in range(12):
        mean = rng.normal(size=256)
        noise = rng.uniform(1, 3, size=len(LANGS))
        x = mean + noise[None, :, None, None] * rng.normal(size=(24, len(LANGS), 2, 256))
        ev.append(module_evidence(x, LANGS, ["st", "asr"], f"m{i}", 1000))
    ev = with_q_values(ev)
    plan = propose_plan(ev, budget=1.0, total_params=12_000, model="tiny", languages=LANGS)
    assert plan.modules == {}
    assert set(plan.decisions) == {e.module for e in ev}
    assert all(r.startswith("kept shared") for r in plan.decisions.values())


def test_q_values_correct_for_testing_many_modules():
    ev = with_q_values(evidence({f"m{i}": ("shared", 100) for i in range(6)}
                                | {"planted": ("clustered", 100)}))
    q = {e.module: e.q_value for e in ev}
    p = {e.module: e.divergence.p_value for e in ev}
    assert all(q[m] >= p[m] for m in q)
    assert q["planted"] < 0.05 and min(q[m] for m in q if m != "planted") > 0.05


def test_allocation_keeps_to_the_budget_and_prefers_cheap_strong_modules():
    ev = evidence({"big": ("clustered", 10_000), "small": ("clustered", 1_000),
                   "noise": ("shared", 500)})
    costs = {e.module: extra_cost(e) for e in ev}
    total = 100_000
    a = allocate(ev, budget=costs["small"] / total, total_params=total)
    assert [e.module for e in a.modules] == ["small"] and a.extra_params == costs["small"]
    assert "big" in a.skipped_over_budget
    both = allocate(ev, budget=(costs["small"] + costs["big"]) / total, total_params=total)
    assert [e.module for e in both.modules] == ["small", "big"]
    assert both.fraction == pytest.approx((costs["small"] + costs["big"]) / total)
    assert allocate(ev, budget=0.0, total_params=total).modules == []
    with pytest.raises(ValueError, match="budget"):
        allocate(ev, budget=-0.1, total_params=total)


def test_the_plan_records_the_held_out_gain_of_the_proposed_groups():
    from gradlens.analysis.allocation import evidence_fields

    e = evidence({"m": ("clustered", 1000)})[0]
    gain, low = e.held_out_gain
    fields = evidence_fields(e)
    assert fields["split_gain"] == pytest.approx(gain, rel=1e-5) and gain > 0
    assert fields["split_gain_ci_low"] == pytest.approx(low, rel=1e-5) and low < gain
    decision = allocate([e], budget=1.0, total_params=1000).decisions["m"]
    assert f"first-order gain held out {gain:.3g} (at least {low:.3g})" in decision


def test_allocation_prefers_the_module_the_gradient_flows_through():
    """Two modules of one size whose languages diverge alike (the same cosines), one carrying a
    tenth of the other's gradient: a budget for one takes the strong one, whichever comes first.
    A layer norm through which little of the loss flows buys little when split."""
    x = sketches("clustered", seed=5)
    weak = module_evidence(0.1 * x, LANGS, ["st", "asr"], "weak", 1000)
    strong = module_evidence(x, LANGS, ["st", "asr"], "strong", 1000)
    assert weak.excess == pytest.approx(strong.excess)
    for ev in ([weak, strong], [strong, weak]):
        a = allocate(ev, budget=extra_cost(strong) / 100_000, total_params=100_000)
        assert [e.module for e in a.modules] == ["strong"]
        assert "first-order gain" in a.decisions["strong"]


def test_evidence_on_a_real_run_and_its_plan(tiny_run):
    from gradlens.store import Run

    with Run(tiny_run) as run:
        ev = run_evidence(run)
        total = int(run.modules.n_params.sum())
        plan = propose_plan(ev, 0.2, total, run.model, run.languages, str(tiny_run))
        plan.check(list(run.modules.name))
    assert len(ev) == len(run.modules)
    for e in ev:
        assert np.isfinite(e.excess) and e.similarity.shape == (4, 4)
        # the run trained between its 11 steps: their trend takes 6, and 5 rows support rank 1
        assert e.alignment is not None and e.alignment.rank == 1 and e.paired is not None
        assert 0 <= e.q_value <= 1
        assert 0 <= e.conflict_rate <= 1
        assert sorted(x for g in e.groups for x in g) == sorted(run.languages)


def test_cli_analyze_and_plan(tiny_run, tmp_path, capsys):
    from gradlens.cli import main

    out = tmp_path / "analysis"
    assert main(["analyze", str(tiny_run), "--out", str(out), "--permutations", "99"]) == 0
    printed = capsys.readouterr().out
    assert "top 10 modules by excess divergence" in printed and "diverge beyond noise" in printed
    assert "agreement with URIEL" in printed and "genetic r=" in printed
    # the tiny run trained between its probe steps: the divergence test's assumption is named
    assert "CAVEAT: This run trained 1 step(s) between its probe steps" in printed
    modules = pd.read_csv(out / "modules.csv")
    assert {"module", "excess_divergence", "q_value", "cca_excess", "conflict_rate",
            "groups"} <= set(modules)
    sim = pd.read_csv(out / "similarity_model.csv", index_col=0)
    assert list(sim.columns) == ["spa", "ita", "deu", "rus"] and np.allclose(np.diag(sim), 1)
    assert len(pd.read_csv(out / "pairs.csv")) == len(modules) * 6
    assert set(pd.read_csv(out / "typology.csv")["kind"]) == {"genetic", "phonological"}

    plan_path = tmp_path / "plan.json"
    assert main(["plan", str(tiny_run), "--budget", "0.05", "--out", str(plan_path)]) == 0
    printed = capsys.readouterr().out
    assert "extra parameters" in printed and "CAVEAT: This run trained 1 step(s)" in printed
    plan = load_plan(plan_path)
    assert plan.languages == ("spa", "ita", "deu", "rus")
    assert not plan.edited


def test_cli_plan_refuses_a_bad_budget(tiny_run, capsys):
    from gradlens.cli import main

    assert main(["plan", str(tiny_run), "--budget", "-1"]) == 2
    assert "budget must be a fraction" in capsys.readouterr().err


def test_evidence_is_kept_with_the_run_until_the_run_changes(tiny_run, tmp_path):
    import os
    import shutil

    import h5py

    from gradlens.evidence import EVIDENCE_CACHE, cached_run_evidence
    from gradlens.store import Run

    run_dir = tmp_path / "r"
    shutil.copytree(tiny_run, run_dir, ignore=shutil.ignore_patterns("*.lock", "*.pt", "analysis"))
    calls = []
    with Run(run_dir) as run:
        first = cached_run_evidence(run, lambda *a: calls.append(a))
        assert (run_dir / EVIDENCE_CACHE).exists() and len(calls) == len(first)
        again = cached_run_evidence(run, lambda *a: calls.append(a))
        assert len(calls) == len(first)  # read back, not recomputed
        assert [e.excess for e in again] == [e.excess for e in first]
    os.utime(run_dir / "grads.h5", ns=(1, 1))  # copied: a new time over the same bytes
    with Run(run_dir) as run:
        cached_run_evidence(run, lambda *a: calls.append(a))
        assert len(calls) == len(first)  # the digest matched: re-stamped, not recomputed
    stamped = (run_dir / EVIDENCE_CACHE).stat().st_mtime_ns
    with Run(run_dir) as run:  # and the next read takes the fast path
        cached_run_evidence(run, lambda *a: calls.append(a))
    assert (run_dir / EVIDENCE_CACHE).stat().st_mtime_ns == stamped and len(calls) == len(first)
    with h5py.File(run_dir / "grads.h5", "a") as f:  # the bytes changed
        f.attrs["note"] = "edited elsewhere"
    with Run(run_dir) as run:
        cached_run_evidence(run, lambda *a: calls.append(a))
    assert len(calls) == 2 * len(first)
    (run_dir / EVIDENCE_CACHE).write_bytes(b"garbage")  # a damaged cache is recomputed too
    with Run(run_dir) as run:
        cached_run_evidence(run, lambda *a: calls.append(a))
    assert len(calls) == 3 * len(first)


def test_the_default_view_opens_where_languages_diverge_most_surely():
    from gradlens.analysis.evidence import strongest_unit

    ev = evidence({"a.0": ("shared", 100), "a.1": ("shared", 100), "b.0": ("clustered", 100)})
    assert strongest_unit(ev, {"a": [0, 1], "b": [2]}) == "b"
    assert strongest_unit(ev[:2], {"a": [0], "c": [1]}) is None


def test_the_evidence_cache_is_data_not_code_and_round_trips(tmp_path):
    """Arrays and a JSON structure only: every figure comes back; a structure naming any other
    type, or an array that would need pickle, is refused (the caller recomputes)."""
    import json

    from gradlens.analysis.evidence import module_evidence
    from gradlens.evidence import decode, encode

    rng = np.random.default_rng(0)
    e = module_evidence(rng.normal(size=(9, 3, 2, 64)), ["spa", "deu", "rus"], ["st", "asr"],
                        "m", 64)
    arrays: dict = {}
    structure = json.loads(json.dumps(encode([e], arrays)))
    np.savez(tmp_path / "c.npz", **arrays)
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z:
        back = decode(structure, z)[0]
    assert back.summary() == e.summary()
    assert np.array_equal(back.divergence.boot_grams, e.divergence.boot_grams)
    assert back.alignment is not None and np.array_equal(back.alignment.chance, e.alignment.chance)
    bad = json.loads(json.dumps(structure).replace('"ModuleEvidence"', '"Popen"'))
    with pytest.raises(ValueError, match="unknown type 'Popen'"):
        decode(bad, arrays)
    np.savez(tmp_path / "p.npz", a0=np.array([object()], dtype=object))
    with np.load(tmp_path / "p.npz", allow_pickle=False) as z, pytest.raises(ValueError):
        z["a0"]


def test_a_window_of_steps_has_its_own_evidence_and_its_own_cache(tmp_path):
    """The Compare page's "over its own training": each window of a run's steps is analysed on
    its own steps only, kept in its own file, and never confused with the whole run's."""
    from conftest import random_run
    from gradlens.errors import ConfigError
    from gradlens.evidence import (cache_path, cached_run_evidence, run_evidence, saved_run_evidence,
                                   step_windows, unit_sketches)
    from gradlens.store import Run

    run_dir = random_run(tmp_path / "r", steps=9)
    with Run(run_dir) as run:
        windows = step_windows(run.done_steps, 2)
        assert [w.tolist() for w in windows] == [[0, 1, 2, 3, 4], [5, 6, 7, 8]]
        late = windows[1]
        assert np.array_equal(unit_sketches(run, run.modules.name[0], late),
                              unit_sketches(run, run.modules.name[0])[5:])
        kept = cached_run_evidence(run, steps=late)
        assert cache_path(run, late).name == "evidence-steps-5-8.npz" and cache_path(run, late).exists()
        assert saved_run_evidence(run) is None                      # the whole run's is not made
        fresh = run_evidence(run, steps=late)
        assert [e.excess for e in kept] == pytest.approx([e.excess for e in fresh])
        whole = cached_run_evidence(run)
        assert [e.excess for e in whole] != pytest.approx([e.excess for e in kept])
        assert [e.excess for e in saved_run_evidence(run, late)] == pytest.approx(
            [e.excess for e in kept])
        assert saved_run_evidence(run, [5, 6, 8]) is None           # another window, same ends
        with pytest.raises(ConfigError, match="cannot cut 9 steps into 10"):
            step_windows(run.done_steps, 10)


def test_a_split_says_how_sure_its_groups_are():
    """Two planted clusters: the split's groups are clades of nearly every bootstrap tree. Six
    languages that each pull their own way: they diverge as surely, but any grouping of them is
    one cut among many, and the decision says the groups are uncertain."""
    from gradlens.analysis.allocation import evidence_fields, least_group_support

    clustered = module_evidence(sketches("clustered"), LANGS, ["st", "asr"], "m", 100)
    assert least_group_support(clustered) >= 0.9
    assert evidence_fields(clustered)["group_support"] >= 0.9
    rng = np.random.default_rng(5)
    own = rng.normal(size=(1, len(LANGS), 1, 256)) * 2.0 + 1.5 * rng.normal(
        size=(24, len(LANGS), 2, 256))
    scattered = module_evidence(own, LANGS, ["st", "asr"], "m", 100, n_groups=2)
    plan_reason = allocate([scattered], 1.0, 10_000).decisions["m"]
    assert least_group_support(scattered) < 0.7
    assert plan_reason.startswith("split") and "uncertain groups" in plan_reason


def test_the_evidence_cache_goes_stale_when_the_analysis_code_changes_not_its_words(tmp_path):
    import shutil

    from gradlens.evidence import analysis_digest, code_digest

    package = Path(__file__).resolve().parent.parent / "gradlens"
    copy = tmp_path / "gradlens"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert code_digest(copy) == analysis_digest()
    source = copy / "analysis" / "divergence.py"
    text = source.read_text()
    source.write_text(text.replace('"""', '"""Reworded. ', 1) + "\n# a comment\n")
    assert code_digest(copy) == analysis_digest()
    source.write_text(text.replace("ALPHA = 0.05", "ALPHA = 0.01") if "ALPHA = 0.05" in text
                      else text + "\nCHANGED = 1\n")
    assert code_digest(copy) != analysis_digest()


def test_an_allocation_names_each_modules_outcome_at_its_budget():
    ev = with_q_values(evidence({"split.me": ("clustered", 100), "too.big": ("clustered", 10**6),
                                 "alike": ("shared", 100)}))
    allocation = allocate(ev, budget=0.01, total_params=10**6)
    outcomes = {e.module: allocation.outcome(e) for e in ev}
    assert outcomes == {"split.me": "split", "too.big": "candidate", "alike": "shared"}
