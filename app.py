"""gradlens: the Streamlit app. Navigation, the run picker, and the home view (the runs).

    python -m gradlens app        # or: streamlit run app.py --server.address 127.0.0.1
"""

from pathlib import Path

import pandas as pd
import streamlit as st

from gradlens import ui
from gradlens.languages import EMBEDDED_CORPORA, LANGUAGES
from gradlens.launch import start_probe, starting_probes
from gradlens.store import being_written

st.set_page_config(page_title="gradlens", layout="wide")
ui.init_state()


@st.fragment(run_every=2.0)
def live_runs() -> None:
    """Runs being written, with their progress; refreshed every 2 s while the page is open."""
    live = [p for p in ui.run_paths() if being_written(p)]
    starting = starting_probes()
    names = sorted(p.name for p in live) + sorted(p.path.name for p in starting)
    if st.session_state.get("home_live", names) != names:  # a run started or finished:
        st.session_state["home_live"] = names             # the table must show it
        st.rerun(scope="app")
    st.session_state["home_live"] = names
    if not live and not starting:
        return
    st.subheader("In progress")
    for path in live:
        row = ui.summary(path)
        done, planned = row.get("done", 0), max(row.get("planned", 1), 1)
        st.progress(min(done / planned, 1.0),
                    text=f"{path.name}: step {done} of {planned} · {ui.timing(row, done, planned)}")
    for probe in starting:
        if probe.running and probe.progress:
            done, total = probe.progress
            st.progress(min(done / max(total, 1), 1.0),
                        text=f"{probe.path.name}: training the model it will probe, step {done} "
                             f"of {total}")
        elif probe.running:
            st.progress(0.0, text=f"{probe.path.name}: starting (loading the model)")
        else:
            st.error(f"{probe.path.name} stopped before its first step. The end of its log:\n\n"
                     f"```\n{probe.log_tail}\n```")


def new_probe_form() -> None:
    with st.expander("Start a new probe run"):
        with st.form("probe_form"):
            name = st.text_input("Run name", key="probe_name", placeholder="e.g. romance-vs-slavic")
            models = list(dict.fromkeys(["tiny", "medium-random", *ui.models_used()]))
            model = st.selectbox("Model", models, key="probe_model",
                                 format_func=lambda m: m if m in ("tiny", "medium-random")
                                 else f"{Path(m).name} (probed by a run here)",
                                 help="tiny runs on CPU in minutes; medium-random is the Medium "
                                      "architecture with random weights (a GPU is advisable); "
                                      "below them, the models runs here probed, the demo's "
                                      "trained model among them")
            corpus = st.selectbox("Corpus", list(EMBEDDED_CORPORA), key="probe_corpus",
                                  format_func=EMBEDDED_CORPORA.get)
            languages = st.multiselect("Languages", list(LANGUAGES), default=["spa", "ita", "deu", "rus"],
                                       key="probe_languages",
                                       format_func=lambda c: f"{c} · {LANGUAGES[c].name}")
            c1, c2, c3, c4 = st.columns(4)
            steps = c1.number_input("Steps", 1, 10_000, 8, key="probe_steps")
            batch = c2.number_input("Batch per language", 1, 64, 4, key="probe_batch")
            k = c3.selectbox("Sketch size k", [256, 512, 1024, 2048, 4096], index=1, key="probe_k")
            between = c4.number_input(
                "Training steps between probe steps", 0, 10_000, 0, key="probe_between",
                help="0 probes one parameter state, so the steps are exchangeable, as the "
                     "divergence test assumes: use 0 to decide what to split. More follows the "
                     "model as it trains (Compare, over its own training), but the test's "
                     "p-values then lose their guarantee (docs/results.md, section 1b)")
            if st.form_submit_button("Start probe", type="primary"):
                try:
                    out = start_probe(name.strip(), languages, int(steps), model, int(batch), int(k),
                                      int(between), corpus)
                    st.success(f"Started: {out}. It runs on its own; closing this tab does not "
                               "stop it.")
                except ValueError as exc:
                    st.error(str(exc))


def home() -> None:
    st.title("gradlens")
    st.caption("Which parts of a multilingual SeamlessM4T model should your languages share? "
               "Training gradients say where they fight.")
    live_runs()
    paths = ui.run_paths()
    if not paths and any(p.running for p in starting_probes()):
        st.info("No run is finished yet: the work above appears here once its probe writes its "
                "first step.")
    elif not paths:
        st.info(f"No runs in `{ui.runs_dir()}` yet. Make the demo run (tiny SeamlessM4T trained "
                "on the spoken-numbers corpus, then probed: about 6 minutes on 2 CPU cores) with "
                "`python -m gradlens demo`, or start a probe below.")
    else:
        rows = [ui.summary(p) for p in paths]
        st.subheader("Runs")
        table = pd.DataFrame(rows).drop(columns=["done", "planned", "created_at"], errors="ignore")
        st.dataframe(table, hide_index=True, width="stretch", key="home_runs")
        for row in rows:
            if row.get("error"):
                st.warning(f"{row['run']}: {row['error']}")
    new_probe_form()


paths = ui.run_paths()
names = [p.name for p in paths]
# the picked run lives in the URL (?run=NAME), so a reload or a shared link opens the same run
wanted = st.query_params.get("run")
if wanted in names and st.session_state.get("app_run") not in names:
    st.session_state["app_run"] = wanted
with st.sidebar:
    picked = st.selectbox("Run", names, index=0 if names else None, key="app_run",
                          placeholder="no runs yet")
    st.session_state["run"] = str(ui.runs_dir() / picked) if picked else None
if picked:
    st.query_params["run"] = picked

nav = st.navigation([
    st.Page(home, title="Runs", icon=":material/folder_open:", default=True),
    st.Page("pages/dendrograms.py", title="Dendrograms", icon=":material/account_tree:"),
    st.Page("pages/divergence.py", title="Divergence", icon=":material/call_split:"),
    st.Page("pages/alignment.py", title="Subspace alignment", icon=":material/stacked_line_chart:"),
    st.Page("pages/conflicts.py", title="Conflicts", icon=":material/compare_arrows:"),
    st.Page("pages/sharing_plan.py", title="Sharing plan", icon=":material/edit_note:"),
    st.Page("pages/training.py", title="Training", icon=":material/model_training:"),
    st.Page("pages/experiments.py", title="Experiments", icon=":material/science:"),
    st.Page("pages/validation.py", title="Validation", icon=":material/fact_check:"),
    st.Page("pages/compare.py", title="Compare runs", icon=":material/compare:"),
])
nav.run()
