"""Divergence: where languages want different updates beyond their own noise, and where a
parameter budget would be spent on language- or cluster-specific copies."""

import numpy as np
import pandas as pd
import streamlit as st

from gradlens import ui
from gradlens.analysis.allocation import RULE, allocate, diverges, extra_cost
from gradlens.analysis.evidence import rank_modules
from gradlens.plots import budget_figure, heatmap_figure, ranking_figure
from gradlens.report import evidence_table, matrix_frame, moving_model_caveat, p_text

st.header("Self and cross divergence")
run = ui.current_run()
if run is None or not ui.needs_steps(run, 3, "Divergence (noise is measured between steps)"):
    st.stop()
meta = ui.meta(run)
langs = meta.languages
if caveat := moving_model_caveat(meta.train_steps_between):
    st.warning(caveat)
evidence = ui.evidence(run)

self_div = np.array([e.divergence.self_div for e in evidence])          # [M, L]
modules = [e.module for e in evidence]
fig = heatmap_figure(self_div, langs, modules, "Self divergence per module and language "
                     "(1 − cos of odd- and even-step mean gradients: each language's own noise)",
                     "self", 0, None)
st.plotly_chart(fig, key="div_self")
ui.downloads(fig, "self_divergence", pd.DataFrame(self_div, index=modules, columns=langs),
             key="div_self_dl")

@st.fragment
def cross_section() -> None:
    """One module's language x language divergence; reruns alone when the module changes."""
    module = st.selectbox("Module", modules, key="div_module")
    chosen = next(e for e in evidence if e.module == module)
    d = chosen.divergence
    cross = heatmap_figure(d.cross, langs, langs,
                           f"Noise-corrected divergence 1 − ρ · {module}", "1 − ρ", 0, None)
    st.plotly_chart(cross, key="div_cross")
    q = "–" if chosen.q_value is None else f"{chosen.q_value:.3g}"
    st.caption(f"Divergence {d.divergence:.3f} against {d.null_mean:.3f} from noise alone: "
               f"excess {d.excess:+.3f}, 95 % interval [{d.excess_ci[0]:+.3f}, "
               f"{d.excess_ci[1]:+.3f}]; {p_text(d.p_value, d.replicates, 'null replicates')}, "
               f"BH q = {q}. Mean self divergence {d.self_div.mean():.3f}. Most divergent pairs: "
               + ", ".join(f"{a}–{b} {v:.3f}" for a, b, v in d.pairs()[:3]) + ".")
    if d.no_signal:
        st.warning(f"No signal beyond noise in this module for {', '.join(d.no_signal)}: their "
                   "mean gradient cannot be told from noise, so their divergence is not measured "
                   "(ρ set to 0).")
    ui.downloads(cross, f"cross_divergence_{module}", matrix_frame(chosen.divergence.cross, langs),
                 key="div_cross_dl")


cross_section()

top = st.slider("Modules shown in the ranking", 5, len(evidence), min(20, len(evidence)),
                key="div_top")
ranked = rank_modules(evidence)[:top]
significant = {e.module for e in ranked if diverges(e)}
rank_fig = ranking_figure([e.module for e in ranked], [e.excess for e in ranked],
                          "Modules by divergence beyond noise (red: BH q < 0.05 and interval above 0)",
                          "excess divergence", line=0.0, highlight=significant,
                          errors=[(e.excess - e.divergence.excess_ci[0],
                                   e.divergence.excess_ci[1] - e.excess) for e in ranked])
st.plotly_chart(rank_fig, key="div_ranking")
ui.downloads(rank_fig, "divergence_ranking", evidence_table(rank_modules(evidence)), key="div_rank_dl")


@st.fragment
def budget_section() -> None:
    """Where a budget goes; reruns alone when the budget changes."""
    budget = st.slider("Parameter budget (fraction of the model)", 0.0, 0.5, 0.1, 0.01,
                       key="div_budget")
    total = sum(meta.n_params.values())
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
        st.info("No module is split: none diverges beyond noise after the correction for testing "
                "every module (BH q < 0.05, interval above 0) and fits this budget. Sharing "
                "everything is what these gradients support.")
    st.caption("The rule that spends the budget: " + RULE.format(alpha=0.05) + ". "
               "'Candidates over the budget' pass the test but did not fit in what was left.")


budget_section()
