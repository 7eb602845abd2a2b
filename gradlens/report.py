"""Tables and files of an analysis: what ``gradlens analyze`` writes and the pages download.

    python -m gradlens analyze runs/demo      # writes runs/demo/analysis/*.csv and summary.txt
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gradlens.analysis.alignment import Alignment
from gradlens.analysis.allocation import diverges
from gradlens.analysis.clustering import SUPPORTED, Clustering
from gradlens.analysis.divergence import COMMON_MIN_LANGUAGES, TaskDivergence
from gradlens.analysis.evidence import ModuleEvidence, clades_testable, rank_modules
from gradlens.analysis.grouping import LanguageGrouping
from gradlens.analysis.overview import Overview
from gradlens.analysis.typology import Agreement, Mantel


def matrix_frame(matrix: np.ndarray, languages: list[str]) -> pd.DataFrame:
    """A ``[L, L]`` matrix with the languages as row and column labels."""
    return pd.DataFrame(np.asarray(matrix), index=pd.Index(languages, name="language"),
                        columns=list(languages))


def evidence_table(evidence: list[ModuleEvidence]) -> pd.DataFrame:
    """One row per module: the scalar figures of ``ModuleEvidence.summary``."""
    return pd.DataFrame([e.summary() for e in evidence])


def pair_table(evidence: list[ModuleEvidence]) -> pd.DataFrame:
    """One row per module and language pair: noise-corrected similarity and divergence, CCA."""
    rows = []
    for e in evidence:
        L = len(e.languages)
        for a in range(L):
            for b in range(a + 1, L):
                rows.append({"module": e.module, "language_a": e.languages[a],
                             "language_b": e.languages[b], "similarity": e.similarity[a, b],
                             "cross_divergence": e.divergence.cross[a, b],
                             "cca_mean": None if e.alignment is None else e.alignment.mean[a, b]})
    return pd.DataFrame(rows)


def at_floor(p: float, draws: int) -> bool:
    """Whether a Monte Carlo p-value is the smallest its ``draws`` can give: none of them
    reached the observed statistic."""
    return p <= (1 + 1e-9) / (1 + draws)


def p_text(p: float, draws: int, what: str = "permutations") -> str:
    """A Monte Carlo p-value as the pages write it: ``p = 0.0123 over 999 permutations``; at the
    smallest value its ``draws`` can give (none reached the observed statistic), that bound,
    said as such, so that 20 shuffles' 0.048 never reads as a measured 0.05."""
    if at_floor(p, draws):
        return f"p = {p:.2g}, the smallest {draws} {what} can give"
    return f"p = {p:.3g} over {draws} {what}"


def mantel_text(m: Mantel) -> str:
    """A Mantel test's p as the pages write it: with its noise null, both p-values and which
    decides (the larger); without one, the relabelling p alone."""
    if m.noise_p is None:
        return p_text(m.p, m.permutations)
    return (f"p = {m.p:.3g}, the larger of relabelling {p_text(m.relabel_p, m.permutations)} and "
            f"noise-only {p_text(m.noise_p, m.noise_draws, 'null draws')}")


def moving_model_caveat(trained_between: int, test: str = "divergence") -> str | None:
    """How a run that trained between its probe steps is read (``None`` when it did not): its
    steps are not exchangeable, as the ``test`` (``divergence``, ``alignment`` or ``typology``,
    the Mantel test) assumes of the steps as they are, so each reads them with the model's
    movement taken out (``gradlens.analysis.pace``). The figures are ``bench/calibration.py``'s
    moving rows (docs/results.md §1b, §1e, §1f, §1h and §1i)."""
    if trained_between <= 0:
        return None
    what = {
        "divergence": (
            "The divergence test, the groups and the split's gain therefore read each "
            "language's steps divided by its own pace (a straight line fitted to its scale over "
            "the steps): on simulated runs whose direction turned while each language's scale "
            "moved at its own pace, straight or bent, that kept false positives at "
            "0.015–0.050, where the steps as they were gave up to 0.61 "
            "(docs/results.md §1i). A pace far from a straight line is not fully taken out."),
        "alignment": (
            "The alignment test therefore pairs the steps' contrasts free of a quintic trend "
            "over the steps, where the training's own trend, which CCA paired up before, is gone: "
            "with nothing shared, it called languages aligned in 4–6.5 % of simulated "
            "units, where the steps gave up to 100 % (docs/results.md §1i). The trend "
            "costs 6 of the run's steps, so CCA has fewer rows and a lower rank."),
        "typology": (
            "The paired similarity therefore correlates the steps' contrasts free of a "
            "quintic trend over the steps, and the mean similarity levels each language's own "
            "pace: on simulated languages with no structure whose paces followed their family, "
            "agreement with URIEL was called in 1.5–5 % of units, where the steps gave "
            "up to 100 %; a weak family response is found less often than on a fixed model "
            "(docs/results.md §1h, §1i)."),
    }[test]
    return (f"This run trained {trained_between} step(s) between its probe steps, so the model "
            f"moved while it was probed and its steps are not exchangeable. {what} To decide "
            "with the fewest assumptions, probe with no training between steps.")


