"""Plan stability on the demo: does a second probe of the same model propose the same plan?

The demo's model (the tiny model trained on the spoken numbers, cached) is probed again with
other seeds (other batches and sketch signs; the demo's languages, steps, batch and k), each run
gets the plan ``gradlens plan`` proposes at the default budget, and the plans are set against
each other: the Jaccard index of the modules split, the adjusted Rand index of the groups of
modules split in both (``gradlens.analysis.stability``).

    python bench/plan_stability.py --seeds 0 1 2        # seed 0 is the demo run itself

Writes ``bench/results/plan_stability.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from record import write_json  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--budget", type=float, default=0.1)
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "plan_stability.json"))
    args = ap.parse_args()

    from gradlens.analysis.allocation import propose_plan
    from gradlens.analysis.stability import plan_agreement
    from gradlens.bars import evidence_with_bar, step_bar
    from gradlens.cli import ensure_demo
    from gradlens.demo import RECIPE, demo_config
    from gradlens.paths import runs_dir
    from gradlens.store import Run
    from probes.loop import probe
    from probes.pretrain import pretrained_tiny

    demo = ensure_demo()
    base = demo_config()
    model = pretrained_tiny(base.languages, cfg=RECIPE)            # cached: no training again
    runs, plans = [], []
    for seed in args.seeds:
        out = demo if seed == base.seed else runs_dir() / f"demo-seed{seed}"
        if out != demo:
            cfg = dataclasses.replace(base, model=str(model), seed=seed, out=str(out))
            bar, on_step = step_bar(cfg.steps, f"probe, seed {seed}")
            with bar:
                probe(cfg, runs_dir(), on_step=on_step)
        with Run(out) as run:
            evidence = evidence_with_bar(run)
            total = int(run.modules.n_params.sum())
            plans.append(propose_plan(evidence, args.budget, total, run.model, run.languages,
                                      str(out), 0.05))
        runs.append(str(out))
    agreement = plan_agreement(plans)
    for seed, plan in zip(args.seeds, plans):
        print(f"seed {seed}: " + ("; ".join(f"{m} {[' '.join(g) for g in e.groups]}"
                                          for m, e in plan.modules.items()) or "shares every module"))
    print(agreement.summary())
    write_json(args.json, {"seeds": args.seeds, "runs": runs, "budget": args.budget,
                           "steps": base.steps, "languages": base.languages, "k": base.sketch_dim,
                           "plans": [{m: e.groups for m, e in p.modules.items()} for p in plans],
                           **agreement.as_dict()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
