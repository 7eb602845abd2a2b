"""Subspace alignment: do two languages' updates move along the same directions at the same
steps (joint factorization + CCA), and how far apart are their own subspaces (principal angles)."""

import numpy as np
import pandas as pd
import streamlit as st

from gradlens import ui
from gradlens.modules import module_label
from gradlens.analysis.alignment import min_steps
from gradlens.plots import heatmap_figure, spectrum_figure
from gradlens.report import alignment_verdict, matrix_frame, moving_model_caveat, p_text

st.header("Subspace alignment")
run = ui.current_run()
if run is None:
    st.stop()
meta = ui.meta(run)
if not meta.content_paired:
    st.info("Subspace alignment is not computed for this run: its steps did not draw the same "
            "content in every language (a manifest without an item column), and CCA pairs the "
            "languages' steps row by row. Give the manifest an item column (rows of one item "
            "say the same thing) and probe again.")
    st.stop()
moving = meta.train_steps_between > 0
if not ui.needs_steps(run, min_steps(1, moving), "CCA of rank 1" + (
        " on a run that trained between its probe steps (its trend over the steps takes 6 of "
        "them)" if moving else "")):
    st.stop()
langs = meta.languages
if caveat := moving_model_caveat(meta.train_steps_between, "alignment"):
    st.warning(caveat)
c1, c2 = st.columns(2)
granularity = c1.radio("Granularity", ["module", "layer"], key="align_granularity", horizontal=True)
options = meta.modules if granularity == "module" else meta.layers
key = c2.selectbox("Unit", options, key=f"align_unit_{granularity}",
                   format_func=module_label)
evidence = ui.module_evidence(run, key)
a = evidence.alignment
if a is None:
    st.warning("Too few steps for CCA on this run.")
    st.stop()

fig = heatmap_figure(a.mean, langs, langs, f"Mean canonical correlation · {key} (rank {a.rank})",
                     "mean ρ", 0, 1, colorscale="Blues")
st.plotly_chart(fig, key="align_heatmap")
st.caption(f"Shared basis of rank {a.rank} captures {a.explained:.0%} of the gradients' squared "
           f"norm; mean over pairs {a.mean_off_diagonal():.3f} against {a.chance_level():.3f} "
           f"by chance (steps shuffled; {p_text(a.p_value, a.shuffles, 'shuffles')}): "
           f"alignment "
           f"beyond chance {a.excess():.2f}; {meta.steps} steps.")
st.markdown(alignment_verdict(a))
ui.downloads(fig, f"cca_mean_{key}", matrix_frame(a.mean, langs), key="align_heatmap_dl")

@st.fragment
def pair_section() -> None:
    """One pair's spectrum; reruns alone when the pair changes."""
    p1, p2 = st.columns(2)
    first = p1.selectbox("Language", langs, index=0, key="align_a")
    second = p2.selectbox("against", [x for x in langs if x != first], index=0, key="align_b")
    i, j = langs.index(first), langs.index(second)
    spec = spectrum_figure(a.correlations[i, j], a.angles[i, j], (first, second), a.chance[i, j])
    st.plotly_chart(spec, key="align_spectrum")
    table = pd.DataFrame({"canonical correlation": a.correlations[i, j],
                          "principal angle (degrees)": np.degrees(a.angles[i, j])},
                         index=pd.RangeIndex(1, a.rank + 1, name="component"))
    ui.downloads(spec, f"spectrum_{key}_{first}_{second}", table, key="align_spectrum_dl")


pair_section()
