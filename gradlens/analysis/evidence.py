"""All the evidence on one module, and on every module of a run, read once per module.

For each module (or layer, or block) of a run this gathers what the four methods say:
similarity and the GradSim grouping, self/cross divergence, cross-task divergence, alignment
(joint factorization + CCA) and the ST-ASR conflict. ``run_evidence`` reads each module's
sketches once (``[S, L, T, k]``, a few MB) and keeps only the results.

    python -c "from gradlens.store import Run; from gradlens.analysis.evidence import *; \\
               print([e.summary() for e in run_evidence(Run('runs/demo'))][:3])"
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from gradlens.analysis.alignment import Alignment, default_rank, subspace_alignment
from gradlens.analysis.divergence import (Conflict, Divergence, TaskDivergence, bh_qvalues,
                                          bootstrap_weights, corrected_gram, corrected_similarity,
                                          language_divergence, paired_gram,
                                          step_coordinates, task_conflict, task_divergence)
from gradlens.analysis.grouping import LanguageGrouping
from gradlens.analysis.views import unit_of, unit_sketches, units
from gradlens.errors import ConfigError, NotEnoughData
from gradlens.store import Run

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
    test's Benjamini–Hochberg q-value among the modules analysed together (``None`` alone).
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

    @property
    def task_ratio(self) -> float | None:
        return None if self.task_divergence is None else self.task_divergence.mean_ratio

    def summary(self) -> dict:
        """The scalar figures, as a flat row (for tables, CSV and a plan's evidence)."""
        d, a = self.divergence, self.alignment
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
                "cross_task_ratio": self.task_ratio, "n_groups": len(self.groups),
                "grouping_score": self.grouping_score,
                "groups": " | ".join(" ".join(g) for g in self.groups)}


def module_evidence(sketches: np.ndarray, languages: list[str], tasks: list[str], module: str,
                    n_params: int, rank: int | None = None,
                    n_groups: int | None = None) -> ModuleEvidence:
    """Evidence on one unit from its sketches ``[S, L, T, D]`` (at least 3 steps).

    ``rank`` of the CCA: ``None`` picks ``default_rank(S)`` and skips alignment when the steps
    are too few; an explicit rank the steps cannot support raises ValueError.
    """
    x = np.asarray(sketches, dtype=np.float64)
    primary, aux = task_indices(tasks)
    divergence = language_divergence(x, languages, primary)  # the run's shared step draws
    grouping = LanguageGrouping(n_groups).fit(divergence.similarity, languages)
    r = default_rank(x.shape[0]) if rank is None else rank
    alignment = subspace_alignment(x, languages, r, primary) if r >= 1 else None
    return ModuleEvidence(
        module=module, n_params=int(n_params), languages=list(languages),
        groups=grouping.groups_, grouping_score=grouping.score_, divergence=divergence,
        task_divergence=None if aux is None else task_divergence(x, languages, primary, aux),
        conflict=None if aux is None else task_conflict(x, languages, primary, aux),
        alignment=alignment)


def unit_evidence(run: Run, key: str, rank: int | None = None,
                  n_groups: int | None = None) -> ModuleEvidence:
    """Evidence on one module, layer or block of ``run`` over its done steps."""
    n = int(run.modules.n_params[unit_of(run, key)].sum())
    return module_evidence(unit_sketches(run, key), run.languages, run.tasks, key, n, rank,
                           n_groups)


def run_evidence(run: Run, rank: int | None = None, n_groups: int | None = None,
                 on_module: Callable[[int, int, str], None] | None = None) -> list[ModuleEvidence]:
    """Evidence on every module of ``run``, in model order; ``on_module(done, total, name)``
    reports progress after each."""
    names = list(units(run, "module"))
    out = []
    for i, name in enumerate(names):
        out.append(unit_evidence(run, name, rank, n_groups))
        if on_module:
            on_module(i + 1, len(names), name)
    return with_q_values(out)


def with_q_values(evidence: list[ModuleEvidence]) -> list[ModuleEvidence]:
    """The evidence with each module's Benjamini–Hochberg q-value among all of them."""
    q = bh_qvalues([e.divergence.p_value for e in evidence])
    return [replace(e, q_value=float(qi)) for e, qi in zip(evidence, q)]


def similarity_of(evidence: list[ModuleEvidence]) -> np.ndarray:
    """``[L, L]`` noise-corrected similarity of several modules taken together (a layer, a
    block, the model): the corrected grams add, because the modules' gradients are
    concatenated."""
    return corrected_similarity(sum(e.gram for e in evidence))


def boot_similarities(evidence: list[ModuleEvidence]) -> np.ndarray:
    """``[B, L, L]`` the same similarity in each bootstrap replicate of the steps (every module
    of a run is resampled with the same steps, so the replicates add too)."""
    return corrected_similarity(sum(e.divergence.boot_grams.astype(np.float64) for e in evidence))


SIMILARITIES = {
    "mean": "mean gradients (noise-corrected cosine: do the languages want the same update?)",
    "paired": "paired steps (correlation over the same batches: do the languages respond alike "
              "to the same utterances?)",
}

_GRAMS = {"mean": corrected_gram, "paired": paired_gram}


