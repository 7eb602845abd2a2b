"""Dendrograms: which languages' gradients agree, per module, layer or block."""

import streamlit as st

from gradlens import ui
from gradlens.analysis.clustering import METHODS
from gradlens.plots import dendrogram_figure, similarity_figure

st.header("Language dendrograms")
run = ui.current_run()
if run is not None:
    meta = ui.meta(run)
    if meta["steps"] == 0:
        st.warning("This run has no completed step yet.")
        st.stop()
    c1, c2, c3, c4 = st.columns(4)
    granularity = c1.radio("Granularity", ["layer", "module", "block"], key="dend_granularity",
                           horizontal=True)
    options = {"layer": meta["layers"], "module": meta["modules"], "block": meta["blocks"]}[granularity]
    key = c2.selectbox("Unit", options, key=f"dend_unit_{granularity}")
    task = c3.selectbox("Task", meta["tasks"], key="dend_task")
    method = c4.selectbox("Linkage", METHODS, key="dend_method")
    clustering = ui.clustering(run, key, task, method)
    st.plotly_chart(dendrogram_figure(clustering, f"{key} · {task}"), key="dend_figure")
    n_groups = st.slider("Groups", 1, len(meta["languages"]), min(3, len(meta["languages"])),
                         key="dend_groups")
    st.write("Partition: " + " · ".join("{" + ", ".join(g) + "}" for g in clustering.partition(n_groups)))
    st.caption(f"Cophenetic correlation {clustering.cophenetic:.2f} · {meta['steps']} steps")
    st.plotly_chart(similarity_figure(clustering), key="dend_similarity")
