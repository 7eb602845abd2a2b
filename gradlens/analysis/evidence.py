"""All the evidence on one module (or layer, or block), from its sketches: arrays in, a frozen
``ModuleEvidence`` out.

It gathers what the four methods say: similarity and the GradSim grouping, self/cross
divergence, cross-task divergence, alignment (joint factorization + CCA) and the ST-ASR
conflict; then the ranking and the q-values across modules. Reading a run and keeping its
evidence on disk is ``gradlens.evidence``'s job.

    python -c "import numpy as np; from gradlens.analysis.evidence import module_evidence; \\
               x = np.random.default_rng(0).normal(size=(8, 3, 2, 64)); \\
               print(module_evidence(x, ['a', 'b', 'c'], ['st', 'asr'], 'm', 64).summary())"
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from gradlens.analysis.alignment import Alignment, default_rank, subspace_alignment
from gradlens.analysis.divergence import (COMMON_MIN_LANGUAGES, NULL_GRAMS, Conflict,
                                          Divergence, TaskDivergence, bh_qvalues,
                                          bootstrap_weights, common_response_similarity,
                                          corrected_gram, corrected_similarity,
                                          language_divergence, null_grams, paired_gram,
                                          step_coordinates, task_conflict, task_divergence)
from gradlens.analysis.clustering import group_support
from gradlens.analysis.gain import MAX_GROUPS, best_group_count, cross_fitted_gains
from gradlens.analysis.grouping import LanguageGrouping, index_groups
from gradlens.analysis.nuisance import NUISANCES, NuisanceTest, nuisance_test
from gradlens.analysis.pace import detrended_rows, level_pace, paired_min_steps
from gradlens.errors import ConfigError, NotEnoughData

PRIMARY = "st"


def task_indices(tasks: list[str]) -> tuple[int, int | None]:
    """Index of the primary task (``st``, else the first) and of the first auxiliary one."""
    primary = tasks.index(PRIMARY) if PRIMARY in tasks else 0
    aux = next((i for i in range(len(tasks)) if i != primary), None)
    return primary, aux


@dataclass(frozen=True)
class ModuleEvidence:
    """What the methods say about one unit (primary task unless named).

    ``gram`` ``[L, L]``: noise-corrected inner products of the languages' mean gradients
    (``Divergence.gram``), additive over modules, so a layer's or the model's similarity follows
    from its modules' grams. ``similarity`` ``[L, L]``: the noise-corrected cosines. ``groups``:
    the GradSim grouping of that similarity (best ``g >= 2`` unless a number was asked).
    ``alignment`` is ``None`` when the steps are too few for CCA. ``q_value``: the divergence
    test's Benjamini–Hochberg q-value among the modules analysed together (``None`` alone), and
    ``conflict_q`` the same for the conflict test (systematic ST–ASR conflict).
    ``paired`` ``[L, L]`` and ``paired_boot`` ``[B, L, L]``: the covariance of the languages'
    per-step gradients (``paired_gram``; of their detrended contrasts on a model that moves,
    ``paired_rows``) and its bootstrap replicates, the same draws for every module; they add
    over modules too, so a layer's paired similarity is a sum.
    ``group_support``: each group's bootstrap support as a clade of the mean similarity's trees
    (``clustering.group_support``; ``None`` for one group): are these groups the data's?
    ``held_out_gain``: splitting into as many groups gains this much to first order on steps
    the groups were not chosen on, at least the second figure (``gain.held_out_gain``; ``None``
    with too few steps to hold half out).
    ``nuisance``: how far the groups follow each nuisance covariate the run recorded
    (``nuisance.nuisance_test``: utterance duration, loss level; ``None`` for one group).
    """

    module: str
    n_params: int
    languages: list[str]
    groups: list[list[str]]
    grouping_score: float
    divergence: Divergence
    task_divergence: TaskDivergence | None
    conflict: Conflict | None
    alignment: Alignment | None
    q_value: float | None = None
    paired: np.ndarray | None = None
    paired_boot: np.ndarray | None = None
    conflict_q: float | None = None
    group_support: list[float] | None = None
    held_out_gain: tuple[float, float] | None = None
    nuisance: list[NuisanceTest] | None = None

    @property
    def gram(self) -> np.ndarray:
        return self.divergence.gram

    @property
    def similarity(self) -> np.ndarray:
        return self.divergence.similarity

    @property
    def excess(self) -> float:
        return self.divergence.excess

    @property
    def cca_mean(self) -> float | None:
        return None if self.alignment is None else self.alignment.mean_off_diagonal()

    @property
    def cca_excess(self) -> float | None:
        return None if self.alignment is None else self.alignment.excess()

    @property
    def conflict_rate(self) -> float | None:
        return None if self.conflict is None else self.conflict.rate

    def conflicts(self, alpha: float = 0.05) -> bool:
        """Whether ST and ASR conflict here systematically: the conflict test survives the
        Benjamini–Hochberg correction across modules (q < ``alpha``) and the mean cosine's
        interval lies below 0."""
        c = self.conflict
        return (c is not None and self.conflict_q is not None and self.conflict_q < alpha
                and c.mean_ci[1] < 0)

    @property
    def task_cosine(self) -> float | None:
        """The noise-corrected cosine of the two tasks' mean gradients, languages averaged."""
        return None if self.task_divergence is None else self.task_divergence.mean

    def summary(self) -> dict:
        """The scalar figures, as a flat row (for tables, CSV and a plan's evidence)."""
        d, a, t = self.divergence, self.alignment, self.task_divergence
        top = d.pairs()[0] if len(self.languages) > 1 else None
        return {"module": self.module, "n_params": self.n_params,
                "divergence": d.divergence, "null_divergence": d.null_mean,
                "excess_divergence": d.excess, "excess_ci_low": d.excess_ci[0],
                "excess_ci_high": d.excess_ci[1], "p_value": d.p_value, "q_value": self.q_value,
                "self_divergence": float(d.self_div.mean()),
                "no_signal": " ".join(d.no_signal),
                "top_pair": None if top is None else f"{top[0]}-{top[1]}",
                "cca_mean": self.cca_mean,
                "cca_chance": None if a is None else a.chance_level(),
                "cca_excess": self.cca_excess, "cca_p_value": None if a is None else a.p_value,
                "conflict_rate": self.conflict_rate,
                "conflict_mean_cosine": None if self.conflict is None else self.conflict.mean,
                "conflict_ci_low": None if self.conflict is None else self.conflict.mean_ci[0],
                "conflict_ci_high": None if self.conflict is None else self.conflict.mean_ci[1],
                "conflict_p_value": None if self.conflict is None else self.conflict.p_value,
                "conflict_q_value": self.conflict_q,
                "cross_task_cosine": self.task_cosine,
                "cross_task_ci_low": None if t is None else t.mean_ci[0],
                "cross_task_ci_high": None if t is None else t.mean_ci[1],
                "n_groups": len(self.groups),
                "grouping_score": self.grouping_score,
                "groups": " | ".join(" ".join(g) for g in self.groups),
                **self.nuisance_figures()}

    def nuisance_figures(self) -> dict:
        """η² and permutation p of the groups against each nuisance (``None`` where the run
        recorded no such covariate or the module has one group)."""
        tests = {t.name: t for t in self.nuisance or []}
        out = {}
        for name in NUISANCES:
            t = tests.get(name)
            out[f"{name}_share"] = None if t is None else t.share
            out[f"{name}_p"] = None if t is None else t.p_value
        return out