def conflict_verdict(evidence: list[ModuleEvidence]) -> str:
    """One sentence on the run's ST–ASR conflict: which modules conflict systematically, or
    that none does."""
    found = [e for e in rank_modules(evidence, "conflict_rate") if e.conflicts()]
    rule = ("(mean cosine below 0 beyond step noise: sign-flip test over the steps, BH q < 0.05 "
            "across modules, and its 95 % interval below 0)")
    if not found:
        return (f"No module conflicts systematically {rule}: ST and ASR point apart at some "
                "steps in every module, as noise alone makes them, and these steps do not show "
                "a module where ASR works against ST on average.")
    return (f"{len(found)} of {len(evidence)} modules conflict systematically {rule}: "
            + ", ".join(f"{e.module} (mean cos {e.conflict.mean:+.3f})" for e in found[:8])
            + (f" and {len(found) - 8} more" if len(found) > 8 else "") + ".")


def task_cosine_text(task: TaskDivergence) -> str:
    """One sentence on a unit's cross-task cosine (``TaskDivergence``): the two tasks' mean
    gradients, which the step cosines above do not measure when the tasks share their noise."""
    lo, hi = task.mean_ci
    reading = ("the tasks' mean gradients point against each other" if hi < 0 else
               "the tasks pull this unit apart on average" if hi < 1 else
               "the data do not tell the tasks' mean directions apart")
    return (f"The two tasks' mean gradients, their noise taken out: cosine {task.mean:+.3f} "
            f"(languages averaged; 95 % interval [{lo:+.3f}, {hi:+.3f}] over the steps): "
            f"{reading}. 1 is one direction, 0 unrelated; noise can carry it a little past 1. "
            "It reads the average over the steps, where the step cosines read each step: the "
            "same utterances give both tasks shared noise, which keeps step cosines positive "
            "even when the means are opposed (docs/results.md §1j).")


def alignment_verdict(alignment: Alignment) -> str:
    """One sentence on what a unit's alignment test shows, with what it cannot: its shuffles'
    resolution, and its power against a weak shared response (docs/results.md §1e)."""
    a = alignment
    p = p_text(a.p_value, a.shuffles, "shuffles")
    if at_floor(a.p_value, a.shuffles):
        return (f"No shuffle of the steps reached this alignment: the languages' updates line "
                f"up beyond chance in this unit ({p}; among many units, one in "
                f"{a.shuffles + 1} reaches it by chance).")
    return (f"The data show no alignment beyond chance in this unit ({p}). That is weak "
            "evidence that the languages' updates are unrelated: a shared response to each "
            "batch as small as a third of the step noise was found in 7–13 % of simulated "
            "units (docs/results.md §1e).")


SILHOUETTE_IS_NO_TEST = ("a silhouette is no test of a grouping (simulated languages with no "
                         "groups score 0.5–1.0; docs/results.md §1d)")


def tree_verdict(clustering: Clustering, grouping: LanguageGrouping, typology: Agreement,
                 kind: str = "mean") -> str:
    """One plain paragraph: is this tree real? Supported clades, the best grouping's
    silhouette and the Mantel p-values, or a plain sentence that nothing is supported."""
    clades = clustering.supported_clades()
    g = len(grouping.groups_)
    silhouette = grouping.silhouettes_.get(g)
    parts = []
    if not clades_testable(kind, len(clustering.languages)):
        parts.append(f"**This tree's clades are not tested**: the paired similarity's noise "
                     f"correction cannot be checked with {len(clustering.languages)} languages "
                     f"(it needs {COMMON_MIN_LANGUAGES}). Read it as a picture; the mean "
                     f"similarity's clades are tested.")
    elif clustering.support is None:
        parts.append("No bootstrap support could be computed for this tree.")
    elif clades:
        parts.append(f"Clades with bootstrap support of at least {SUPPORTED:.0%}: "
                     + "; ".join("{" + ", ".join(c) + "}" for c in clades) + ".")
    else:
        parts.append(f"**No grouping of these languages is supported**: no clade is in "
                     f"{SUPPORTED:.0%} of the trees from resampled steps.")
    if silhouette is not None:
        parts.append(f"Best silhouette: {g} groups ({silhouette:.2f}), but "
                     f"{SILHOUETTE_IS_NO_TEST}.")
    if typology.tests:
        parts.append("Mantel test against URIEL: " + ", ".join(
            f"{k} r = {m.r:.2f}, {mantel_text(m)}" for k, m in typology.tests.items())
            + ".")
    return " ".join(parts)


