"""A validation's results as the markdown tables of ``docs/results/validation.md``: the answer,
each predictor's rank correlation, each grouping's benefit, and every module's figures; with
``--json``, the same figures and their provenance.

    python bench/validation_report.py runs/val-control-<digest> [--json bench/results/validation-control.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradlens import validation as va  # noqa: E402
from gradlens.analysis.validation import RankCorrelation, prediction_verdict  # noqa: E402
from gradlens.modules import module_label  # noqa: E402
from record import write_json  # noqa: E402


def iv(d: dict, fmt: str = "+.4f") -> str:
    if d.get("low") is None:
        return f"{d['mean']:{fmt}}"
    return f"{d['mean']:{fmt}} [{d['low']:{fmt}}, {d['high']:{fmt}}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("validation", help="the validation's directory")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    directory = Path(args.validation)
    res = va.collect(directory)
    spec = va.read_spec(directory)
    print(f"**{res['answer']}**\n")
    print(f"{res['jobs_done']} of {res['jobs']} fine-tunes; seeds {spec['seeds']}; config "
          f"{ {k: spec['config'][k] for k in ('steps', 'batch_size', 'learning_rate', 'aux_weight', 'mgcm', 'dev_loss_size')} }\n")
    print("| predictor | ρ [95 % interval over modules] | modules | reads |\n| --- | --- | --- | --- |")
    for p, c in res["correlations"].items():
        rho = "none" if c["rho"] is None else (f"{c['rho']:+.2f}" if c["low"] is None else
                                               f"{c['rho']:+.2f} [{c['low']:+.2f}, {c['high']:+.2f}]")
        print(f"| {va.PREDICTORS[p]} | {rho} | {c['n']} | "
              f"{prediction_verdict(p, RankCorrelation(**c))} |")
    print("\n| groups | mean benefit [95 % t interval over modules] | proposed − these |\n"
          "| --- | --- | --- |")
    for g, b in res["benefit"].items():
        print(f"| {g} | {iv(b)} | {iv(res['versus'][g]) if g in res['versus'] else ''} |")
    groupings = list(res["benefit"])
    print("\n| module | in plan | predicted gain | excess divergence | q | "
          + " | ".join(f"benefit, {g}" for g in groupings) + " |\n| --- | --- | --- | --- | --- | "
          + " | ".join("---" for _ in groupings) + " |")
    for m in res["modules"]:
        p = m["predictors"]
        print(f"| `{module_label(m['module'])}` | {'yes' if m['in_plan'] else ''} | "
              f"{p['gain']:.3g} | {p['excess']:.3f} | {p['q_value']:.2g} | "
              + " | ".join(f"{m['benefit'][g]['mean']:+.4f}" if g in m["benefit"] else ""
                           for g in groupings) + " |")
    write_json(args.json, {"validation": directory.name, "spec": spec, "results": res})


if __name__ == "__main__":
    main()