def module_evidence(sketches: np.ndarray, languages: list[str], tasks: list[str], module: str,
                    n_params: int, rank: int | None = None,
                    n_groups: int | None = None, moving: bool = False,
                    content_paired: bool = True,
                    nuisances: dict[str, np.ndarray] | None = None) -> ModuleEvidence:
    """Evidence on one unit from its sketches ``[S, L, T, D]`` (at least 3 steps); ``moving``:
    the model trained between them (``gradlens.analysis.pace``: the mean-based evidence reads
    each language's steps with its pace levelled, the paired similarity and the alignment the
    steps' detrended contrasts, which need ``paired_min_steps(True)`` steps).
    ``content_paired``: every language saw the same content at each step; otherwise the rows
    of different languages do not pair up, and the paired similarity and the alignment are not
    computed (``paired`` and ``alignment`` stay ``None``).

    ``nuisances``: each nuisance covariate's value per language (``nuisance.NUISANCES``), which
    the groups are tested against.

    ``rank`` of the CCA: ``None`` picks ``default_rank`` of the rows it pairs and skips
    alignment when they are too few; an explicit rank they cannot support raises ValueError.
    """
    x = np.asarray(sketches, dtype=np.float64)
    primary, aux = task_indices(tasks)
    # the run's shared step draws
    divergence = language_divergence(x, languages, primary, moving=moving)
    steps = level_pace(x[:, :, primary]) if moving else x[:, :, primary]
    if n_groups is None:  # the fewest groups that buy (nearly) all a split buys, held out
        gains = cross_fitted_gains(steps, languages, range(2, min(MAX_GROUPS, len(languages)) + 1))
        n_groups = best_group_count(gains) or (2 if len(languages) > 1 else 1)
    else:
        gains = cross_fitted_gains(steps, languages, [n_groups])
    grouping = LanguageGrouping(n_groups).fit(divergence.similarity, languages)
    pairs = content_paired and x.shape[0] >= paired_min_steps(moving)
    rows = paired_rows(x[:, :, primary], moving) if pairs else None
    r = 0 if not content_paired else (default_rank(len(rows)) if pairs else 0) if rank is None \
        else rank
    alignment = subspace_alignment(x, languages, r, primary, moving=moving) if r >= 1 else None
    support = (group_support(corrected_similarity(divergence.boot_grams),
                             index_groups(grouping.groups_, languages))
               if len(grouping.groups_) > 1 and len(divergence.boot_grams) else None)
    return ModuleEvidence(
        module=module, n_params=int(n_params), languages=list(languages),
        groups=grouping.groups_, grouping_score=grouping.score_, divergence=divergence,
        task_divergence=(None if aux is None else
                         task_divergence(x, languages, primary, aux, moving=moving)),
        conflict=None if aux is None else task_conflict(x, languages, primary, aux),
        alignment=alignment, paired=None if rows is None else paired_gram(rows),
        paired_boot=(None if rows is None else
                     paired_gram(rows, bootstrap_weights(len(rows))).astype(np.float32)),
        group_support=support,
        held_out_gain=gains.get(len(grouping.groups_)),
        nuisance=(None if len(grouping.groups_) < 2 else
                  [nuisance_test(name, values, grouping.labels_)
                   for name, values in (nuisances or {}).items()]))


