"""A run's evidence: the edge between the run store and the analysis, and the one cache.

It reads the sketches of a module, layer or block of a ``Run`` (a layer's gradient is the
concatenation of its modules', so its sketch is the concatenation of theirs: inner products add
over modules and no new collisions appear), hands them to ``gradlens.analysis``, and keeps the
whole run's evidence in ``<run>/analysis/evidence.npz``: arrays and a JSON structure, no pickle,
stamped with its schema, the analysis version and the size, time and digest of ``grads.h5``.
The app's in-memory layer above it is ``gradlens.ui.cache``.

    python -c "from gradlens.store import Run; from gradlens.evidence import *; \\
               print([e.summary() for e in cached_run_evidence(Run('runs/demo'))][:3])"
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

from gradlens.analysis.alignment import Alignment
from gradlens.analysis.divergence import Conflict, Divergence, TaskDivergence
from gradlens.analysis.drift import Drift, window_drift
from gradlens.analysis.nuisance import NuisanceTest
from gradlens.analysis.evidence import (SIMILARITIES, ModuleEvidence, boot_similarities,
                                        has_similarity, module_evidence, null_similarities,
                                        similarity_of, sketch_null_similarity,
                                        sketch_similarity, task_indices, with_q_values)
from gradlens.errors import ConfigError, NotEnoughData
from gradlens.modules import groups
from gradlens.store import Run


# -- views of a run -----------------------------------------------------------------------------
def units(run: Run, granularity: str) -> dict[str, list[int]]:
    """The units of ``granularity`` (module, layer, block) and their module indices."""
    return groups(run.modules.name, granularity)


def unit_of(run: Run, key: str) -> list[int]:
    """Module indices of ``key``: a module, a layer or a block name."""
    for granularity in ("module", "layer", "block"):
        found = units(run, granularity).get(key)
        if found:
            return found
    raise ConfigError(f"{key!r} is no module, layer or block of {run.path}")


def unit_sketches(run: Run, key: str, steps=None) -> np.ndarray:
    """Sketches of unit ``key``: ``[S, L, T, n_modules * k]`` over the done (or given) steps."""
    parts = [run.sketch(m, steps) for m in unit_of(run, key)]
    return np.concatenate(parts, axis=-1)


def unit_mean(run: Run, key: str, steps=None) -> np.ndarray:
    """Mean sketch of unit ``key`` over the done (or given) steps: ``[L, T, n_modules * k]``.

    Read and averaged one module at a time, so a block of many modules never sits in memory
    with all its steps at once.
    """
    parts = []
    for m in unit_of(run, key):
        x = run.sketch(m, steps)
        if x.shape[0] == 0:
            raise NotEnoughData(f"{run.path}: no completed steps to average")
        parts.append(x.mean(axis=0, dtype=np.float64))
    return np.concatenate(parts, axis=-1)


# -- evidence of a run --------------------------------------------------------------------------
def step_windows(done: np.ndarray, n: int) -> list[np.ndarray]:
    """``done`` steps cut into ``n`` consecutive windows of (nearly) equal size, in order: the
    same run seen at successive points of its training (or, for a run that did not train
    between steps, on disjoint utterances)."""
    done = np.asarray(done, dtype=np.int64)
    if not 1 <= n <= max(len(done), 1):
        raise ConfigError(f"cannot cut {len(done)} steps into {n} windows")
    return [w for w in np.array_split(done, n)]


def run_nuisances(run: Run, steps=None) -> dict[str, np.ndarray]:
    """Each nuisance covariate per language over the done (or given) steps: the mean audio
    seconds of its batches (where the probe recorded them) and its mean loss on the primary
    task (``analysis.nuisance``)."""
    from gradlens.analysis.evidence import task_indices

    out = {}
    duration = run.duration(steps)
    if duration is not None and len(duration) and np.isfinite(duration).all():
        out["duration"] = duration.mean(axis=0).astype(np.float64)
    loss = run.loss(steps)
    if len(loss):
        out["loss"] = loss[:, :, task_indices(run.tasks)[0]].mean(axis=0).astype(np.float64)
    return out


def unit_evidence(run: Run, key: str, rank: int | None = None,
                  n_groups: int | None = None, steps=None,
                  nuisances: dict[str, np.ndarray] | None = None) -> ModuleEvidence:
    """Evidence on one module, layer or block of ``run`` over its done (or the given) steps;
    ``nuisances``: ``run_nuisances(run, steps)``, when the caller already has them."""
    n = int(run.modules.n_params[unit_of(run, key)].sum())
    return module_evidence(unit_sketches(run, key, steps), run.languages, run.tasks, key, n,
                           rank, n_groups, moving=run.train_steps_between > 0,
                           content_paired=run.content_paired,
                           nuisances=run_nuisances(run, steps) if nuisances is None else nuisances)


def run_evidence(run: Run, rank: int | None = None, n_groups: int | None = None,
                 on_module: Callable[[int, int, str], None] | None = None,
                 steps=None) -> list[ModuleEvidence]:
    """Evidence on every module of ``run`` over its done (or the given) steps, in model order;
    ``on_module(done, total, name)`` reports progress after each."""
    names = list(units(run, "module"))
    nuisances = run_nuisances(run, steps)  # read once: the same for every module
    out = []
    for i, name in enumerate(names):
        out.append(unit_evidence(run, name, rank, n_groups, steps, nuisances))
        if on_module:
            on_module(i + 1, len(names), name)
    return with_q_values(out)


def unit_similarity(run: Run, evidence: list[ModuleEvidence], key: str, task: str,
                    kind: str = "mean", steps=None) -> tuple[np.ndarray, np.ndarray]:
    """Similarity ``[L, L]`` of unit ``key`` for ``task`` and its bootstrap replicates over the
    steps ``[B, L, L]``. ``kind`` (``SIMILARITIES``): ``mean``, the noise-corrected cosine of the
    mean gradients; ``paired``, the correlation of the languages' per-step gradients over the
    steps, which pair the same numbers in every language (of their detrended contrasts when
    the run trained between its steps, ``paired_rows``; the mean one then levels each
    language's pace, ``analysis.pace``). Either is summed from the run's
    module evidence for the primary task (milliseconds) and read from the sketches for
    another; ``evidence`` and ``steps`` must be of the same steps (default: all done)."""
    kept = _kept_evidence(run, evidence, key, task, kind)
    if kept is not None:
        return similarity_of(kept, kind), boot_similarities(kept, kind)
    return _from_sketches(run, key, task, steps,
                          lambda x: sketch_similarity(x, kind, run.train_steps_between > 0,
                                                      run.sketch_dim))


def unit_null_similarity(run: Run, evidence: list[ModuleEvidence], key: str, task: str,
                         kind: str = "mean", steps=None) -> np.ndarray | None:
    """``[B, L, L]``: ``unit_similarity`` on the noise null's data (the languages share one
    direction, keep their own noise and scales), for the Mantel test's second null; ``None``
    for a similarity without one (``null_similarities``), without reading anything."""
    if kind != "mean":
        return None
    kept = _kept_evidence(run, evidence, key, task, kind)
    if kept is not None:
        return null_similarities(kept, kind)
    return _from_sketches(run, key, task, steps, lambda x: sketch_null_similarity(
        x, kind, run.train_steps_between > 0, run.sketch_dim))


def _kept_evidence(run: Run, evidence: list[ModuleEvidence], key: str, task: str,
                   kind: str) -> list[ModuleEvidence] | None:
    """The module evidence of unit ``key`` that holds its ``kind`` similarity for ``task`` (the
    primary task's), or ``None`` when it must be read from the sketches."""
    if kind not in SIMILARITIES:
        raise ConfigError(f"similarity must be one of {sorted(SIMILARITIES)}, got {kind!r}")
    primary, _ = task_indices(run.tasks)
    if run.tasks.index(task) != primary:
        return None
    names = set(run.modules.name[i] for i in unit_of(run, key))
    chosen = [e for e in evidence if e.module in names]
    return chosen if len(chosen) == len(names) and has_similarity(chosen, kind) else None


def _from_sketches(run: Run, key: str, task: str, steps, compute: Callable):
    x = unit_sketches(run, key, steps)[:, :, run.tasks.index(task)].astype(np.float64)
    try:
        return compute(x)
    except NotEnoughData as exc:
        raise NotEnoughData(f"{run.path}: {exc}") from None


def unit_drift(run: Run, key: str, task: str, first, last) -> Drift:
    """How far unit ``key``'s ``task`` gradient, pooled over the languages, moved from the
    steps ``first`` to the steps ``last`` (``gradlens.analysis.drift``)."""
    t = run.tasks.index(task)
    pooled = [unit_sketches(run, key, steps)[:, :, t].sum(1, dtype=np.float64)
              for steps in (first, last)]
    try:
        return window_drift(*pooled)
    except NotEnoughData as exc:
        raise NotEnoughData(f"{run.path}: {exc}") from None


# -- kept on disk -------------------------------------------------------------------------------
EVIDENCE_CACHE = "analysis/evidence.npz"
# bump whenever what the analysis computes changes in a way its code does not show (a data
# file it reads); a change to the analysis code itself makes the cache stale on its own
# (analysis_digest)
ANALYSIS_VERSION = 15
_ANALYSIS_CODE = ("analysis/*.py", "evidence.py", "store.py", "modules.py")
CACHE_SCHEMA = 1
_META = "__structure__"


@lru_cache(maxsize=1)
def analysis_digest() -> str:
    """A digest of the code that computes the evidence, docstrings and comments left out (its
    syntax tree): a cache made by other analysis code is stale, with no version to forget."""
    return code_digest(Path(__file__).resolve().parent)


def code_digest(root: Path) -> str:
    """``analysis_digest`` of the package at ``root`` (``_ANALYSIS_CODE`` under it)."""
    import ast

    digest = hashlib.sha256()
    for path in sorted(p for pattern in _ANALYSIS_CODE for p in root.glob(pattern)):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        digest.update(path.name.encode() + ast.dump(tree).encode())
    return digest.hexdigest()[:16]


def _stamp(run: Run) -> list:
    from gradlens import __version__

    stat = run.path.stat()
    return [CACHE_SCHEMA, __version__, ANALYSIS_VERSION, analysis_digest(), stat.st_size,
            stat.st_mtime_ns]


def _frozen_types() -> dict[str, type]:
    """The only types a cache may rebuild: the analysis's frozen results."""
    return {t.__name__: t for t in (ModuleEvidence, Divergence, TaskDivergence, Conflict,
                                    Alignment, NuisanceTest)}


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


def cache_path(run: Run, steps=None) -> Path:
    """Where the evidence of ``run`` over all its steps (``steps=None``) or over a window of
    them is kept: ``analysis/evidence.npz``, ``analysis/evidence-steps-<first>-<last>.npz``."""
    if steps is None:
        return run.path.parent / EVIDENCE_CACHE
    steps = np.asarray(steps, dtype=np.int64)
    return run.path.parent / EVIDENCE_CACHE.replace(
        ".npz", f"-steps-{steps.min()}-{steps.max()}.npz")


def _window(steps) -> list[int] | None:
    return None if steps is None else np.asarray(steps, dtype=np.int64).tolist()


def saved_run_evidence(run: Run, steps=None) -> list[ModuleEvidence] | None:
    """The evidence kept in ``cache_path(run, steps)`` if it is current, else ``None``.

    The file records its schema, the gradlens version and ``ANALYSIS_VERSION`` it was made by,
    and the size and modification time of ``grads.h5``; any difference (the run grew, the
    analysis changed) makes it stale, except a new modification time over the same bytes (a
    copied or restored run): then the content digest it also records decides, and a match
    re-stamps the cache instead of recomputing (seconds for a large file, not minutes). It holds
    arrays and a JSON structure only (no pickle), so a cache from elsewhere is data, never code;
    a damaged or tampered one is recomputed. A window's file records its steps too.
    """
    import json
    import zipfile

    path = cache_path(run, steps)
    try:
        with np.load(path, allow_pickle=False) as z:
            saved = json.loads(str(z[_META]))
            if saved.get("steps") != _window(steps):
                return None
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


def cached_run_evidence(run: Run, on_module: Callable[[int, int, str], None] | None = None,
                        steps=None) -> list[ModuleEvidence]:
    """``run_evidence`` with the default settings over all done steps (or the window
    ``steps``), kept in ``cache_path(run, steps)``."""
    evidence = saved_run_evidence(run, steps)
    if evidence is not None:
        return evidence
    stamp, digest = _stamp(run), _digest(run.path)
    evidence = run_evidence(run, on_module=on_module, steps=steps)
    arrays: dict[str, np.ndarray] = {}
    _write_cache(cache_path(run, steps),
                 {"stamp": stamp, "digest": digest, "steps": _window(steps),
                  "evidence": encode(evidence, arrays)}, arrays)
    return evidence
