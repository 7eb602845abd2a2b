"""An experiment's results as markdown for ``docs/results.md``: the arms with their 95 %
intervals over seeds, the proposed plan against each baseline, and chrF per language.

    python bench/experiment_report.py runs/exp-control
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradlens import experiment as ex  # noqa: E402


def interval(d: dict) -> str:
    if d["low"] is None:
        return f"{d['mean']:.2f}"
    return f"{d['mean']:.2f} [{d['low']:.2f}, {d['high']:.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("experiment")
    args = ap.parse_args()
    directory = Path(args.experiment)
    spec = ex.read_spec(directory)
    res = ex.results(directory, ex.status(directory))  # collected afresh when jobs ended since
    if res is None:
        sys.exit(f"{directory}: no job has finished yet")
    cfg = spec["config"]
    print(f"experiment {spec['name']} · plan of {spec.get('source_run')} · "
          f"{len(spec['plan']['modules'])} module(s) split · seeds {spec['seeds']} · "
          f"{cfg['steps']} steps, batch {cfg['batch_size']}, lr {cfg['learning_rate']}, "
          f"evaluated every {cfg['eval_every']} on {cfg['eval_size']} utterances per language · "
          f"corpus {cfg['corpus']} · {res['jobs_done']} of {res['jobs']} jobs · "
          f"{res['test_utterances']} test utterances per seed\n")
    print("| arm | extra parameters | test BLEU | test chrF | checkpoint steps |")
    print("| --- | --- | --- | --- | --- |")
    for arm, entry in res["arms"].items():
        sc = entry["scores"]["all"]
        print(f"| {arm} | {entry['extra_params']:,} | {interval(sc['bleu'])} | "
              f"{interval(sc['chrf'])} | {', '.join(map(str, entry['steps'].values()))} |")
    if res["comparisons"]:
        print(f"\n| {res['reference']} − baseline | Δ chrF [95 % t over seeds] | interval (seeds, "
              "utterances) | seed-level p (Holm) | seeds ahead | test-set p (secondary) | "
              "verdict (chrF) |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for arm, c in res["comparisons"].items():
            m = c["chrf"]
            iv = m["interval"]
            print(f"| {arm} | {interval(m['delta'])} | "
                  + ("one seed" if iv is None else f"[{iv['low']:.2f}, {iv['high']:.2f}]")
                  + " | " + ("-" if m["p_holm"] is None else
                             f"{m['seeds']['t_p']:.3g} ({m['p_holm']:.3g})")
                  + f" | {m['seeds']['positive']} of {m['seeds']['n']} | "
                  f"{m['p_utterances']:.3g} | {m['verdict']} |")
        print("\n" + ex.primary_conclusion(res))
        print("\n" + ex.conclusion(res, "chrf") + " " + ex.conclusion(res, "bleu"))
    arms = list(res["arms"])
    langs = [x for x in next(iter(res["arms"].values()))["scores"] if x != "all"]
    print("\nchrF per language (mean over seeds)\n")
    print("| language | " + " | ".join(arms) + " |")
    print("| --- |" + " --- |" * len(arms))
    for lang in langs:
        print(f"| {lang} | " + " | ".join(
            f"{res['arms'][a]['scores'][lang]['chrf']['mean']:.1f}" for a in arms) + " |")


if __name__ == "__main__":
    main()
