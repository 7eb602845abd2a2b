"""Calibration of the divergence test: false positives and power on gradients with a planted truth.

Simulated units (``gradlens.analysis.calibration``): every language shares one mean gradient
(the null) with unequal noise (1-3x) and noise shared within a step, or a planted group of
languages pulls towards another direction (power). Printed side by side, at 2, 4 and 14
languages: the rejection rate at alpha = 0.05 of the test in force (step sign flips under the
shared-direction null) and of the rejected alternative (language labels permuted within each
step), and how often the excess divergence's 95 % interval covers the true divergence.

Targets: false positives <= 0.06 under every null; power >= 0.8 against the stated effect.

The conflict rows calibrate the ST-ASR conflict test the same way: unrelated tasks (the null's
edge), aligned ones, a planted conflict, and a conflict under noise the two tasks share (the
same utterances feed both), where the step cosine the test reads is positive on average.
Beside them, on the same units, the cross-task cosine (the two tasks' mean gradients,
noise-corrected, languages averaged): its mean, how often its 95 % interval holds the planted
cosine, and how often it lies below 0 (the means opposed) and below 1 (the tasks apart).

The "drift" rows simulate a run that trains between its probe steps (the model moves while it
is probed, so steps are not exchangeable): the test is not built for it, and these rows show
where it still holds and where it does not.

The "clade" rows calibrate the trees' bootstrap support (a clade "supported" at 70 %), for
both similarities the Dendrograms page offers: how often a unit with no planted group shows a
supported clade, and how often a planted group (a mean of its own, or a response of its own to
each batch) is one.

The "alignment" rows calibrate the CCA alignment test (the Alignment page's p, 20 step
shuffles): languages whose steps nothing pairs (no response to the batch they share) against
a shared response planted in each step, and a model that moves while probed.

The "mantel" rows calibrate the Mantel test of a unit's gradient distance against URIEL (the
Dendrograms page's): simulated languages with real codes, the second half one family, under no
planted group, under a nuisance (noise, loss scale) that follows the family, and with the family
planted in each similarity's own terms.

The "gain" rows calibrate the split's first-order gain, what the plan ranks candidates by: the
gain of each unit's proposed groups (the best GradSim grouping of all its steps) measured on the
steps that chose them, as the plan read it before, and cross-fitted (what it reads now),
against the true gain of those groups; and how often each lower bound lies above the truth.

    python bench/calibration.py                 # every section: 10-15 minutes on 2 cores
    python bench/calibration.py --only clade    # one section (alignment: 2 minutes)
    python bench/calibration.py --only "clade moving"   # its rows for a run trained between steps
    python bench/calibration.py --trials 100    # quicker, coarser
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradlens.analysis.calibration import (ConflictScenario, Scenario,  # noqa: E402
                                           alignment_rates, clade_rates,
                                           conflict_rejection_rate, gain_rates,
                                           mantel_rates, rejection_rate, task_cosine_rates)
from gradlens.analysis.evidence import clades_testable  # noqa: E402

EFFECT = 0.3  # the planted group's mean has this share of its squared norm off the shared
# direction: cos = sqrt(1 - EFFECT), 1 - cos = 0.16


def scenarios(languages: int) -> dict[str, Scenario]:
    return {
        "null: one mean, noise 1-3x": Scenario(languages),
        "null: one direction, scales 0.5-2x": Scenario(languages, scales=(0.5, 2.0)),
        "null: weak signal (snr 1)": Scenario(languages, snr=1.0),
        f"power: planted group, effect {EFFECT}": Scenario(languages, effect=EFFECT),
        "power: planted group, effect 0.1": Scenario(languages, effect=0.1),
        # a run that trains between its probe steps: the means move over the steps
        "null: trained between steps, drift 0.3": Scenario(languages, drift=0.3),
        "null: drift 0.8, scales drift 0.5-2x": Scenario(languages, drift=0.8,
                                                          scale_drift=(0.5, 2.0)),
        "null: drift 0.8, scales drift 0.25-4x": Scenario(languages, drift=0.8,
                                                           scale_drift=(0.25, 4.0)),
        "null: drift 0.8, scales 0.5-2x, snr 10": Scenario(languages, drift=0.8,
                                                            scale_drift=(0.5, 2.0), snr=10.0),
        "null: drift 0.8, scales 0.25-4x bent, snr 10": Scenario(
            languages, drift=0.8, scale_drift=(0.25, 4.0), scale_bend=4.0, snr=10.0),
        f"power: effect {EFFECT}, drift 0.8, scales 0.5-2x": Scenario(
            languages, effect=EFFECT, drift=0.8, scale_drift=(0.5, 2.0)),
    }


def conflict_scenarios(languages: int) -> dict[str, ConflictScenario]:
    """The ST-ASR conflict test (``Conflict.p_value``): is the step cosine below 0 on average?"""
    return {
        "conflict null: unrelated tasks (cos 0)": ConflictScenario(languages),
        "conflict null: cos 0, strong signal (snr 2)": ConflictScenario(languages, snr=2.0),
        "conflict null: cos 0, 8 steps": ConflictScenario(languages, steps=8),
        "conflict null: aligned tasks (cos +0.3)": ConflictScenario(languages, cosine=0.3),
        "conflict null: one direction (cos 1)": ConflictScenario(languages, cosine=1.0),
        "conflict null: cos 1, weak signal (snr 0.1)": ConflictScenario(
            languages, cosine=1.0, snr=0.1),
        "conflict power: planted cos -0.2": ConflictScenario(languages, cosine=-0.2),
        "conflict power: cos -0.2, weak signal (snr 0.1)": ConflictScenario(
            languages, cosine=-0.2, snr=0.1),
        "conflict: cos -0.2 under noise shared 0.5": ConflictScenario(
            languages, cosine=-0.2, shared=0.5),
    }


BY_GROUP = dict(noise=(1.0, 3.0), scales=(0.5, 2.0), nuisance_by_group=True)


def clade_scenarios(languages: int) -> dict[str, Scenario]:
    """Trees' supported clades: none should show without a planted group; each similarity
    should find the group planted in what it measures."""
    return {
        "clade null: one mean, noise 1-3x": Scenario(languages),
        "clade null: strong signal (snr 10, ties at 1)": Scenario(languages, snr=10.0),
        f"clade: group with its own mean (effect {EFFECT})": Scenario(languages, effect=EFFECT),
        "clade: group with its own response to each batch": Scenario(languages,
                                                                      group_response=1.0),
        # a run that trains between its probe steps, its languages' pace by group
        "clade moving null: scales drift by group": Scenario(
            languages, drift=0.3, scale_drift=(0.5, 2.0), **BY_GROUP),
        "clade moving null: drift 0.8, scales 0.25-4x bent by group, snr 10": Scenario(
            languages, drift=0.8, scale_drift=(0.25, 4.0), scale_bend=4.0, snr=10.0, **BY_GROUP),
        "clade moving: group with its own response to each batch": Scenario(
            languages, group_response=1.0, drift=0.3, scale_drift=(0.5, 2.0), **BY_GROUP),
    }


def alignment_scenarios(languages: int) -> dict[str, Scenario]:
    """The CCA alignment test: do the languages' updates move along the same directions at the
    same steps beyond shuffled steps? Null: no response to the batch is shared (step noise 0)."""
    return {
        "alignment null: nothing pairs the steps": Scenario(languages, step_noise=0.0),
        "alignment null: nothing pairs, snr 10": Scenario(languages, step_noise=0.0, snr=10.0),
        "alignment moving null: nothing pairs, drift 0.8, scales": Scenario(
            languages, step_noise=0.0, drift=0.8, scale_drift=(0.5, 2.0)),
        "alignment moving null: the same, snr 10": Scenario(
            languages, step_noise=0.0, drift=0.8, scale_drift=(0.5, 2.0), snr=10.0),
        "alignment moving null: drift 0.8, scales 0.25-4x bent, snr 10": Scenario(
            languages, step_noise=0.0, drift=0.8, scale_drift=(0.25, 4.0), scale_bend=4.0,
            snr=10.0),
        "alignment moving power: shared response 1, drift 0.8, scales": Scenario(
            languages, drift=0.8, scale_drift=(0.5, 2.0)),
        "alignment power: shared response 0.3": Scenario(languages, step_noise=0.3),
        "alignment power: shared response 1 (default)": Scenario(languages),
    }


# Mantel rows: real codes so URIEL has them; the second half (the planted group) is Germanic
MANTEL_LANGUAGES = {4: ["spa", "ita", "deu", "nld"],
                    8: ["spa", "fra", "ita", "por", "deu", "nld", "swe", "dan"],
                    12: ["spa", "fra", "ita", "por", "ron", "cat",
                         "deu", "nld", "swe", "dan", "nob", "isl"]}


def mantel_scenarios(languages: int) -> dict[str, Scenario]:
    """The Mantel test of a unit's gradient distance against URIEL: no planted group (the
    null), a nuisance that follows the family (noise, scale, its drift) with no difference in
    direction (a null the noise correction must hold), and a family planted in what each
    similarity measures."""
    nuisance = BY_GROUP
    return {
        "mantel null: one mean, noise 1-3x": Scenario(languages),
        "mantel null: noise 1/3x, scale 0.5/2x by family": Scenario(languages, **nuisance),
        "mantel null: the same, snr 10": Scenario(languages, snr=10.0, **nuisance),
        "mantel moving null: scales drift by family": Scenario(
            languages, drift=0.3, scale_drift=(0.5, 2.0), **nuisance),
        "mantel moving null: drift 0.8, scales 0.25-4x bent by family, snr 10": Scenario(
            languages, drift=0.8, scale_drift=(0.25, 4.0), scale_bend=4.0, snr=10.0,
            **nuisance),
        f"mantel power: family with its own mean ({EFFECT})": Scenario(languages, effect=EFFECT),
        "mantel power: family with its own mean (0.1)": Scenario(languages, effect=0.1),
        "mantel power: family's own response (1)": Scenario(languages, group_response=1.0),
        "mantel power: family's own response (0.3)": Scenario(languages, group_response=0.3),
        "mantel moving power: own response (1), scales drift by family": Scenario(
            languages, group_response=1.0, drift=0.3, scale_drift=(0.5, 2.0), **nuisance),
        "mantel moving power: own response (0.3), scales drift by family": Scenario(
            languages, group_response=0.3, drift=0.3, scale_drift=(0.5, 2.0), **nuisance),
    }


def gain_scenarios(languages: int) -> dict[str, Scenario]:
    """The split's gain where the groups are planted, where every language pulls its own way
    (divergence with no group to find), and both."""
    return {
        f"gain: planted group ({EFFECT})": Scenario(languages, effect=EFFECT),
        "gain: planted group (0.1)": Scenario(languages, effect=0.1),
        "gain: each language its own direction (0.1)": Scenario(languages, own_direction=0.1),
        "gain: each language its own direction (0.3)": Scenario(languages, own_direction=0.3),
        "gain: group (0.1) and own directions (0.1)": Scenario(languages, effect=0.1,
                                                               own_direction=0.1),
    }


def chosen(only: str, sizes: tuple[int, ...], make) -> list[tuple[int, str, object]]:
    """``(languages, name, scenario)`` of ``make(languages)`` at each size, those whose name
    holds ``only``."""
    return [(L, name, sc) for L in sizes for name, sc in make(L).items() if only in name]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=400, help="simulated units per row")
    ap.add_argument("--replicates", type=int, default=499, help="null replicates per test")
    ap.add_argument("--permutation-trials", type=int, default=100,
                    help="units per row for the (slow) within-step permutation comparison")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", metavar="TEXT",
                    help="only the scenarios whose name holds TEXT (e.g. 'drift')")
    args = ap.parse_args()
    print(f"# calibration · {date.today()} · {platform.node()} · python "
          f"{platform.python_version()} · numpy {np.__version__} · seed {args.seed} · "
          f"{args.trials} trials ({args.permutation_trials} for the permutation) · "
          f"{args.replicates} null replicates · S = 20 steps, D = 256, alpha = 0.05")
    t0 = time.perf_counter()
    rows = chosen(args.only, (2, 4, 14), scenarios)
    if rows:
        print(f"{'L':>3}  {'scenario':46s} {'sign-flip':>9} {'coverage':>9} {'permute':>8} "
              f"{'unlevelled':>10}  target   (unlevelled: a moving row's sign-flip test as it "
              "was before the languages' paces were levelled)")
    for languages, name, sc in rows:
        ours = rejection_rate(sc, args.trials, replicates=args.replicates, seed=args.seed)
        flat = rejection_rate(sc, args.trials, replicates=args.replicates, seed=args.seed,
                              moving=False) if sc.moves else None
        before = " " * 10 if flat is None else f"{flat.rejection_rate:10.3f}"
        theirs = rejection_rate(sc, args.permutation_trials, replicates=199, seed=args.seed,
                                method="permutation")
        target = "<= 0.06" if name.startswith("null") else (
            ">= 0.80" if f"effect {EFFECT}" in name else "")
        print(f"{languages:>3}  {name:46s} {ours.rejection_rate:9.3f} {ours.coverage:9.3f} "
              f"{theirs.rejection_rate:8.3f} {before}  {target}", flush=True)
    if "conflict" in args.only or not args.only:
        print(f"\n{'L':>3}  {'conflict scenario':46s} {'sign-flip':>9}  {'target':8s} "
              f"{'task cos':>8} {'covers':>6} {'<0':>6} {'<1':>6}  ({args.trials} trials, 9999 "
              "sign flips; task cos: the cross-task cosine, 200 bootstrap draws; covers: its "
              "interval holds the planted cosine; <0, <1: the interval lies below)")
        for languages, name, sc in chosen(args.only, (2, 4, 14), conflict_scenarios):
            rate = conflict_rejection_rate(sc, args.trials, seed=args.seed)
            t = task_cosine_rates(sc, args.trials, seed=args.seed)
            target = ("<= 0.06" if "null" in name else ">= 0.80" if name.endswith("-0.2")
                      else "")
            print(f"{languages:>3}  {name:46s} {rate:9.3f}  {target:8s} {t.mean:8.3f} "
                  f"{t.coverage:6.3f} {t.below_zero:6.3f} {t.below_one:6.3f}", flush=True)
    if "clade" in args.only or not args.only:
        print(f"\n{'L':>3}  {'clade scenario':60s} {'similarity':>10} {'false clade':>11} "
              f"{'found':>6} {'silhouette':>10}  ({args.trials // 2} trials, 200 bootstrap "
              "trees; silhouette: the best grouping's, median)")
        for languages, name, sc in chosen(args.only, (4, 5, 8, 14), clade_scenarios):
            for kind in ("mean", "paired"):
                if not clades_testable(kind, languages):
                    print(f"{languages:>3}  {name:60s} {kind:>10}  not tested (the page "
                          "says so)")
                    continue
                c = clade_rates(sc, args.trials // 2, seed=args.seed, kind=kind)
                print(f"{languages:>3}  {name:60s} {kind:>10} {c.false_clade_rate:11.3f} "
                      f"{c.recovered:6.2f} {c.median_silhouette:10.2f}", flush=True)
    if "alignment" in args.only or not args.only:
        print(f"\n{'L':>3}  {'alignment scenario':62s} {'p <= 0.05':>9} {'excess':>7} "
              f"{'chance':>7} {'steps':>6}  target   ({args.trials // 2} trials, 20 shuffles, "
              "default rank: 4, 3 on a moving row's 16 detrended rows; steps: a moving row's "
              "p <= 0.05 with its steps paired, as before)")
        for languages, name, sc in chosen(args.only, (2, 4, 14), alignment_scenarios):
            a = alignment_rates(sc, args.trials // 2, seed=args.seed)
            steps = alignment_rates(sc, args.trials // 2, seed=args.seed,
                                    moving=False) if sc.moves else None
            before = " " * 6 if steps is None else f"{steps.rejection_rate:6.3f}"
            target = ("<= 0.06" if "null" in name else
                      ">= 0.80" if name.endswith("(default)") else "")
            print(f"{languages:>3}  {name:62s} {a.rejection_rate:9.3f} {a.mean_excess:7.3f} "
                  f"{a.mean_chance:7.3f} {before}  {target}", flush=True)
    if "mantel" in args.only or not args.only:
        print(f"\n{'L':>3}  {'mantel scenario':62s} {'similarity':>10} {'before':>12} "
              f"{'genetic':>8} {'phonol.':>8} {'r genetic':>9}  target   ({args.trials // 2} "
              "trials, 999 relabellings, 99 noise-null draws; share of p <= 0.05; before: "
              "genetic as the test was before, the mean similarity without its noise null, the "
              "paired one of a moving model on its steps, not their detrended contrasts; second "
              "half Germanic)")
        for languages, name, sc in chosen(args.only, tuple(MANTEL_LANGUAGES), mantel_scenarios):
            for kind in ("mean", "paired"):
                langs, trials = MANTEL_LANGUAGES[languages], args.trials // 2
                m = mantel_rates(sc, langs, trials, kind, seed=args.seed)
                alone = (mantel_rates(sc, langs, trials, kind, seed=args.seed, noise_null=False)
                         if kind == "mean" else
                         mantel_rates(sc, langs, trials, kind, seed=args.seed, moving=False)
                         if sc.moves else m)
                target = "<= 0.06" if "null" in name else ""
                print(f"{languages:>3}  {name:62s} {kind:>10} "
                      f"{alone.rejection_rate['genetic']:12.3f} {m.rejection_rate['genetic']:8.3f} "
                      f"{m.rejection_rate['phonological']:8.3f} {m.mean_r['genetic']:9.3f}  "
                      f"{target}", flush=True)
    if "gain" in args.only or not args.only:
        print(f"\n{'L':>3}  {'gain scenario':50s} {'true gain':>9} {'same steps':>10} "
              f"{'held out':>8} {'low > true':>10} {'held':>6}  target   ({args.trials // 2} "
              "trials, 200 bootstrap replicates; gains as a share of the true one; low > true: "
              "share of units whose 95 % lower bound is above the truth, same steps then held "
              "out)")
        for languages, name, sc in chosen(args.only, (4, 8, 14), gain_scenarios):
            g = gain_rates(sc, args.trials // 2, seed=args.seed)
            print(f"{languages:>3}  {name:50s} {g.true_gain:9.2f} {g.in_sample:10.2f} "
                  f"{g.held_out:8.2f} {g.in_sample_above:10.3f} {g.held_out_above:6.3f}  "
                  "low <= 0.025", flush=True)
    print(f"# {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
