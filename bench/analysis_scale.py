"""Analysis at scale: every analysis timed against reading the data once, side by side.

Builds (or reuses) the synthetic run of ``bench/synthetic.py`` (91 modules x 32 languages x
2 tasks x 100 steps, k = 1024), then times, in one process:

- reading every module's sketches once (the yardstick, ratio 1.0);
- for one module (what a page needs): reading it, similarity + clustering, grouping,
  divergence with its permutation test, cross-task divergence, conflict, alignment, and all
  of it together (``unit_evidence``);
- one layer (5 modules concatenated) and the whole encoder block's mean similarity;
- the whole run's evidence (what ``gradlens analyze`` and ``plan`` do) and the proposed plan;
- the URIEL agreement (lang2vec's first load, then cached).

    python bench/analysis_scale.py                 # prints absolute seconds and ratios
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import PLANTED, build  # noqa: E402

from gradlens.analysis.alignment import subspace_alignment  # noqa: E402
from gradlens.analysis.allocation import allocate, propose_plan  # noqa: E402
from gradlens.analysis.clustering import cluster_languages  # noqa: E402
from gradlens.analysis.divergence import language_divergence, task_conflict, task_divergence  # noqa: E402
from gradlens.analysis.evidence import rank_modules, similarity_of  # noqa: E402
from gradlens.evidence import run_evidence, unit_evidence  # noqa: E402
from gradlens.analysis.grouping import LanguageGrouping  # noqa: E402
from gradlens.analysis.typology import typology_agreement  # noqa: E402
from gradlens.evidence import unit_mean, unit_of, unit_sketches  # noqa: E402
from gradlens.store import Run  # noqa: E402


def timed(fn, repeat: int = 3) -> float:
    """Median wall time of ``fn()`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/bench-synthetic", help="synthetic run directory")
    parser.add_argument("--module", default=PLANTED, help=f"module timed alone (default: {PLANTED})")
    args = parser.parse_args()
    path = build(Path(args.run))
    rows: list[tuple[str, float]] = []
    with Run(path) as run:
        L, S, M, k = len(run.languages), len(run.done_steps), len(run.modules), run.sketch_dim
        print(f"run {path}: {M} modules x {L} languages x {len(run.tasks)} tasks x {S} steps, "
              f"k={k}, {run.size_bytes() / 1e9:.2f} GB")
        read_all = timed(lambda: [run.sketch(m) for m in range(M)], repeat=2)
        rows.append(("read every module once (yardstick)", read_all))
        key = args.module
        x = unit_sketches(run, key)
        langs = run.languages
        rows += [
            ("one module: read", timed(lambda: unit_sketches(run, key))),
            ("one module: similarity + average-linkage tree",
             timed(lambda: cluster_languages(x[:, :, 0].mean(0), langs))),
            ("one module: grouping, best g (heuristic, 32 languages)",
             timed(lambda: LanguageGrouping().fit(
                 cluster_languages(x[:, :, 0].mean(0), langs).similarity, langs))),
            ("one module: divergence + 999-permutation test",
             timed(lambda: language_divergence(x, langs))),
            ("one module: cross-task divergence", timed(lambda: task_divergence(x, langs))),
            ("one module: ST-ASR conflict", timed(lambda: task_conflict(x, langs))),
            ("one module: joint factorization + CCA + angles (rank 8)",
             timed(lambda: subspace_alignment(x, langs, 8))),
            ("one module: all evidence, read included", timed(lambda: unit_evidence(run, key))),
            ("one layer (5 modules): all evidence",
             timed(lambda: unit_evidence(run, "speech_encoder.encoder.layers.11"), repeat=1)),
            ("encoder block (60 modules): mean + clustering",
             timed(lambda: cluster_languages(unit_mean(run, "speech_encoder")[:, 0], langs),
                   repeat=1)),
        ]
        t = time.perf_counter()
        evidence = run_evidence(run)
        rows.append(("whole run: evidence on every module", time.perf_counter() - t))
        total = int(run.modules.n_params.sum())
        rows.append(("whole run: proposed plan from the evidence",
                     timed(lambda: propose_plan(evidence, 0.1, total, run.model, langs))))
        sim = similarity_of(evidence)
        t = time.perf_counter()
        typology_agreement(1 - sim, langs)
        rows.append(("URIEL agreement, first (loads lang2vec)", time.perf_counter() - t))
        rows.append(("URIEL agreement, cached", timed(lambda: typology_agreement(1 - sim, langs))))
        assert len(unit_of(run, key)) == 1
        ranked = [e.module for e in rank_modules(evidence)]
        plan = propose_plan(evidence, 0.1, total, run.model, langs)
        skipped = allocate(evidence, 0.1, total).skipped_over_budget
        planted_groups = next(len(e.groups) for e in evidence if e.module == PLANTED)
    print(f"{'analysis':60s} {'seconds':>9s} {'x read-once':>12s}")
    for name, seconds in rows:
        print(f"{name:60s} {seconds:9.3f} {seconds / read_all:12.3f}")
    planted = PLANTED
    print(f"sanity: the planted language-specific {planted} ranks #{ranked.index(planted) + 1} "
          f"by excess divergence, with {planted_groups} groups; the 10 % plan splits "
          f"{len(plan.modules)} module(s)"
          + (", it among them" if planted in plan.modules else
             ", not it (over the budget)" if planted in skipped else ", not it"))


if __name__ == "__main__":
    main()