def grouping_caveat(clustering: Clustering, kind: str = "mean") -> str | None:
    """What the groups drawn from this tree do not say: ``None`` when a clade is supported."""
    if clustering.supported_clades():
        return None
    why = ("its clades are not tested with this few languages"
           if not clades_testable(kind, len(clustering.languages))
           else "no clade of this tree is supported by the bootstrap")
    return (f"These groups are one way to cut the languages, not a finding: {why}, so the data "
            "do not say that these languages belong together. Do not split a module on them.")


def summary_text(run_name: str, evidence: list[ModuleEvidence], tasks: list[str], steps: int,
                 view: Overview, top: int = 10, trained_between: int = 0) -> str:
    """The summary ``gradlens analyze`` prints and writes (with the caveat of a run that
    trained ``trained_between`` steps between its probe steps)."""
    languages, grouping, typology = view.languages, view.grouping, view.typology
    rank = next((e.alignment.rank for e in evidence if e.alignment is not None), None)
    silhouette = grouping.silhouettes_.get(len(grouping.groups_))
    lines = [f"run {run_name}: {len(languages)} languages, {len(tasks)} task(s), "
             f"{len(evidence)} modules, {steps} steps, "
             + (f"CCA rank {rank}" if rank else "too few steps for CCA"),
             f"model-level grouping ({'exact' if grouping.exact_ else 'heuristic'}): "
             + " | ".join(" ".join(g) for g in grouping.groups_)
             + ("" if silhouette is None else f" (silhouette {silhouette:.2f}: no test, "
                "high even without groups)")]
    if typology.unavailable:
        lines.append(f"agreement with URIEL: not computed ({typology.unavailable})")
    else:
        lines.append("agreement with URIEL (gradient distance vs typological distance, Mantel): "
                     + "; ".join(f"{k} r={m.r:.3f}, {mantel_text(m)}"
                               for k, m in typology.tests.items()))
    found = [e for e in evidence if diverges(e)]
    lines.append(f"{len(found)} of {len(evidence)} modules diverge beyond noise (BH q < 0.05, "
                 "excess interval above 0)" + ("" if found else ": the data support no split"))
    caveat = moving_model_caveat(trained_between)
    if caveat:
        lines.append(f"CAVEAT: {caveat}")
    lines.append(f"top {top} modules by excess divergence (beyond noise; 95 % interval, q-value):")
    for e in rank_modules(evidence)[:top]:
        s = e.summary()
        cca = "-" if s["cca_excess"] is None else f"{s['cca_excess']:.3f}"
        q = "-" if e.q_value is None else f"{e.q_value:.3g}"
        lines.append(f"  {e.module:55s} excess {e.excess:+.3f} [{s['excess_ci_low']:+.3f}, "
                     f"{s['excess_ci_high']:+.3f}]  q {q}  cca beyond chance {cca}  "
                     f"groups {s['groups']}")
    if evidence[0].conflict is not None:
        lines.append(conflict_verdict(evidence))
        lines.append(f"top {top} modules by ST-ASR conflict rate (mean cosine, 95 % interval, "
                     "q-value):")
        for e in rank_modules(evidence, "conflict_rate")[:top]:
            c = e.conflict
            q = "-" if e.conflict_q is None else f"{e.conflict_q:.3g}"
            lines.append(f"  {e.module:55s} conflict {e.conflict_rate:6.3f}  mean cos "
                         f"{c.mean:+.3f} [{c.mean_ci[0]:+.3f}, {c.mean_ci[1]:+.3f}]  q {q}")
    return "\n".join(lines) + "\n"


def write_analysis(out: Path, run_name: str, evidence: list[ModuleEvidence], tasks: list[str],
                   steps: int, view: Overview, trained_between: int = 0) -> list[Path]:
    """Write ``modules.csv``, ``pairs.csv``, ``similarity_<block>.csv``, ``typology.csv`` and
    ``summary.txt`` into ``out``; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "modules.csv", out / "pairs.csv"]
    evidence_table(evidence).to_csv(written[0], index=False)
    pair_table(evidence).to_csv(written[1], index=False)
    for name, sim in view.similarities.items():
        path = out / f"similarity_{name}.csv"
        matrix_frame(sim, view.languages).to_csv(path)
        written.append(path)
    typology = view.typology
    path = out / "typology.csv"
    if typology.unavailable:
        pd.DataFrame([{"unit": "model", "kind": None, "r": None, "p": None,
                       "note": typology.unavailable}]).to_csv(path, index=False)
    else:
        pd.DataFrame([{"unit": "model", "kind": k, "r": m.r, "p": m.p,
                       "relabel_p": m.relabel_p, "permutations": m.permutations,
                       "noise_p": m.noise_p, "noise_draws": m.noise_draws}
                      for k, m in typology.tests.items()]
                     ).to_csv(path, index=False)
    written.append(path)
    path = out / "summary.txt"
    path.write_text(summary_text(run_name, evidence, tasks, steps, view,
                                 trained_between=trained_between), encoding="utf-8")
    written.append(path)
    return written
