"""Compare two runs side by side: the trees of one unit, the divergence rankings, the agreement
with typology, and how their proposed plans differ (e.g. two corpora, two models, or one model
probed at two checkpoints of training)."""

import pandas as pd
import streamlit as st

from gradlens import ui
from gradlens.analysis.allocation import propose_plan
from gradlens.analysis.evidence import SIMILARITIES, rank_modules
from gradlens.plan import diff, format_groups
from gradlens.plots import dendrogram_figure, ranking_figure

st.header("Compare runs")
run = ui.current_run()
if run is None:
    st.stop()
others = [p for p in ui.run_paths() if p != run]
if not others:
    st.info("Only one run is here; probe another (the Runs page) to compare them.")
    st.stop()
other = st.selectbox("Compare the sidebar's run with", others, format_func=lambda p: p.name,
                     key="cmp_other")
try:
    metas = {r: ui.meta(r) for r in (run, other)}
except ui.RunError as exc:
    st.error(f"That run cannot be read: {exc}")
    st.stop()
if metas[other].steps < 2:
    st.warning(f"{other.name} has {metas[other].steps} completed step(s); comparing needs 2.")
    st.stop()
common = [u for u in metas[run].layers if u in metas[other].layers]
if not common:
    st.info("The two runs share no layer (different models?): only their plans compare.")
c1, c2, c3 = st.columns(3)
unit = c1.selectbox("Unit (in both runs)", common, key="cmp_unit") if common else None
task = c2.selectbox("Task", [t for t in metas[run].tasks if t in metas[other].tasks],
                    key="cmp_task")
measure = c3.radio("Similarity", list(SIMILARITIES), format_func=SIMILARITIES.get,
                   key="cmp_kind", horizontal=True, index=list(SIMILARITIES).index("paired"))

cols = st.columns(2)
for col, r in zip(cols, (run, other)):
    with col:
        st.subheader(r.name)
        st.caption(f"{metas[r].model} · {metas[r].corpus} · {metas[r].steps} steps · "
                   f"{' '.join(metas[r].languages)}")
        if unit is not None:
            fig = dendrogram_figure(ui.clustering(r, unit, task, "average", measure),
                                    f"{unit} · {task} · {measure}")
            st.plotly_chart(fig, key=f"cmp_tree_{r.name}")
            agreement = ui.typology(r, unit, task, measure)
            st.caption("URIEL agreement: " + (agreement.unavailable or " · ".join(
                f"{kind} Mantel r {m.r:.2f} (p {m.p:.3f})" for kind, m in agreement.tests.items())))
        ranked = rank_modules(ui.evidence(r), "excess_divergence")[:12]
        st.plotly_chart(ranking_figure(
            [e.module for e in ranked], [e.excess for e in ranked],
            "Excess divergence, top modules (95 % interval)", "excess divergence", line=0.0,
            errors=[(e.excess - e.divergence.excess_ci[0], e.divergence.excess_ci[1] - e.excess)
                    for e in ranked]), key=f"cmp_rank_{r.name}")

st.subheader("Their proposed plans")
budget = st.slider("Parameter budget (fraction of the model)", 0.0, 0.5, 0.1, 0.01, key="cmp_budget")
plans = {r: propose_plan(ui.evidence(r), budget, sum(metas[r].n_params.values()),
                         metas[r].model, metas[r].languages, str(r)) for r in (run, other)}
changes = diff(plans[run], plans[other])
if not changes:
    st.caption(f"At {budget:.0%} both runs propose the same plan "
               f"({len(plans[run].modules)} module(s) split).")
else:
    st.dataframe(pd.DataFrame([{
        "module": c.module, run.name: format_groups(c.before) if c.before else "shared",
        other.name: format_groups(c.after) if c.after else "shared"} for c in changes]),
        hide_index=True, width="stretch", key="cmp_plan_diff")
    st.caption(f"Modules split differently at {budget:.0%}: {len(changes)}. Runs with other "
               "languages differ in every split module's groups.")
