"""Divergence: where languages want different updates beyond their own noise, and where a
parameter budget would be spent on language- or cluster-specific copies."""

import numpy as np
import pandas as pd
import streamlit as st

from gradlens import ui
from gradlens.analysis.allocation import allocate, extra_cost
from gradlens.analysis.evidence import rank_modules
from gradlens.plots import budget_figure, heatmap_figure, ranking_figure
from gradlens.report import evidence_table, matrix_frame

st.header("Self and cross divergence")
run = ui.current_run()
if run is None or not ui.needs_steps(run, 2, "Divergence (odd against even steps)"):
    st.stop()
meta = ui.meta(run)
langs = meta["languages"]
evidence = ui.evidence(run)

self_div = np.array([e.divergence.self_div for e in evidence])          # [M, L]
modules = [e.module for e in evidence]
fig = heatmap_figure(self_div, langs, modules, "Self divergence per module and language "
                     "(1 − cos of odd- and even-step mean gradients)", "self", 0, None)
st.plotly_chart(fig, key="div_self")
ui.downloads(fig, "self_divergence", pd.DataFrame(self_div, index=modules, columns=langs),
             key="div_self_dl")

@st.fragment
def cross_section() -> None:
    """One module's language x language divergence; reruns alone when the module changes."""
    module = st.selectbox("Module", modules, key="div_module")
    chosen = next(e for e in evidence if e.module == module)
    cross = heatmap_figure(chosen.divergence.cross, langs, langs,
                           f"Cross divergence · {module} (diagonal: self)", "cross", 0, None)
    st.plotly_chart(cross, key="div_cross")
    st.caption(f"Cross/self ratio {chosen.ratio:.3f}, permutation p = {chosen.divergence.p_value:.3f}.")
    ui.downloads(cross, f"cross_divergence_{module}", matrix_frame(chosen.divergence.cross, langs),
                 key="div_cross_dl")


cross_section()

top = st.slider("Modules shown in the ranking", 5, len(evidence), min(20, len(evidence)),
                key="div_top")
ranked = rank_modules(evidence)[:top]
significant = {e.module for e in ranked if e.divergence.p_value < 0.05}
rank_fig = ranking_figure([e.module for e in ranked], [e.ratio for e in ranked],
                          "Modules by cross/self divergence ratio (red: permutation p < 0.05)",
                          "cross/self ratio", line=1.0, highlight=significant)
st.plotly_chart(rank_fig, key="div_ranking")
ui.downloads(rank_fig, "divergence_ranking", evidence_table(rank_modules(evidence)), key="div_rank_dl")


@st.fragment
def budget_section() -> None:
    """Where a budget goes; reruns alone when the budget changes."""
    budget = st.slider("Parameter budget (fraction of the model)", 0.0, 0.5, 0.1, 0.01,
                       key="div_budget")
    total = sum(meta["n_params"].values())
    allocation = allocate(evidence, budget, total)
    c1, c2, c3 = st.columns(3)
    c1.metric("Modules split", len(allocation.modules))
    c2.metric("Extra parameters", f"{allocation.extra_params:,}",
              f"{allocation.fraction:.1%} of the model", delta_color="off")
    c3.metric("Candidates over the budget", len(allocation.skipped_over_budget))
    if allocation.modules:
        spend = budget_figure([e.module for e in allocation.modules],
                              [extra_cost(e) for e in allocation.modules], allocation.budget_params)
        st.plotly_chart(spend, key="div_budget_figure")
        ui.downloads(spend, "budget", evidence_table(allocation.modules), key="div_budget_dl")
    else:
        st.info("No module passes the ratio (> 1) and permutation test (p < 0.05) within "
                "this budget.")


budget_section()