def with_q_values(evidence: list[ModuleEvidence]) -> list[ModuleEvidence]:
    """The evidence with each module's Benjamini–Hochberg q-values among all of them: of the
    divergence test, and of the conflict test where the run has two tasks."""
    q = bh_qvalues([e.divergence.p_value for e in evidence])
    out = [replace(e, q_value=float(qi)) for e, qi in zip(evidence, q)]
    if out and all(e.conflict is not None for e in out):
        qc = bh_qvalues([e.conflict.p_value for e in out])
        out = [replace(e, conflict_q=float(qi)) for e, qi in zip(out, qc)]
    return out


def similarity_of(evidence: list[ModuleEvidence], kind: str = "mean") -> np.ndarray:
    """``[L, L]`` similarity (``SIMILARITIES``) of several modules taken together (a layer, a
    block, the model): grams and paired covariances add, because the modules' gradients are
    concatenated."""
    return _SIMILARITY[kind](sum(_grams(e, kind)[0] for e in evidence))


def boot_similarities(evidence: list[ModuleEvidence], kind: str = "mean") -> np.ndarray | None:
    """``[B, L, L]`` the same similarity in each bootstrap replicate of the steps (every module
    of a run is resampled with the same steps, so the replicates add too); ``None`` where its
    clades are not tested (``clades_testable``)."""
    if not clades_testable(kind, len(evidence[0].languages)):
        return None
    return _SIMILARITY[kind](sum(_grams(e, kind)[1].astype(np.float64) for e in evidence))


