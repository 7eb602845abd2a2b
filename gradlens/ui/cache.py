"""The app's cache of what it reads from runs: ``st.cache_data`` keyed on the run's path and
modification time, so a run that grows (SWMR) is read again; the evidence of every module, which
takes a while, is computed once per (run, mtime, window) with a progress bar and kept in one
bounded ``st.cache_resource`` store (``KEEP`` sets). A window is a tuple of the run's steps (the
Compare page's "one run over training"); ``None`` is all of them. The evidence itself is cached
on disk by ``gradlens.evidence``; this is the in-memory layer above it.

While a researcher reads one unit's tree, ``prefetch_trees`` computes the other units' trees in
one background worker into the same cache, nearest units first, so a change of unit finds its
tree ready instead of computing it (0.2 s of numpy per layer at 32 languages, doubled when the
browser draws on the same cores; docs/performance.md).
"""

from __future__ import annotations

import functools
import os
import queue
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from gradlens.analysis.clustering import METHODS, Clustering, cluster_similarity
from gradlens.analysis.evidence import (ModuleEvidence, default_similarity,
                                       strongest_unit as _strongest)
from gradlens.analysis.grouping import LanguageGrouping
from gradlens.evidence import (cached_run_evidence, saved_run_evidence, unit_drift,
                               unit_evidence, unit_null_similarity,
                               unit_similarity, units)
from gradlens.paths import GRADS_FILE, made_ahead
from gradlens.store import Run, RunError


def _mtime(run: Path) -> float:
    return (Path(run) / GRADS_FILE).stat().st_mtime


def shown_if_damaged(fn):
    """Pages call ``fn`` to read a run: damage that opening it does not reveal (a data chunk
    failing its checksum, found mid-analysis) ends the page with the named error, not a
    traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RunError as exc:
            st.error(f"This run cannot be read: {exc}")
            st.stop()
    return wrapper


@st.cache_data(show_spinner=False)
def _summary(run: str, mtime: float) -> dict:
    try:
        with Run(run) as r:
            cfg = r.probe_config
            return {"run": Path(run).name, "created": str(r.attrs.get("created", ""))[:16]
                    .replace("T", " "), "created_at": str(r.attrs.get("created", "")),
                    "model": Path(r.model).name,
                    "corpus": Path(str(cfg.get("corpus", "?"))).name,
                    "languages": " ".join(r.languages), "tasks": " ".join(r.tasks),
                    "modules": len(r.modules),
                    "steps done": f"{len(r.done_steps)} / {r.planned_steps}",
                    "batch": cfg.get("batch_size"), "k": r.sketch_dim,
                    "training steps between": cfg.get("train_steps_between"),
                    "done": len(r.done_steps), "planned": r.planned_steps,
                    "size (MB)": round(r.size_bytes() / 1e6, 1), "error": ""}
    except RunError as exc:
        return {"run": Path(run).name, "error": str(exc)}


def summary(run: Path) -> dict:
    return _summary(str(run), _mtime(run))


@dataclass(frozen=True)
class RunMeta:
    """What the pages read of a run: its languages, tasks, units (with each module's size),
    completed steps, model and corpus."""

    languages: list[str]
    tasks: list[str]
    modules: list[str]
    n_params: dict[str, int]
    layers: list[str]
    blocks: list[str]
    steps: int
    model: str
    corpus: str
    done_steps: tuple[int, ...] = ()
    train_steps_between: int = 0
    content_paired: bool = True


@st.cache_data(show_spinner=False)
def _meta(run: str, mtime: float) -> RunMeta:
    with Run(run) as r:
        return RunMeta(languages=list(r.languages), tasks=list(r.tasks),
                       modules=list(r.modules.name),
                       n_params=dict(zip(r.modules.name, map(int, r.modules.n_params))),
                       layers=list(units(r, "layer")), blocks=list(units(r, "block")),
                       steps=len(r.done_steps), model=r.model,
                       corpus=str(r.probe_config.get("corpus", "spoken-numbers")),
                       done_steps=tuple(int(s) for s in r.done_steps),
                       train_steps_between=r.train_steps_between,
                       content_paired=r.content_paired)


def meta(run: Path) -> RunMeta:
    """Languages, tasks, units and steps of a run; raises RunError for a broken one."""
    return _meta(str(run), _mtime(run))


SIMILARITIES_KEPT = 64  # units' similarities in memory: 1.6 MB each at 32 languages, 200 replicates


@st.cache_data(show_spinner=False, max_entries=SIMILARITIES_KEPT)
def _similarity(run: str, mtime: float, key: str, task: str, kind: str,
                window: tuple[int, ...] | None):
    """``key``'s ``kind`` similarity and its bootstrap replicates: what the tree (any linkage),
    the grouping and the Mantel test all read, computed once per unit (callers pass every
    argument, since the cache keys on the arguments as given)."""
    whole = _evidence_store().get((run, mtime, window)) or []
    with Run(run) as r:
        return unit_similarity(r, whole, key, task, kind, window)


@st.cache_data(show_spinner=False)
def _clustering(run: str, mtime: float, key: str, task: str, method: str,
                kind: str, window: tuple[int, ...] | None) -> Clustering:
    sim, replicates = _similarity(run, mtime, key, task, kind, window)
    return cluster_similarity(sim, _meta(run, mtime).languages, method, replicates)


@shown_if_damaged
def clustering(run: Path, key: str, task: str, method: str, kind: str = "mean",
               window: tuple[int, ...] | None = None) -> Clustering:
    """The tree of ``key``'s languages from their ``kind`` of similarity over all steps (or the
    ``window``), with each clade's bootstrap support (the evidence of every module is made
    first, with its progress bar)."""
    evidence(run, window)
    return _clustering(str(run), _mtime(run), key, task, method, kind, window)


@shown_if_damaged
def strongest_unit(run: Path, granularity: str) -> str | None:
    """The unit of ``granularity`` that carries the surest language signal (the default view)."""
    whole = evidence(run)
    with Run(run) as r:
        return _strongest(whole, units(r, granularity))


@st.cache_data(show_spinner=False)
def _grouping(run: str, mtime: float, key: str, task: str, n_groups: int | None,
              kind: str) -> LanguageGrouping:
    sim, _ = _similarity(run, mtime, key, task, kind, None)
    return LanguageGrouping(n_groups).fit(sim, _meta(run, mtime).languages)


@shown_if_damaged
def grouping(run: Path, key: str, task: str, n_groups: int | None,
             kind: str = "mean") -> LanguageGrouping:
    """GradSim grouping of ``key``'s languages (``n_groups=None``: the best number)."""
    return _grouping(str(run), _mtime(run), key, task, n_groups, kind)


