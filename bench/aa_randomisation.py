"""How often does the experiments' paired approximate randomisation call two training runs of
the *same* arm different? An A/A check on real outputs, with no training of its own.

The Experiments page gives, per baseline, a paired approximate-randomisation p-value (pooled
over the seeds, Holm-adjusted) and a Student-t interval over the seeds, and calls the plan
better or worse only when both agree. Randomisation swaps hypotheses of the same utterance: its
null is that the two systems' outputs on *this* test set are exchangeable, which says nothing
about a second training run of the same system. Here every pair of seeds of every arm of the
given experiments is tested as if they were two systems (the same test utterances, paired as
the experiment pairs them); each should be called different in about 5 % of pairs if the p
spoke to training runs too.

The second table applies the experiments' own rule (``experiment.aggregate``: randomisation
over the pooled seeds and the t interval over seed-paired differences, "better" or "worse"
only when both agree) to two pseudo-arms made of one arm's seeds split in halves, every split
of an arm with at least 4 seeds: its rate of "better" or "worse" is the rule's false-positive
rate on real training variance (the splits of one arm share seeds, so they are not
independent trials).

    python bench/aa_randomisation.py runs/exp-control-72 runs/exp-control14
"""

from __future__ import annotations

import argparse
import itertools
import platform
import sys
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradlens import experiment as ex  # noqa: E402
from gradlens.significance import METRICS, paired_test  # noqa: E402


def arms_of(experiments: list[Path]):
    """``(experiment, arm, outputs by seed)`` of every arm of ``experiments``, from the test
    outputs at each finished job's dev-chosen checkpoint."""
    for directory in experiments:
        outputs, _ = ex.job_outputs(ex.read_spec(directory))
        for arm, per in sorted(outputs.items()):
            yield directory, arm, per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("experiments", nargs="+", type=Path)
    ap.add_argument("--trials", type=int, default=4000, help="randomisation trials per test")
    args = ap.parse_args()
    import sacrebleu
    print(f"# A/A randomisation · {date.today()} · {platform.node()} · python "
          f"{platform.python_version()} · sacrebleu {sacrebleu.__version__} · {args.trials} "
          "trials, seed 12345 (sacrebleu's) · alpha 0.05")
    print("| experiment | arm | seed pairs | utterances | p < 0.05 BLEU | p < 0.05 chrF | "
          "median abs Δ chrF | largest abs Δ chrF |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    total = {m: [] for m in METRICS}
    for directory, arm, per in arms_of(args.experiments):
        hits = {m: [] for m in METRICS}
        deltas = []
        for s, t in itertools.combinations(sorted(per), 2):
            a, b = per[s], per[t]
            if [r["id"] for r in a] != [r["id"] for r in b]:
                sys.exit(f"{directory}: {arm} seeds {s} and {t} were tested on other "
                         "utterances")
            refs = [r["ref"] for r in a]
            res = paired_test([r["hyp"] for r in a], [r["hyp"] for r in b], refs,
                              trials=args.trials)
            for m in METRICS:
                hits[m].append(res[m]["p"] < 0.05)
                total[m].append(res[m]["p"] < 0.05)
            deltas.append(abs(res["chrf"]["delta"]))
        if not deltas:
            continue
        print(f"| {directory.name} | {arm} | {len(deltas)} | {len(per[min(per)])} | "
              + " | ".join(f"{sum(hits[m])} ({np.mean(hits[m]):.0%})" for m in METRICS)
              + f" | {np.median(deltas):.2f} | {max(deltas):.2f} |", flush=True)
    print("\nall pairs: " + "; ".join(f"{m} {sum(v)} of {len(v)} ({np.mean(v):.0%}) called "
                                       "different" for m, v in total.items() if v))
    print("\n| experiment | arm | splits | seeds per half | p < 0.05 chrF | t interval excludes 0 "
          "chrF | verdict better/worse chrF | verdict better/worse BLEU |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    calls = {m: [] for m in METRICS}
    for directory, arm, per in arms_of(args.experiments):
        seeds = sorted(per)
        if len(seeds) < 4:
            continue
        half = len(seeds) // 2
        rows = {m: [] for m in ("p", "t", *METRICS)}
        for first in itertools.combinations(seeds[:2 * half], half):
            if seeds[0] not in first:
                continue  # each split once
            second = [x for x in seeds[:2 * half] if x not in first]
            pseudo = {"a": {i: per[s] for i, s in enumerate(first)},
                      "b": {i: per[s] for i, s in enumerate(second)}}
            c = ex.aggregate(pseudo, reference="a", trials=args.trials)["comparisons"]["b"]
            rows["p"].append(c["chrf"]["p"] < 0.05)
            d = c["chrf"]["delta"]
            rows["t"].append(d["low"] > 0 or d["high"] < 0)
            for m in METRICS:
                rows[m].append(c[m]["verdict"] != "not shown")
                calls[m].append(c[m]["verdict"] != "not shown")
        n = len(rows["p"])
        print(f"| {directory.name} | {arm} | {n} | {half} | "
              + " | ".join(f"{sum(rows[k])} ({np.mean(rows[k]):.0%})"
                           for k in ("p", "t", "chrf", "bleu")) + " |", flush=True)
    print("\nall splits: " + "; ".join(f"{m} {sum(v)} of {len(v)} ({np.mean(v):.0%}) called "
                                        "better or worse" for m, v in calls.items() if v))


if __name__ == "__main__":
    main()