def null_similarities(evidence: list[ModuleEvidence], kind: str = "mean") -> np.ndarray | None:
    """``[B, L, L]`` the ``kind`` similarity of several modules taken together on the noise
    null's data (the languages share one direction, keep their noise and scales;
    ``divergence.null_grams``), for the Mantel test's second null. ``None`` for the paired
    similarity, which has no such null (its relabelling test holds where the noise follows the
    family, docs/results.md §1f), and for evidence made before it was kept."""
    if kind != "mean" or any(e.divergence.null_grams is None for e in evidence):
        return None
    return corrected_similarity(sum(e.divergence.null_grams.astype(np.float64) for e in evidence))


def sketch_null_similarity(x: np.ndarray, kind: str = "mean", moving: bool = False,
                           width: int | None = None) -> np.ndarray | None:
    """``null_similarities`` of the per-step sketches ``x`` ``[S, L, k]`` of one task
    (``moving``, ``width``: as for ``sketch_similarity``)."""
    if kind != "mean":
        return None
    return corrected_similarity(null_grams(step_coordinates(_paced(x, moving, width),
                                                            passes=NULL_GRAMS)))


def offered_similarities(content_paired: bool) -> dict[str, str]:
    """The ``SIMILARITIES`` a run supports: the paired one only where its steps are
    content-paired (``Run.content_paired``)."""
    return {k: v for k, v in SIMILARITIES.items() if content_paired or k != "paired"}


NOT_PAIRED = ("Paired steps are not offered: this run's steps did not draw the same content in "
              "every language (a manifest without an item column), so its languages' steps do not "
              "pair up; the mean gradients are compared instead.")


def default_similarity(languages: int, content_paired: bool = True) -> str:
    """What the pages open on: the paired similarity, where language families show in the demo
    (docs/results.md), when the run's steps pair up and its clades can be tested; the mean
    similarity otherwise."""
    return "paired" if content_paired and clades_testable("paired", languages) else "mean"


def clades_testable(kind: str, languages: int) -> bool:
    """Whether bootstrap support of the ``kind`` similarity's clades means anything: the paired
    similarity's correction for each language's own noise needs ``COMMON_MIN_LANGUAGES``
    languages (with 4, a fifth of simulated units with no structure showed a supported clade;
    docs/results.md §1d)."""
    return kind != "paired" or languages >= COMMON_MIN_LANGUAGES


