"""gradlens: the Streamlit app. Navigation, the run picker, and the home view (the runs).

    python -m gradlens app        # or: streamlit run app.py --server.address 127.0.0.1
"""

import pandas as pd
import streamlit as st

from gradlens import ui

st.set_page_config(page_title="gradlens", layout="wide")
ui.init_state()


def home() -> None:
    st.title("gradlens")
    st.caption("Which parts of a multilingual SeamlessM4T model should your languages share? "
               "Training gradients say where they fight.")
    paths = ui.run_paths()
    if not paths:
        st.info(f"No runs in `{ui.runs_dir()}` yet. Make the demo run (tiny SeamlessM4T on the "
                "spoken-numbers corpus, about 2 minutes on CPU) with `python -m gradlens demo`.")
        return
    rows = [ui.summary(p) for p in paths]
    st.subheader("Runs")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="home_runs")
    for row in rows:
        if row.get("error"):
            st.warning(f"{row['run']}: {row['error']}")


paths = ui.run_paths()
names = [p.name for p in paths]
with st.sidebar:
    picked = st.selectbox("Run", names, index=0 if names else None, key="app_run",
                          placeholder="no runs yet")
    st.session_state["run"] = str(ui.runs_dir() / picked) if picked else None

nav = st.navigation([
    st.Page(home, title="Runs", icon=":material/folder_open:", default=True),
    st.Page("pages/dendrograms.py", title="Dendrograms", icon=":material/account_tree:"),
])
nav.run()
