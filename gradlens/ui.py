"""Everything the Streamlit pages share: session state, caching, the runs they read.

Caching lives here alone: ``st.cache_data`` keyed on the run's path and modification time, so a
run that grows (SWMR) is read again. Pages call these functions and draw; they hold no math.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from gradlens.analysis.clustering import Clustering, cluster_languages
from gradlens.analysis.views import unit_mean, units
from gradlens.store import GRADS_FILE, Run, RunError, runs_dir


def init_state() -> None:
    """Session state with its defaults, in one place."""
    st.session_state.setdefault("run", None)


def run_paths() -> list[Path]:
    """Run directories (those holding a grads.h5), newest first."""
    root = runs_dir()
    if not root.is_dir():
        return []
    found = [p.parent for p in root.glob(f"*/{GRADS_FILE}")]
    return sorted(found, key=lambda p: (p / GRADS_FILE).stat().st_mtime, reverse=True)


def _mtime(run: Path) -> float:
    return (Path(run) / GRADS_FILE).stat().st_mtime


@st.cache_data(show_spinner=False)
def _summary(run: str, mtime: float) -> dict:
    try:
        with Run(run) as r:
            return {"run": Path(run).name, "model": r.model, "languages": " ".join(r.languages),
                    "tasks": " ".join(r.tasks), "modules": len(r.modules),
                    "steps done": f"{len(r.done_steps)} / {r.planned_steps}",
                    "size (MB)": round(r.size_bytes() / 1e6, 1), "error": ""}
    except RunError as exc:
        return {"run": Path(run).name, "error": str(exc)}


def summary(run: Path) -> dict:
    return _summary(str(run), _mtime(run))


@st.cache_data(show_spinner=False)
def _meta(run: str, mtime: float) -> dict:
    with Run(run) as r:
        return {"languages": r.languages, "tasks": r.tasks, "modules": r.modules.name,
                "layers": list(units(r, "layer")), "blocks": list(units(r, "block")),
                "steps": len(r.done_steps), "model": r.model}


def meta(run: Path) -> dict:
    """Languages, tasks, units and steps of a run; raises RunError for a broken one."""
    return _meta(str(run), _mtime(run))


@st.cache_data(show_spinner=False)
def _clustering(run: str, mtime: float, key: str, task: str, method: str) -> Clustering:
    with Run(run) as r:
        grads = unit_mean(r, key)[:, r.tasks.index(task)]
        return cluster_languages(grads, r.languages, method)


def clustering(run: Path, key: str, task: str, method: str) -> Clustering:
    return _clustering(str(run), _mtime(run), key, task, method)


def current_run() -> Path | None:
    """The run picked in the sidebar, or None (with a message) when there is none usable."""
    run = st.session_state.get("run")
    if run is None:
        st.info(f"No run picked. Runs live in `{runs_dir()}`; make the demo run with "
                "`python -m gradlens demo`, or a probe run with `python -m gradlens probe`.")
        return None
    try:
        meta(Path(run))
    except (RunError, OSError) as exc:
        st.error(f"This run cannot be read: {exc}")
        return None
    return Path(run)
