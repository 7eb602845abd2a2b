"""Everything the Streamlit pages share: session state, caching, the runs they read, downloads.

Caching lives here alone: ``st.cache_data`` keyed on the run's path and modification time, so a
run that grows (SWMR) is read again; the whole-run evidence, which takes a while, is computed
once per (run, mtime) with a progress bar and kept in one ``st.cache_resource`` store. Pages call
these functions and draw; they hold no math.
"""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import pandas as pd
import streamlit as st

from gradlens.analysis.clustering import Clustering, cluster_similarity
from gradlens.analysis.evidence import (ModuleEvidence, cached_run_evidence, saved_run_evidence,
                                        strongest_unit as _strongest, unit_evidence,
                                        unit_similarity)
from gradlens.analysis.grouping import LanguageGrouping
from gradlens.analysis.views import units
from gradlens.paths import GRADS_FILE, runs_dir
from gradlens.store import Run, RunError


APP = Path(__file__).resolve().parent.parent / "app.py"


def init_state() -> None:
    """Session state with its defaults, in one place (app.py calls it on every run)."""
    st.session_state["app_ran"] = True
    st.session_state.setdefault("run", None)
    st.session_state.setdefault("plan_work", {})  # run path -> the plan being edited
    st.session_state.setdefault("plan_base", {})  # run path -> the proposal it started from


def run_paths() -> list[Path]:
    """Run directories (those holding a grads.h5), newest first."""
    root = runs_dir()
    if not root.is_dir():
        return []
    found = [p.parent for p in root.glob(f"*/{GRADS_FILE}")]
    return sorted(found, key=lambda p: (p / GRADS_FILE).stat().st_mtime, reverse=True)


def _mtime(run: Path) -> float:
    return (Path(run) / GRADS_FILE).stat().st_mtime


def shown_if_damaged(fn):
    """Pages call ``fn`` to read a run: damage that opening it does not reveal (a data chunk
    failing its checksum, found mid-analysis) ends the page with the named error, not a
    traceback."""
    import functools

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


