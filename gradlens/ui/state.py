"""The app's session state, the runs it can show, and the run picked in the sidebar."""

from __future__ import annotations

import inspect
from pathlib import Path

import streamlit as st

from gradlens.paths import GRADS_FILE, runs_dir
from gradlens.store import RunError
from gradlens.ui.cache import meta, note_visit

APP = Path(__file__).resolve().parents[2] / "app.py"


def init_state() -> None:
    """Session state with its defaults, in one place (app.py calls it on every run, so it also
    tells the background worker that a visitor is being served)."""
    note_visit()
    st.session_state["app_ran"] = True
    st.session_state.setdefault("run", None)
    st.session_state.setdefault("plan_work", {})  # run path -> the plan being edited
    st.session_state.setdefault("plan_base", {})  # run path -> the proposal it started from
    st.session_state.setdefault("budget", DEFAULT_BUDGET)  # shared by Divergence and Sharing plan


DEFAULT_BUDGET = 0.1


def budget_slider(key: str) -> float:
    """The parameter budget (a fraction of the model), one value for every page that asks:
    moving it on Divergence moves it on Sharing plan too. ``key`` is the page's widget."""
    st.session_state[key] = st.session_state.get("budget", DEFAULT_BUDGET)

    def keep() -> None:
        st.session_state["budget"] = st.session_state[key]

    return st.slider("Parameter budget (fraction of the model)", 0.0, 0.5, step=0.01, key=key,
                     on_change=keep, help="shared with the other page that spends it")


def run_paths() -> list[Path]:
    """Run directories (those holding a grads.h5), newest first."""
    root = runs_dir()
    if not root.is_dir():
        return []
    found = [p.parent for p in root.glob(f"*/{GRADS_FILE}")]
    return sorted(found, key=lambda p: (p / GRADS_FILE).stat().st_mtime, reverse=True)


def plan_agreement(run: Path) -> dict | None:
    """What ``gradlens plan RUN --against ...`` saved of the plan's agreement with plans from
    other probes of the model; None when nothing was saved or it cannot be read."""
    import json

    from gradlens.paths import AGREEMENT_FILE

    try:
        found = json.loads((run / AGREEMENT_FILE).read_text(encoding="utf-8"))
        return found if {"runs", "splits", "mean_jaccard", "mean_ari"} <= found.keys() else None
    except (OSError, ValueError, AttributeError):
        return None


def models_used() -> list[str]:
    """The models the readable runs probed (a trained demo model's directory among them),
    newest run first, each once."""
    found = []
    for path in run_paths():
        try:
            found.append(meta(path).model)
        except RunError:
            continue
    return list(dict.fromkeys(found))


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
    if info.steps == 0:
        st.warning("This run has no completed step yet; its pages fill in as the probe writes.")
        return None
    return Path(run)


def needs_steps(run: Path, at_least: int, what: str) -> bool:
    """Show a warning and return False when ``run`` has fewer completed steps than ``what`` needs."""
    steps = meta(run).steps
    if steps < at_least:
        st.warning(f"{what} needs at least {at_least} completed steps; this run has {steps}.")
        return False
    return True
