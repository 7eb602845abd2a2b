"""Dendrograms: which languages' gradients agree, per module, layer or block, and across depth."""

import streamlit as st

from gradlens import ui
from gradlens.modules import module_label
from gradlens.analysis.clustering import METHODS
from gradlens.analysis.evidence import NOT_PAIRED, default_similarity, offered_similarities
from gradlens.errors import NotEnoughData
from gradlens.plots import dendrogram_figure, similarity_figure, small_multiples_figure
from gradlens.report import (grouping_caveat, mantel_text, matrix_frame, moving_model_caveat,
                             tree_verdict)

st.header("Language dendrograms")
run = ui.current_run()
if run is None:
    st.stop()
meta = ui.meta(run)
langs = meta.languages
c1, c2, c3, c4 = st.columns(4)
granularity = c1.radio("Granularity", ["layer", "module", "block"], key="dend_granularity",
                       horizontal=True)
options = {"layer": meta.layers, "module": meta.modules, "block": meta.blocks}[granularity]
strongest = ui.strongest_unit(run, granularity)
key = c2.selectbox("Unit", options, key=f"dend_unit_{granularity}",
                   format_func=module_label,
                   index=options.index(strongest) if strongest in options else 0,
                   help="Opens on the unit whose languages diverge most surely beyond noise")
task = c3.selectbox("Task", meta.tasks, key="dend_task")
method = c4.selectbox("Linkage", METHODS, key="dend_method")
offered = offered_similarities(meta.content_paired)
measure = st.radio("Similarity", list(offered), format_func=offered.get,
                key="dend_kind", horizontal=True,
                index=list(offered).index(default_similarity(len(langs), meta.content_paired)),
                help="Paired steps show how alike languages respond to the same utterances, "
                     "where language families show (docs/results.md); its clades are tested "
                     "from 5 languages. The plan's groups come from the mean gradients")
if not meta.content_paired:
    st.caption(NOT_PAIRED)

try:
    clustering = ui.clustering(run, key, task, method, measure)
except NotEnoughData as exc:
    st.warning(f"No {measure} similarity here: {exc}.")
    st.stop()
fig = dendrogram_figure(clustering, f"{key} · {task} · {measure}")
st.plotly_chart(fig, key="dend_figure")
ui.downloads(fig, f"dendrogram_{key}_{task}_{measure}", key="dend_dl")
best = ui.grouping(run, key, task, None, measure)
agreement = ui.typology(run, key, task, measure)
st.markdown(tree_verdict(clustering, best, agreement, measure))

n_groups = st.slider("Groups", 1, len(langs), min(3, len(langs)), key="dend_groups")
st.write("Partition: " + " · ".join("{" + ", ".join(g) + "}" for g in clustering.partition(n_groups)))
chosen = ui.grouping(run, key, task, n_groups, measure)
st.write("GradSim grouping: " + " · ".join("{" + ", ".join(g) + "}" for g in chosen.groups_))
st.caption(f"Tree cut of the {method}-linkage dendrogram, and the partition into {n_groups} "
           f"group(s) with the highest within-group affinity "
           f"({'exact' if chosen.exact_ else 'heuristic, more than 12 languages'}; score "
           f"{chosen.score_:.2f}). Best number of groups by silhouette: {len(best.groups_)}. "
           f"Cophenetic correlation {clustering.cophenetic:.2f} · {meta.steps} steps.")
if untold := clustering.untold():
    st.caption("Joined at 0 (grey bars on the tree): "
               + "; ".join("{" + " ".join(g) + "}" for g in untold)
               + ". Their noise-corrected similarity is at or above 1, so this unit cannot tell "
                 "them apart within noise; their order inside the group means nothing.")
caveat = grouping_caveat(clustering, measure)
if caveat:
    st.warning(caveat)

if caveat := moving_model_caveat(meta.train_steps_between, "typology"):
    st.warning(caveat)
if agreement.unavailable:
    st.info(f"Agreement with URIEL typology: not available ({agreement.unavailable}).")
else:
    cols = st.columns(len(agreement.tests))
    for col, (kind, m) in zip(cols, agreement.tests.items()):
        col.metric(f"Agreement with URIEL {kind} distance (Mantel r)", f"{m.r:.2f}",
                   help=f"Pearson r of gradient distance (1 − similarity) and URIEL's {kind} "
                        "distance over language pairs, one-sided. The languages are relabelled "
                        f"{m.permutations} times; for the mean similarity the r must also beat "
                        "data in which the languages share one direction with their own noise "
                        "and scales, since a language's signal-to-noise ratio shapes its "
                        "similarities (docs/results.md §1f).")
        col.caption(mantel_text(m))

sim = similarity_figure(clustering, f"{key} · {task}", measure)
st.plotly_chart(sim, key="dend_similarity")
ui.downloads(sim, f"similarity_{key}_{task}_{measure}", matrix_frame(clustering.similarity, langs),
             key="dend_sim_dl")

if st.toggle("Across layers: the clustering from the lowest to the highest layer",
             key="dend_across_layers"):
    layers = [x for x in meta.layers if ".layers." in x]
    multiples = small_multiples_figure(
        {x.replace("speech_encoder.encoder.layers.", "encoder ")
          .replace("speech_encoder.adapter.layers.", "adapter ")
          .replace("text_decoder.layers.", "decoder "): ui.clustering(run, x, task, method, measure)
         for x in layers})
    st.plotly_chart(multiples, key="dend_multiples")
    ui.downloads(multiples, f"dendrograms_by_layer_{task}", key="dend_multiples_dl")

# while the researcher reads this tree, the other units' trees are made in the background
ui.prefetch_trees(run, options, key, task, method, measure, n_groups)