def _grams(e: ModuleEvidence, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The point and bootstrap grams of ``kind`` that ``e`` keeps."""
    if kind == "mean":
        return e.gram, e.divergence.boot_grams
    if kind == "paired" and e.paired is not None:
        return e.paired, e.paired_boot
    raise ConfigError(f"{e.module}: no {kind!r} similarity in this evidence")


def has_similarity(evidence: list[ModuleEvidence], kind: str) -> bool:
    """Whether every module of ``evidence`` keeps what ``similarity_of(kind)`` needs."""
    return kind == "mean" or all(e.paired is not None for e in evidence)


SIMILARITIES = {
    "mean": "mean gradients (noise-corrected cosine: do the languages want the same update?)",
    "paired": "paired steps (correlation over the same batches, corrected for each language's "
              "own noise: do the languages respond alike to the same utterances?)",
}

_GRAMS = {"mean": corrected_gram, "paired": paired_gram}
_SIMILARITY = {"mean": corrected_similarity, "paired": common_response_similarity}


def paired_rows(x: np.ndarray, moving: bool) -> np.ndarray:
    """What the paired similarity correlates across languages, from per-step sketches
    ``[S, L, ...]``: the steps themselves on a fixed model; on one that trains between its
    probe steps, their contrasts free of a quintic trend over the steps
    (``pace.detrended_rows``, ``[S - 6, L, ...]``). A trend the steps share within a family
    (its losses falling at the family's pace) is then gone, while each batch's response stays:
    in simulation the Mantel test on the steps called such a trend typology in every unit, on
    the detrended rows in 1.5-4 % (docs/results.md §1h, §1i)."""
    return detrended_rows(x) if moving else x


def sketch_similarity(x: np.ndarray, kind: str = "mean", moving: bool = False,
                      width: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Similarity ``[L, L]`` of the per-step sketches ``x`` ``[S, L, k]`` of one task, and its
    bootstrap replicates over the steps ``[B, L, L]`` (``None`` where ``clades_testable`` says
    no), by ``kind`` (``SIMILARITIES``); ``moving``: the model trained between the steps (the
    mean similarity then levels each language's pace, ``pace.level_pace``, per module of
    ``width`` coordinates when ``x`` holds several; the paired one reads ``paired_rows``)."""
    if kind not in SIMILARITIES:
        raise ConfigError(f"similarity must be one of {sorted(SIMILARITIES)}, got {kind!r}")
    if x.shape[0] < 3:
        raise NotEnoughData(f"a {kind} similarity needs at least 3 completed steps, got "
                            f"{x.shape[0]}")
    x = paired_rows(x, moving) if kind == "paired" else _paced(x, moving, width)
    if not clades_testable(kind, x.shape[1]):
        return _SIMILARITY[kind](_GRAMS[kind](x)), None
    weights = bootstrap_weights(x.shape[0])
    y = step_coordinates(x, passes=len(weights))
    return _SIMILARITY[kind](_GRAMS[kind](y)), _SIMILARITY[kind](_GRAMS[kind](y, weights))


def _paced(x: np.ndarray, moving: bool, width: int | None) -> np.ndarray:
    """The steps the mean-based evidence reads: ``x`` itself, or with each language's pace
    levelled on a run that trained between its steps."""
    return level_pace(x, width) if moving else x


def strongest_unit(evidence: list[ModuleEvidence], groups: dict[str, list[int]]) -> str | None:
    """Of ``groups`` (unit name -> module indices, as ``views.units`` gives), the unit whose
    languages diverge most surely beyond noise: the largest sum of its modules' excess interval
    lower ends above 0. ``None`` when no module has any: then no unit carries language signal."""
    sure = {name: sum(max(evidence[i].divergence.excess_ci[0], 0.0) for i in members)
            for name, members in groups.items()}
    best = max(sure, key=sure.get, default=None)
    return best if best is not None and sure[best] > 0 else None


RANKINGS = {
    "excess_divergence": (lambda e: e.excess, True),
    "conflict_rate": (lambda e: e.conflict_rate, True),
    "cross_task_cosine": (lambda e: e.task_cosine, False),  # the tasks most opposed first
    "cca_excess": (lambda e: e.cca_excess, False),  # least aligned (beyond chance) first
}


def rank_modules(evidence: list[ModuleEvidence], by: str = "excess_divergence") -> list[ModuleEvidence]:
    """Modules ordered by ``by`` (one of ``RANKINGS``), the strongest case for splitting first;
    modules without that figure go last."""
    if by not in RANKINGS:
        raise ConfigError(f"rank by one of {sorted(RANKINGS)}, got {by!r}")
    key, descending = RANKINGS[by]
    have = [e for e in evidence if key(e) is not None]
    lacking = [e for e in evidence if key(e) is None]
    return sorted(have, key=key, reverse=descending) + lacking
