"""Divergence: where languages want different updates beyond their own noise, and where a
parameter budget would be spent on language- or cluster-specific copies."""

import numpy as np
import pandas as pd
import streamlit as st

from gradlens import ui
from gradlens.modules import module_label
from gradlens.analysis.allocation import RULE, allocate, extra_cost, nothing_split_text, priority
from gradlens.analysis.evidence import rank_modules
from gradlens.plots import budget_figure, heatmap_figure, ranking_figure
from gradlens.report import evidence_table, matrix_frame, moving_model_caveat, p_text

POWERED_STEPS = 20  # the steps the divergence test's power was measured at (results §1)

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
    module = st.selectbox("Module", modules, key="div_module", format_func=module_label)
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

if meta.steps < POWERED_STEPS:
    st.info(f"This run has {meta.steps} steps. The divergence test's power was measured at "
            f"{POWERED_STEPS} (docs/results.md §1: 0.92-1.00 against the planted effect, 0.36-0.72 "
            "against a third of it); with fewer steps it is lower. A module kept shared here is "
            "not shown to differ, which is not the same as shown alike: probe more steps before "
            "reading an empty plan as an answer.")
total = sum(meta.n_params.values())
budget = ui.budget_slider("div_budget")
allocation = allocate(evidence, budget, total)
decision = {e.module: allocation.outcome(e) for e in evidence}
c1, c2 = st.columns(2)
order = c1.radio("Order", ["excess divergence", "the plan's priority"], horizontal=True,
                 key="div_order", help="The plan takes modules by their split's held-out gain per "
                                       "extra parameter, not by their divergence")
top = c2.slider("Modules shown", 5, len(evidence), min(20, len(evidence)), key="div_top")
ranked = (rank_modules(evidence) if order == "excess divergence"
          else sorted(evidence, key=priority, reverse=True))
shown = ranked[:top] + [e for e in ranked[top:] if decision[e.module] == "split"]  # all split
rank_fig = ranking_figure(
    [e.module for e in shown], [e.excess for e in shown],
    f"Modules by {order} · excess divergence beyond noise (red: split at this budget; orange: "
    "diverges, kept shared; blue: kept shared)", "excess divergence", line=0.0,
    errors=[(e.excess - e.divergence.excess_ci[0], e.divergence.excess_ci[1] - e.excess)
            for e in shown],
    decisions=decision, hover=[allocation.decisions[e.module] for e in shown])
st.plotly_chart(rank_fig, key="div_ranking")
ui.downloads(rank_fig, "divergence_ranking", evidence_table(rank_modules(evidence)), key="div_rank_dl")
st.dataframe(pd.DataFrame([{"module": e.module, "decision": decision[e.module],
                            "reason": allocation.decisions[e.module]} for e in shown]),
             hide_index=True, width="stretch", key="div_decisions")

c1, c2, c3 = st.columns(3)
c1.metric("Modules split", len(allocation.modules))
c2.metric("Extra parameters", f"{allocation.extra_params:,}")
c2.caption(f"{allocation.fraction:.1%} of the model")
c3.metric("Candidates over the budget", len(allocation.skipped_over_budget))
if allocation.modules:
    spend = budget_figure([e.module for e in allocation.modules],
                          [extra_cost(e) for e in allocation.modules], allocation.budget_params)
    st.plotly_chart(spend, key="div_budget_figure")
    ui.downloads(spend, "budget", evidence_table(allocation.modules), key="div_budget_dl")
else:
    why = nothing_split_text(allocation.decisions)
    st.info(f"{why[0].upper()}{why[1:]} (the rule is below). Sharing everything is what these "
            "gradients support" + (", at this run's power." if meta.steps < POWERED_STEPS else "."))
st.caption("The rule that spends the budget: " + RULE.format(alpha=0.05) + ". "
           "'Candidates over the budget' pass the test but did not fit in what was left.")
