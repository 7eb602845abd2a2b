"""Conflicts: where the auxiliary task (ASR) pulls a module against the primary one (ST), the
modules MGCM's projection would act on."""

import numpy as np
import pandas as pd
import streamlit as st

from gradlens import ui
from gradlens.modules import module_label
from gradlens.analysis.evidence import rank_modules
from gradlens.plots import heatmap_figure, lines_figure, mark_columns, ranking_figure
from gradlens.report import conflict_verdict, evidence_table, p_text, task_cosine_text

st.header("ST–ASR gradient conflict")
st.caption(
    "A conflict is a step where a module's ASR gradient points against its ST gradient "
    "(cosine < 0): training on ASR then undoes part of what ST asks of that module. MGCM acts "
    "module by module: where a module's two gradients conflict, it removes from the ASR "
    "gradient its component along the ST gradient (a projection), and leaves every other "
    "module's ASR gradient whole. Modules that conflict often are where the auxiliary task costs "
    "the primary one most. Steps outlined as *step-wide* are ones where most modules conflict "
    "at once: that is the batch, not a module, and module decisions should not rest on them. "
    "Two unrelated noisy gradients conflict about half the time: a module conflicts "
    "*systematically* only when its cosine, averaged over the steps, is below 0 beyond "
    "step-to-step noise (a sign-flip test over the steps, Benjamini–Hochberg across modules).")
run = ui.current_run()
if run is None:
    st.stop()
meta = ui.meta(run)
if len(meta.tasks) < 2:
    st.info(f"This run captured one task ({meta.tasks[0]}); conflicts need ST and ASR.")
    st.stop()
if not ui.needs_steps(run, 2, "Divergence and conflict"):
    st.stop()
evidence = ui.evidence(run)
modules = [e.module for e in evidence]
cos = np.array([e.conflict.mean_cosine for e in evidence])               # [M, S]
fig = heatmap_figure(cos, list(range(cos.shape[1])), modules,
                     "cos(g_ST, g_ASR) per module and step (mean over languages)", "cos", -1, 1,
                     colorscale="RdBu")
fig.update_xaxes(title_text="step")
step_wide = [s for s, share in enumerate((cos < 0).mean(axis=0)) if share >= 0.5]
mark_columns(fig, step_wide, "step-wide")
st.plotly_chart(fig, key="conf_heatmap")
if step_wide:
    st.caption(f"Step-wide conflict (half the modules or more below 0) at step(s) "
               f"{', '.join(map(str, step_wide))}.")
ui.downloads(fig, "conflict_cosine", pd.DataFrame(cos, index=modules), key="conf_heatmap_dl")

top = st.slider("Modules shown in the ranking", 5, len(evidence), min(20, len(evidence)),
                key="conf_top")
ranked = rank_modules(evidence, "conflict_rate")[:top]
systematic = {e.module for e in evidence if e.conflicts()}
rank_fig = ranking_figure([e.module for e in ranked], [e.conflict_rate for e in ranked],
                          "Modules by conflict rate (share of steps and languages with cos < 0; "
                          "red: systematic conflict)", "conflict rate", line=0.5,
                          highlight=systematic,
                          errors=[(e.conflict_rate - e.conflict.rate_ci[0],
                                   e.conflict.rate_ci[1] - e.conflict_rate) for e in ranked])
st.plotly_chart(rank_fig, key="conf_ranking")
st.caption(conflict_verdict(evidence))
ui.downloads(rank_fig, "conflict_ranking", evidence_table(rank_modules(evidence, "conflict_rate")),
             key="conf_rank_dl")

@st.fragment
def module_section() -> None:
    """One module's cosines per language; reruns alone when the module changes."""
    module = st.selectbox("Module", modules, key="conf_module", format_func=module_label)
    chosen = next(e for e in evidence if e.module == module)
    series = {lang: chosen.conflict.cosine[:, i] for i, lang in enumerate(meta.languages)}
    lines = lines_figure(range(chosen.conflict.cosine.shape[0]), series,
                         f"cos(g_ST, g_ASR) · {module}", "step", "cosine", zero_line=True)
    st.plotly_chart(lines, key="conf_lines")
    c = chosen.conflict
    q = "–" if chosen.conflict_q is None else f"{chosen.conflict_q:.3g}"
    st.caption(f"Mean cosine {c.mean:+.3f}, 95 % interval [{c.mean_ci[0]:+.3f}, "
               f"{c.mean_ci[1]:+.3f}]; conflict rate {c.rate:.2f} [{c.rate_ci[0]:.2f}, "
               f"{c.rate_ci[1]:.2f}]; sign-flip test of a mean below 0 over the steps: "
               f"{p_text(c.p_value, c.flips, 'sign flips')}, BH q = {q}: "
               + ("a systematic conflict." if chosen.conflicts() else
                  "not a systematic conflict at these steps."))
    st.caption(task_cosine_text(chosen.task_divergence))
    ui.downloads(lines, f"conflict_{module}", pd.DataFrame(series), key="conf_lines_dl")


module_section()
