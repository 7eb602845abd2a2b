"""Calibration of the divergence test: false positives and power on gradients with a planted truth.

Simulated units (``gradlens.analysis.calibration``): every language shares one mean gradient
(the null) with unequal noise (1-3x) and noise shared within a step, or a planted group of
languages pulls towards another direction (power). Printed side by side, at 2, 4 and 14
languages: the rejection rate at alpha = 0.05 of the test in force (step sign flips under the
shared-direction null) and of the rejected alternative (language labels permuted within each
step), and how often the excess divergence's 95 % interval covers the true divergence.

Targets: false positives <= 0.06 under every null; power >= 0.8 against the stated effect.

    python bench/calibration.py                 # about 5 minutes on 2 cores
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

from gradlens.analysis.calibration import Scenario, rejection_rate  # noqa: E402

EFFECT = 0.3  # 1 - cos between the planted group's true mean and the others'


def scenarios(languages: int) -> dict[str, Scenario]:
    return {
        "null: one mean, noise 1-3x": Scenario(languages),
        "null: one direction, scales 0.5-2x": Scenario(languages, scales=(0.5, 2.0)),
        "null: weak signal (snr 1)": Scenario(languages, snr=1.0),
        f"power: planted group, effect {EFFECT}": Scenario(languages, effect=EFFECT),
        "power: planted group, effect 0.1": Scenario(languages, effect=0.1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=400, help="simulated units per row")
    ap.add_argument("--replicates", type=int, default=499, help="null replicates per test")
    ap.add_argument("--permutation-trials", type=int, default=100,
                    help="units per row for the (slow) within-step permutation comparison")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"# divergence calibration · {date.today()} · {platform.node()} · python "
          f"{platform.python_version()} · numpy {np.__version__} · seed {args.seed} · "
          f"{args.trials} trials ({args.permutation_trials} for the permutation) · "
          f"{args.replicates} null replicates · S = 20 steps, D = 256, alpha = 0.05")
    print(f"{'L':>3}  {'scenario':38s} {'sign-flip':>9} {'coverage':>9} {'permute':>8}  target")
    t0 = time.perf_counter()
    for languages in (2, 4, 14):
        for name, sc in scenarios(languages).items():
            ours = rejection_rate(sc, args.trials, replicates=args.replicates, seed=args.seed)
            theirs = rejection_rate(sc, args.permutation_trials, replicates=199, seed=args.seed,
                                    method="permutation")
            target = "<= 0.06" if name.startswith("null") else (">= 0.80" if str(EFFECT) in name
                                                                 else "")
            print(f"{languages:>3}  {name:38s} {ours.rejection_rate:9.3f} {ours.coverage:9.3f} "
                  f"{theirs.rejection_rate:8.3f}  {target}", flush=True)
    print(f"# {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