@st.cache_data(show_spinner=False)
def _typology(run: str, mtime: float, key: str, task: str, kind: str,
              window: tuple[int, ...] | None = None):
    from gradlens.analysis.typology import agreement_of

    sim, _ = _similarity(run, mtime, key, task, kind, window)
    whole = _evidence_store().get((run, mtime, window)) or []
    with Run(run) as r:
        null = unit_null_similarity(r, whole, key, task, kind, window)
    return agreement_of(sim, _meta(run, mtime).languages, null=null)


@shown_if_damaged
def typology(run: Path, key: str, task: str, kind: str = "mean",
             window: tuple[int, ...] | None = None):
    """Mantel agreement of ``key``'s gradient distances with URIEL, or why it cannot be had
    (``clustering`` first, for the same window)."""
    return _typology(str(run), _mtime(run), key, task, kind, window)


@st.cache_data(show_spinner=False)
def _drift(run: str, mtime: float, key: str, task: str, first: tuple[int, ...],
           last: tuple[int, ...]):
    with Run(run) as r:
        return unit_drift(r, key, task, first, last)


@shown_if_damaged
def drift(run: Path, key: str, task: str, first: tuple[int, ...], last: tuple[int, ...]):
    """How far ``key``'s gradient moved from the steps ``first`` to ``last``."""
    return _drift(str(run), _mtime(run), key, task, first, last)


@st.cache_data(show_spinner=False)
def _unit_evidence(run: str, mtime: float, key: str) -> ModuleEvidence:
    with Run(run) as r:
        return unit_evidence(r, key)


@shown_if_damaged
def module_evidence(run: Path, key: str) -> ModuleEvidence:
    """All the evidence on one module, layer or block (a module's comes from the whole-run
    evidence when that is already at hand, in memory or in the run)."""
    found = next((e for e in _kept_evidence(run) or [] if e.module == key), None)
    return found if found is not None else _unit_evidence(str(run), _mtime(run), key)