def unit_similarity(run: Run, evidence: list[ModuleEvidence], key: str, task: str,
                    kind: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Similarity ``[L, L]`` of unit ``key`` for ``task`` and its bootstrap replicates over the
    steps ``[B, L, L]``. ``kind`` (``SIMILARITIES``): ``mean``, the noise-corrected cosine of the
    mean gradients (summed from the run's module evidence for the primary task, read from the
    sketches for another); ``paired``, the correlation of the languages' per-step gradients
    over the steps, which pair the same numbers in every language."""
    if kind not in SIMILARITIES:
        raise ConfigError(f"similarity must be one of {sorted(SIMILARITIES)}, got {kind!r}")
    primary, _ = task_indices(run.tasks)
    if kind == "mean" and run.tasks.index(task) == primary:
        names = set(run.modules.name[i] for i in unit_of(run, key))
        chosen = [e for e in evidence if e.module in names]
        if len(chosen) == len(names):
            return similarity_of(chosen), boot_similarities(chosen)
    gram = _GRAMS[kind]
    x = unit_sketches(run, key)[:, :, run.tasks.index(task)].astype(np.float64)
    if x.shape[0] < 3:
        raise NotEnoughData(f"a {kind} similarity needs at least 3 completed steps, "
                         f"{run.path} has {x.shape[0]}")
    weights = bootstrap_weights(x.shape[0])
    y = step_coordinates(x, passes=len(weights))
    return corrected_similarity(gram(y)), corrected_similarity(gram(y, weights))


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
    "cross_task_ratio": (lambda e: e.task_ratio, True),
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


# -- kept on disk -------------------------------------------------------------------------------
EVIDENCE_CACHE = "analysis/evidence.npz"
# bump whenever what the analysis computes changes: a cache made by other code is stale
ANALYSIS_VERSION = 3
CACHE_SCHEMA = 1
_META = "__structure__"


def _stamp(run: Run) -> list:
    from gradlens import __version__

    stat = run.path.stat()
    return [CACHE_SCHEMA, __version__, ANALYSIS_VERSION, stat.st_size, stat.st_mtime_ns]


def _frozen_types() -> dict[str, type]:
    """The only types a cache may rebuild: the analysis's frozen results."""
    return {t.__name__: t for t in (ModuleEvidence, Divergence, TaskDivergence, Conflict,
                                    Alignment)}


def encode(value, arrays: dict[str, np.ndarray]):
    """``value`` as JSON-able structure; its arrays go into ``arrays`` (for an ``.npz``)."""
    from dataclasses import fields, is_dataclass

    if is_dataclass(value):
        return {"type": type(value).__name__,
                "fields": {f.name: encode(getattr(value, f.name), arrays) for f in fields(value)}}
    if isinstance(value, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"array": key}
    if isinstance(value, tuple):
        return {"tuple": [encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [encode(v, arrays) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot keep a {type(value).__name__} in the evidence cache")


def decode(node, arrays):
    """The inverse of ``encode``: only the frozen result types are rebuilt; anything else in
    the structure raises ValueError."""
    if isinstance(node, list):
        return [decode(v, arrays) for v in node]
    if isinstance(node, dict):
        if "array" in node:
            return np.asarray(arrays[node["array"]])
        if "tuple" in node:
            return tuple(decode(v, arrays) for v in node["tuple"])
        cls = _frozen_types().get(node.get("type"))
        if cls is None:
            raise ValueError(f"unknown type {node.get('type')!r} in the evidence cache")
        return cls(**{k: decode(v, arrays) for k, v in node["fields"].items()})
    return node


def _digest(path: Path) -> str:
    """The content of ``grads.h5``: what survives a copy, which changes its modification time."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def saved_run_evidence(run: Run) -> list[ModuleEvidence] | None:
    """The evidence kept in ``<run>/analysis/evidence.npz`` if it is current, else ``None``.

    The file records its schema, the gradlens version and ``ANALYSIS_VERSION`` it was made by,
    and the size and modification time of ``grads.h5``; any difference (the run grew, the
    analysis changed) makes it stale, except a new modification time over the same bytes (a
    copied or restored run): then the content digest it also records decides, and a match
    re-stamps the cache instead of recomputing (seconds for a large file, not minutes). It holds
    arrays and a JSON structure only (no pickle), so a cache from elsewhere is data, never code;
    a damaged or tampered one is recomputed.
    """
    import json
    import zipfile

    path = run.path.parent / EVIDENCE_CACHE
    try:
        with np.load(path, allow_pickle=False) as z:
            saved = json.loads(str(z[_META]))
            stamp = _stamp(run)
            if saved.get("stamp") == stamp:
                return decode(saved["evidence"], z)
            if saved.get("stamp", [])[:4] != stamp[:4] or saved.get("digest") != _digest(run.path):
                return None
            evidence = decode(saved["evidence"], z)
            arrays = {k: z[k] for k in z.files if k != _META}
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, json.JSONDecodeError):
        return None
    _write_cache(path, {**saved, "stamp": stamp}, arrays)
    return evidence


def _write_cache(path: Path, structure: dict, arrays: dict[str, np.ndarray]) -> None:
    import json

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays, **{_META: np.array(json.dumps(structure))})
        tmp.replace(path)
    except OSError:
        pass  # a read-only run is analysed every time, not refused


def cached_run_evidence(run: Run, on_module: Callable[[int, int, str], None] | None = None
                        ) -> list[ModuleEvidence]:
    """``run_evidence`` with the default settings, kept in ``<run>/analysis/evidence.npz``."""
    evidence = saved_run_evidence(run)
    if evidence is not None:
        return evidence
    stamp, digest = _stamp(run), _digest(run.path)
    evidence = run_evidence(run, on_module=on_module)
    arrays: dict[str, np.ndarray] = {}
    _write_cache(run.path.parent / EVIDENCE_CACHE,
                 {"stamp": stamp, "digest": digest, "evidence": encode(evidence, arrays)}, arrays)
    return evidence
