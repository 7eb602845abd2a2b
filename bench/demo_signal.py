"""Does the demo show language structure? Mantel tests of a run's gradient distances, per block
and per layer, against family membership and URIEL genetic distance, with the clades that keep
bootstrap support; for both similarities (``gradlens.analysis.evidence.SIMILARITIES``).

The gradient distance is ``1 - similarity`` of each unit for the primary task (ST): ``mean``,
the noise-corrected cosine of the mean gradients; ``paired``, the correlation of the languages'
per-step gradients over the same batches, corrected for each language's own noise. Family: 0 within a branch (Romance, Germanic, ...),
1 across. Printed as a markdown table for ``docs/results.md``.

    python bench/demo_signal.py runs/demo
"""

from __future__ import annotations

import argparse
import platform
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradlens.analysis.clustering import cluster_similarity  # noqa: E402
from gradlens.evidence import (cached_run_evidence, unit_null_similarity,  # noqa: E402
                               unit_similarity)
from gradlens.analysis.typology import family_distance, mantel, uriel_distance  # noqa: E402
from gradlens.evidence import units  # noqa: E402
from gradlens.store import Run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run")
    ap.add_argument("--permutations", type=int, default=9999)
    args = ap.parse_args()
    with Run(args.run) as run:
        evidence = cached_run_evidence(run)
        langs = run.languages
        family, genetic = family_distance(langs), uriel_distance(langs, "genetic")
        print(f"run {args.run} · model {run.model} · {len(langs)} languages · "
              f"{len(run.done_steps)} steps · seed {run.probe_config.get('seed')} · {date.today()} "
              f"· python {platform.python_version()} · {args.permutations} permutations")
        print()
        print("| unit | similarity | Mantel r family (p) | Mantel r URIEL genetic (p) | "
              "supported clades (≥ 70 %) |")
        print("| --- | --- | --- | --- | --- |")
        for unit in [*units(run, "block"), *units(run, "layer")]:
            for kind in ("mean", "paired"):
                sim, replicates = unit_similarity(run, evidence, unit, run.tasks[0], kind)
                tree = cluster_similarity(sim, langs, "average", replicates)
                null = unit_null_similarity(run, evidence, unit, run.tasks[0], kind)
                null = None if null is None else 1 - null
                f = mantel(1 - sim, family, args.permutations, null_a=null)
                g = mantel(1 - sim, genetic, args.permutations, null_a=null)
                clades = "; ".join(" ".join(c) for c in tree.supported_clades()) or "none"
                print(f"| {unit} | {kind} | {f.r:+.2f} ({f.p:.4f}) | {g.r:+.2f} ({g.p:.4f}) | "
                      f"{clades} |", flush=True)


if __name__ == "__main__":
    main()