def _kept_evidence(run: Path) -> list[ModuleEvidence] | None:
    """The whole-run evidence of ``run`` where it costs no analysis: in memory, else read from
    the run's evidence file (and kept in memory); ``None`` where neither has it."""
    key = (str(run), _mtime(run), None)
    whole = _evidence_store().get(key)
    if whole is None:
        with Run(run) as r:
            whole = saved_run_evidence(r)
        if whole is not None:
            _remember(key, whole)
    return whole


KEEP = 6  # evidence sets (a run's, or a window of a run's) the server keeps in memory


@st.cache_resource(show_spinner=False)
def _evidence_store() -> dict:
    return {}


def _remember(key: tuple, value: list[ModuleEvidence]) -> None:
    """Keep ``value`` for ``(run, mtime, window)``: an older state of the same run is dropped
    (a live probe changes its mtime every step) and at most ``KEEP`` sets are kept, so the
    server's memory does not grow with visits."""
    store = _evidence_store()
    for old in [k for k in store if k[0] == key[0] and k[1] != key[1]]:
        del store[old]
    store[key] = value
    while len(store) > KEEP:
        del store[next(iter(store))]


@shown_if_damaged
def evidence(run: Path, window: tuple[int, ...] | None = None) -> list[ModuleEvidence]:
    """Evidence on every module of ``run`` over all its steps (or the ``window``): from memory,
    else from the run's evidence file, else computed (with a progress bar) and kept in both."""
    store = _evidence_store()
    key = (str(run), _mtime(run), window)
    if key not in store:
        what = "Analysing modules" + ("" if window is None else
                                      f" over steps {window[0]}–{window[-1]}")
        bar = st.progress(0.0, text=f"{what}…")

        def on_module(done: int, total: int, name: str) -> None:
            bar.progress(done / total, text=f"{what}: {done}/{total} · {name}")

        with Run(run) as r:
            whole = cached_run_evidence(r, on_module=on_module, steps=window)
        _remember(key, whole)
        bar.empty()
        return whole
    return store[key]


PREFETCH_ASKED_MAX = 256  # prefetch jobs remembered, so each is run once; then forgotten
PREFETCH_UNITS = 24  # the nearest units made ahead: every layer of Medium, not all its modules
PREFETCH_NICE = 19  # the worker thread's niceness, against this server's visitors' scripts
PREFETCH_QUIET_S = 4.0  # the worker's wait after a script starts or a page is sent: a fresh
# browser draws the demo's Dendrograms page for up to 3.5 s after its script ends, on 2 cores

_last_visit = [0.0]  # time.monotonic() of the newest script start or Dendrograms page end


def note_visit() -> None:
    """A visitor's script runs (or a page was just sent): the background worker holds off for
    ``PREFETCH_QUIET_S``. Niceness alone does not keep it out of the way: Linux schedules each
    session (autogroup) as one, so a nice-19 thread in the server still took its full share
    from a browser in another session, and the background trees slowed the demo's cold
    Dendrograms page by 0.6 s (docs/performance.md)."""
    _last_visit[0] = time.monotonic()


def _wait_quiet() -> None:
    """Until no visitor's script has started, and no page was sent, for ``PREFETCH_QUIET_S``:
    the browser draws the page just sent on the same cores."""
    while (wait := _last_visit[0] + PREFETCH_QUIET_S - time.monotonic()) > 0:
        time.sleep(wait)


@st.cache_resource(show_spinner=False)
def _prefetcher() -> tuple[queue.Queue, set]:
    """The server's one background worker, fed by a queue (a second page's prefetch waits
    behind the first, so it never takes more than one core), and the prefetch jobs it was
    given. A daemon thread: what it makes is only cache, so stopping the server never waits
    for it."""
    jobs: queue.Queue = queue.Queue()
    threading.Thread(target=_work, args=(jobs,), name="gradlens-prefetch", daemon=True).start()
    return jobs, set()


def _work(jobs: queue.Queue) -> None:
    """Run the queue's ``(fn, args, future)`` jobs in order, for ever, at the lowest CPU
    priority (Linux sets it per thread), so that the worker yields to every visitor's script
    (a job waits for a quiet moment itself: ``_wait_quiet``)."""
    if sys.platform.startswith("linux"):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PREFETCH_NICE)
    while True:
        fn, args, future = jobs.get()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - kept on the future, the worker goes on
            future.set_exception(exc)


def _submit(fn, *args) -> Future:
    """``fn(*args)`` on the background worker, after every job given before it."""
    future: Future = Future()
    _prefetcher()[0].put((fn, args, future))
    return future