def timing(row: dict, done: int, planned: int, now: float | None = None) -> str:
    """Elapsed time since a run was created and, once a step is done, the time left at that
    pace: ``"3 min 5 s elapsed · about 2 min left"``."""
    import datetime as dt
    import time

    try:
        start = dt.datetime.fromisoformat(row["created_at"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return "elapsed time unknown"
    elapsed = max(0.0, (now or time.time()) - start)

    def span(seconds: float) -> str:
        m, s = divmod(int(round(seconds)), 60)
        return f"{m} min {s} s" if m else f"{s} s"

    if done <= 0:
        return f"{span(elapsed)} elapsed"
    return f"{span(elapsed)} elapsed · about {span(elapsed / done * max(0, planned - done))} left"


def summary(run: Path) -> dict:
    return _summary(str(run), _mtime(run))


@st.cache_data(show_spinner=False)
def _meta(run: str, mtime: float) -> dict:
    with Run(run) as r:
        return {"languages": r.languages, "tasks": r.tasks, "modules": r.modules.name,
                "n_params": dict(zip(r.modules.name, map(int, r.modules.n_params))),
                "layers": list(units(r, "layer")), "blocks": list(units(r, "block")),
                "steps": len(r.done_steps), "model": r.model,
                "corpus": str(r.probe_config.get("corpus", "spoken-numbers"))}


def meta(run: Path) -> dict:
    """Languages, tasks, units and steps of a run; raises RunError for a broken one."""
    return _meta(str(run), _mtime(run))


@st.cache_data(show_spinner=False)
def _clustering(run: str, mtime: float, key: str, task: str, method: str,
                kind: str) -> Clustering:
    whole = _evidence_store().get((run, mtime)) or []
    with Run(run) as r:
        sim, replicates = unit_similarity(r, whole, key, task, kind)
        return cluster_similarity(sim, r.languages, method, replicates)


@shown_if_damaged
def clustering(run: Path, key: str, task: str, method: str, kind: str = "mean") -> Clustering:
    """The tree of ``key``'s languages from their ``kind`` of similarity, with each clade's
    bootstrap support (the whole-run evidence is made first, with its progress bar)."""
    evidence(run)
    return _clustering(str(run), _mtime(run), key, task, method, kind)


@shown_if_damaged
def strongest_unit(run: Path, granularity: str) -> str | None:
    """The unit of ``granularity`` that carries the surest language signal (the default view)."""
    whole = evidence(run)
    with Run(run) as r:
        return _strongest(whole, units(r, granularity))


@st.cache_data(show_spinner=False)
def _grouping(run: str, mtime: float, key: str, task: str, n_groups: int | None,
              kind: str) -> LanguageGrouping:
    c = _clustering(run, mtime, key, task, "average", kind)
    return LanguageGrouping(n_groups).fit(c.similarity, c.languages)


@shown_if_damaged
def grouping(run: Path, key: str, task: str, n_groups: int | None,
             kind: str = "mean") -> LanguageGrouping:
    """GradSim grouping of ``key``'s languages (``n_groups=None``: the best number)."""
    return _grouping(str(run), _mtime(run), key, task, n_groups, kind)


@st.cache_data(show_spinner=False)
def _typology(run: str, mtime: float, key: str, task: str, kind: str):
    from gradlens.analysis.typology import agreement_of

    c = _clustering(run, mtime, key, task, "average", kind)
    return agreement_of(c.similarity, c.languages)


@shown_if_damaged
def typology(run: Path, key: str, task: str, kind: str = "mean"):
    """Mantel agreement of ``key``'s gradient distances with URIEL, or why it cannot be had."""
    return _typology(str(run), _mtime(run), key, task, kind)


@st.cache_data(show_spinner=False)
def _unit_evidence(run: str, mtime: float, key: str) -> ModuleEvidence:
    with Run(run) as r:
        return unit_evidence(r, key)


@shown_if_damaged
def module_evidence(run: Path, key: str) -> ModuleEvidence:
    """All the evidence on one module, layer or block (a module's comes from the whole-run
    evidence when that is already at hand, in memory or in the run)."""
    whole = _evidence_store().get((str(run), _mtime(run)))
    if whole is None:
        with Run(run) as r:
            whole = saved_run_evidence(r)
        if whole is not None:
            _remember((str(run), _mtime(run)), whole)
    found = next((e for e in whole or [] if e.module == key), None)
    return found if found is not None else _unit_evidence(str(run), _mtime(run), key)


KEEP_RUNS = 4  # runs whose whole-run evidence the server keeps in memory


@st.cache_resource(show_spinner=False)
def _evidence_store() -> dict:
    return {}


def _remember(key: tuple[str, float], value: list[ModuleEvidence]) -> None:
    """Keep ``value`` for ``(run, mtime)``: an older state of the same run is dropped (a live
    probe changes its mtime every step) and at most ``KEEP_RUNS`` runs are kept, so the
    server's memory does not grow with visits."""
    store = _evidence_store()
    for old in [k for k in store if k[0] == key[0] and k != key]:
        del store[old]
    store[key] = value
    while len(store) > KEEP_RUNS:
        del store[next(iter(store))]


@shown_if_damaged
def evidence(run: Path) -> list[ModuleEvidence]:
    """Evidence on every module of ``run``: from memory, else from the run's evidence file, else
    computed (with a progress bar) and kept in both."""
    store = _evidence_store()
    key = (str(run), _mtime(run))
    if key not in store:
        bar = st.progress(0.0, text="Analysing modules…")

        def on_module(done: int, total: int, name: str) -> None:
            bar.progress(done / total, text=f"Analysing modules: {done}/{total} · {name}")

        with Run(run) as r:
            whole = cached_run_evidence(r, on_module=on_module)
        _remember(key, whole)
        bar.empty()
        return whole
    return store[key]


def _through_app() -> None:
    """Make sure this page runs inside app.py's navigation.

    Streamlit runs a ``pages/`` script on its own (its old multipage mode) when a fresh server's
    first request is a link straight to that page: app.py, with its navigation and run picker,
    has not yet called ``st.navigation``. Calling it here switches the server to app.py's
    navigation for good; the rerun then goes through app.py to this same page.
    """
    if st.session_state.get("app_ran"):
        return
    pages_dir = APP.parent / "pages"
    page = next(Path(f.filename).resolve() for f in inspect.stack()
                if Path(f.filename).resolve().parent == pages_dir)
    st.navigation([st.Page(APP, title="Runs", default=True), st.Page(page)], position="hidden")
    st.switch_page(st.Page(page))


def current_run() -> Path | None:
    """The run picked in the sidebar, or None (with a message) when there is none usable."""
    _through_app()
    run = st.session_state.get("run")
    if run is None:
        st.info(f"No run picked. Runs live in `{runs_dir()}`; make the demo run with "
                "`python -m gradlens demo`, or a probe run with `python -m gradlens probe`.")
        return None
    try:
        info = meta(Path(run))
    except (RunError, OSError) as exc:
        st.error(f"This run cannot be read: {exc}")
        return None
    if info["steps"] == 0:
        st.warning("This run has no completed step yet; its pages fill in as the probe writes.")
        return None
    return Path(run)


def needs_steps(run: Path, at_least: int, what: str) -> bool:
    """Show a warning and return False when ``run`` has fewer completed steps than ``what`` needs."""
    steps = meta(run)["steps"]
    if steps < at_least:
        st.warning(f"{what} needs at least {at_least} completed steps; this run has {steps}.")
        return False
    return True


# -- downloads --------------------------------------------------------------------------------
def png_available() -> bool:
    """PNG export renders through kaleido in the system Chromium."""
    return any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome"))


def downloads(fig, name: str, table: pd.DataFrame | None = None, key: str = "") -> None:
    """PNG, HTML (and CSV of ``table``) download buttons for a figure; files made on click."""
    key = key or name
    row = st.container(horizontal=True)
    if png_available():
        row.download_button("PNG", data=lambda: fig.to_image(format="png", scale=2),
                                file_name=f"{name}.png", mime="image/png", key=f"{key}_png",
                                icon=":material/image:", on_click="ignore")
    else:
        row.caption("PNG needs Chromium (`apt-get install chromium`)")
    row.download_button("HTML", data=lambda: fig.to_html(include_plotlyjs=True),
                            file_name=f"{name}.html", mime="text/html", key=f"{key}_html",
                            icon=":material/code:", on_click="ignore")
    if table is not None:
        row.download_button("CSV", data=table.to_csv().encode("utf-8"),
                                file_name=f"{name}.csv", mime="text/csv", key=f"{key}_csv",
                                icon=":material/table:", on_click="ignore")


# -- training jobs ------------------------------------------------------------------------------
def jobs() -> list:
    """Every training job, states brought up to date (the registry is read on every call: jobs
    change under the app). A broken registry is shown, not raised."""
    from gradlens.jobs import JobError, refresh

    try:
        return refresh()
    except JobError as exc:
        st.error(str(exc))
        return []


def job(job_id: str):
    """One job, its state brought up to date (None if it is gone or the registry is broken)."""
    from gradlens.jobs import JobError, Registry, refresh_job

    try:
        registry = Registry()
        return refresh_job(registry, registry.get(job_id))
    except JobError:
        return None


def job_records(job) -> list[dict]:
    from gradlens.metrics import METRICS, read_metrics

    return read_metrics(job.dir() / METRICS)