def prefetch_trees(run: Path, units: list[str], current: str, task: str, method: str,
                   kind: str, n_groups: int) -> Future | None:
    """Compute, in the background, what the Dendrograms page shows for the ``PREFETCH_UNITS``
    units of ``units`` nearest to ``current`` in the list (nearest first): the tree, both
    groupings and the Mantel test, with the page's arguments, so that picking one of them reads
    the cache (units already there cost a lookup). Streamlit's cache lets one caller compute a
    value while others wait, so a unit picked while it is being prefetched is computed once.
    Only where the run's evidence is in memory (a tree is then numpy on that evidence, never a
    read of the sketches). ``None`` when there is nothing to do, the same job was given before,
    or ``$GRADLENS_PREFETCH`` is ``0``."""
    if not made_ahead():
        return None
    run_s, mtime = str(run), _mtime(run)
    if (run_s, mtime, None) not in _evidence_store():
        return None
    _, asked = _prefetcher()
    job = (run_s, mtime, tuple(units), current, task, method, kind, n_groups)
    note_visit()  # the page is being sent: the browser draws it first
    if job in asked:
        return None
    if len(asked) >= PREFETCH_ASKED_MAX:
        asked.clear()
    asked.add(job)
    at = units.index(current) if current in units else 0
    order = sorted((i for i, u in enumerate(units) if u != current), key=lambda i: (abs(i - at), i))
    return _submit(_warm_trees, run_s, mtime, [units[i] for i in order[:PREFETCH_UNITS]],
                   task, method, kind, n_groups)


def _warm_trees(run: str, mtime: float, units: list[str], task: str, method: str, kind: str,
                n_groups: int) -> int:
    """The prefetch worker: each unit's cached tree, groupings and Mantel test, called exactly
    as the page calls them (the cache keys on the arguments as given). Stops when the run has
    moved on (a live probe wrote a step) or its evidence left memory; a unit that fails is left
    for the page, which shows the error when the unit is picked. Returns the units warmed."""
    warmed = 0
    for unit in units:
        _wait_quiet()
        try:
            if _mtime(run) != mtime or (run, mtime, None) not in _evidence_store():
                break
            _warm_unit(run, mtime, unit, task, method, kind, n_groups)
            warmed += 1
        except OSError:
            break
        except Exception:  # noqa: BLE001 - the page reports it if the unit is picked
            continue
    return warmed


def _warm_unit(run: str, mtime: float, unit: str, task: str, method: str, kind: str,
               n_groups: int) -> Clustering:
    """One unit's cached tree, both groupings and Mantel test, called exactly as the
    Dendrograms page calls them; returns the tree."""
    tree = _clustering(run, mtime, unit, task, method, kind, None)
    _grouping(run, mtime, unit, task, None, kind)
    _grouping(run, mtime, unit, task, n_groups, kind)
    _typology(run, mtime, unit, task, kind, None)
    return tree


def warm_first_visit(paths: list[Path]) -> None:
    """What a fresh server's first visitor would wait for, done before one comes (``gradlens
    app`` calls it once its server runs): the Runs table's summaries, and for the newest run
    (``paths[0]``) its evidence where the run keeps it and the Dendrograms page as it opens,
    the strongest layer's tree, groupings, Mantel test and figure. It computes no evidence, so a
    run analysed before is ready and a new one is analysed on its first visit, with its
    progress bar. What it makes is only cache: a run that cannot be read is left for the
    page that shows why."""
    from gradlens.plots import dendrogram_figure

    for path in paths:
        summary(path)
    if not paths:
        return
    run = paths[0]
    try:
        info, whole = meta(run), _kept_evidence(run)
        if not whole or not info.tasks or not info.layers:
            return
        with Run(run) as r:
            layer = _strongest(whole, units(r, "layer")) or info.layers[0]
        # the page's opening view: the first task and linkage, the similarity for this many
        # languages, 3 groups (pages/dendrograms.py; a test visits it after this)
        run_s, mtime, task = str(run), _mtime(run), info.tasks[0]
        kind = default_similarity(len(info.languages), info.content_paired)
        tree = _warm_unit(run_s, mtime, layer, task, METHODS[0], kind,
                          min(3, len(info.languages)))
        dendrogram_figure(tree, layer)  # Plotly's validators load with a process's first figure
    except (OSError, ValueError):  # RunError, NotEnoughData: the page says why
        return
