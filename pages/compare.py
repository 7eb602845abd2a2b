"""Compare side by side: two runs (two corpora, two models, one model probed at two checkpoints),
or one run over its own training (windows of its steps). For each: the trees of one unit, the
divergence rankings, the agreement with typology, and how their proposed plans differ."""

import numpy as np
import pandas as pd
import streamlit as st

from gradlens import ui
from gradlens.analysis.allocation import propose_plan
from gradlens.analysis.evidence import (NOT_PAIRED, default_similarity, offered_similarities,
                                        rank_modules)
from gradlens.analysis.pace import paired_min_steps
from gradlens.evidence import step_windows
from gradlens.plan import diff, format_groups
from gradlens.plots import dendrogram_figure, lines_figure, ranking_figure
from gradlens.report import mantel_text

MAX_WINDOWS = 4


def unit_controls(run, layers: list[str], tasks: list[str]) -> tuple[str | None, str, str]:
    """The unit (opening on the run's surest language signal), task and similarity."""
    c1, c2, c3 = st.columns(3)
    strongest = ui.strongest_unit(run, "layer")
    unit = c1.selectbox("Unit", layers, key="cmp_unit",
                        index=layers.index(strongest) if strongest in layers else 0,
                        help="Opens on the layer whose languages diverge most surely beyond "
                             "noise over all the sidebar run's steps") if layers else None
    task = c2.selectbox("Task", tasks, key="cmp_task")
    paired = ui.meta(run).content_paired
    offered = offered_similarities(paired)
    opening = default_similarity(len(ui.meta(run).languages), paired)
    measure = c3.radio("Similarity", list(offered), format_func=offered.get,
                       key="cmp_kind", horizontal=True, index=list(offered).index(opening))
    if not paired:
        c3.caption(NOT_PAIRED)
    return unit, task, measure


TOP = 12  # modules each side ranks


def shared_axes(sides: list[tuple], unit, task, measure) -> tuple[float, tuple[float, float]]:
    """The ranges every side draws on, so that the sides compare by eye: the tallest tree's
    height, and the span of the top modules' excess divergence intervals. ``sides``: (run,
    window) pairs."""
    top = 0.0
    low, high = 0.0, 0.0
    for run, window in sides:
        if unit is not None:
            top = max(top, float(ui.clustering(run, unit, task, "average", measure,
                                               window).linkage[:, 2].max()))
        for e in rank_modules(ui.evidence(run, window), "excess_divergence")[:TOP]:
            low, high = min(low, e.divergence.excess_ci[0]), max(high, e.divergence.excess_ci[1])
    pad = 0.05 * (high - low or 1.0)
    return 1.05 * top or 1.0, (low - pad, high + pad)


def side(run, title: str, caption: str, unit, task, measure, window=None,
         axes: tuple[float, tuple[float, float]] | None = None) -> None:
    """One side: its tree of ``unit``, URIEL agreement and top modules by excess divergence,
    drawn on the shared ``axes`` (``shared_axes``)."""
    st.subheader(title)
    st.caption(caption)
    name = f"{run.name}_{window[0]}_{window[-1]}" if window else run.name
    if unit is not None:
        fig = dendrogram_figure(ui.clustering(run, unit, task, "average", measure, window),
                                f"{unit} · {task} · {measure}")
        if axes:
            fig.update_yaxes(range=[0, axes[0]])
        st.plotly_chart(fig, key=f"cmp_tree_{name}")
        agreement = ui.typology(run, unit, task, measure, window)
        st.caption("URIEL agreement: " + (agreement.unavailable or " · ".join(
            f"{kind} Mantel r {m.r:.2f} ({mantel_text(m)})" for kind, m in agreement.tests.items())))
    ranked = rank_modules(ui.evidence(run, window), "excess_divergence")[:TOP]
    ranking = ranking_figure(
        [e.module for e in ranked], [e.excess for e in ranked],
        "Excess divergence, top modules (95 % interval)", "excess divergence", line=0.0,
        errors=[(e.excess - e.divergence.excess_ci[0], e.divergence.excess_ci[1] - e.excess)
                for e in ranked])
    if axes:
        ranking.update_xaxes(range=list(axes[1]))
    st.plotly_chart(ranking, key=f"cmp_rank_{name}")


def plans_diff(names: tuple[str, str], evidence: tuple, meta, source: str,
               note: str = "") -> None:
    """The plans each side's evidence proposes at one budget, and the modules they split
    differently."""
    st.subheader("Their proposed plans")
    budget = st.slider("Parameter budget (fraction of the model)", 0.0, 0.5, 0.1, 0.01,
                       key="cmp_budget")
    plans = [propose_plan(e, budget, sum(m.n_params.values()), m.model, m.languages, source)
             for e, m in zip(evidence, meta)]
    changes = diff(*plans)
    if not changes:
        st.caption(f"At {budget:.0%} both propose the same plan "
                   f"({len(plans[0].modules)} module(s) split).")
        return
    st.dataframe(pd.DataFrame([{
        "module": c.module, names[0]: format_groups(c.before) if c.before else "shared",
        names[1]: format_groups(c.after) if c.after else "shared"} for c in changes]),
        hide_index=True, width="stretch", key="cmp_plan_diff")
    st.caption(f"Modules split differently at {budget:.0%}: {len(changes)}. {note}")


def two_runs(run) -> None:
    others = [p for p in ui.run_paths() if p != run]
    if not others:
        st.info("Only one run is here; probe another (the Runs page) to compare them, or "
                "compare this run over its own training.")
        return
    other = st.selectbox("Compare the sidebar's run with", others, format_func=lambda p: p.name,
                         key="cmp_other")
    try:
        metas = {r: ui.meta(r) for r in (run, other)}
    except ui.RunError as exc:
        st.error(f"That run cannot be read: {exc}")
        return
    if metas[other].steps < 2:
        st.warning(f"{other.name} has {metas[other].steps} completed step(s); comparing needs 2.")
        return
    a, b = metas[run], metas[other]
    differences = [f"models ({a.model} and {b.model})" if a.model != b.model else "",
                   f"languages ({' '.join(a.languages)} and {' '.join(b.languages)})"
                   if a.languages != b.languages else "",
                   f"corpora ({a.corpus} and {b.corpus})" if a.corpus != b.corpus else ""]
    if any(differences):
        st.warning("These runs probed different " + ", ".join(d for d in differences if d)
                   + ": their trees and figures describe different things, so a difference "
                     "between them need not be a change of one model.")
    common = [u for u in metas[run].layers if u in metas[other].layers]
    if not common:
        st.info("The two runs share no layer (different models?): only their plans compare.")
    unit, task, measure = unit_controls(
        run, common, [t for t in metas[run].tasks if t in metas[other].tasks])
    axes = shared_axes([(run, None), (other, None)], unit, task, measure)
    for col, r in zip(st.columns(2), (run, other)):
        with col:
            m = metas[r]
            side(r, r.name, f"{m.model} · {m.corpus} · {m.steps} steps · "
                            f"{' '.join(m.languages)}", unit, task, measure, axes=axes)
    plans_diff((run.name, other.name), (ui.evidence(run), ui.evidence(other)),
               (metas[run], metas[other]), str(run),
               "Runs with other languages differ in every split module's groups.")


def window_label(window: tuple[int, ...], index: int | None = None, count: int = 0) -> str:
    """``"window 2 of 3 · steps 8–15"`` (or only the steps, where no position is given)."""
    where = f"window {index + 1} of {count} · " if index is not None else ""
    return f"{where}steps {window[0]}–{window[-1]}"


def over_training(run) -> None:
    meta = ui.meta(run)
    every = meta.train_steps_between
    per_window = paired_min_steps(every > 0)  # what a window's paired similarity needs
    most = min(MAX_WINDOWS, meta.steps // per_window)
    if most < 2:
        st.info(f"{run.name} has {meta.steps} completed steps; comparing windows of its steps "
                f"needs at least {2 * per_window} ({per_window} per window"
                + (", as many as the paired similarity needs once a window's trend over its "
                   "steps is taken out" if every else "") + ").")
        return
    n = st.slider("Windows of steps", 2, most, 2, key="cmp_windows") if most > 2 else 2
    windows = [tuple(int(s) for s in w) for w in step_windows(np.array(meta.done_steps), n)]
    if every:
        st.caption(f"{run.name} trained {every} step(s) between probe steps, so probe step s "
                   f"saw the model after {every}·s training steps: "
                   + "; ".join(f"{window_label(w)} after {every * w[0]}–{every * w[-1]}"
                               for w in windows)
                   + ". Each window is analysed on its own: its own noise, null and intervals, "
                   "with the languages' pace and trend within it taken out as for any run that "
                   "trained between its steps (docs/results.md §1i).")
    else:
        st.info(f"{run.name} did not train between its probe steps: every window sees the same "
                "parameters on other utterances, so whatever differs between them is noise. "
                "Read it as a check of how stable the answers are; to follow a model as it "
                "trains, probe with training steps between probe steps.")
    unit, task, measure = unit_controls(run, meta.layers, meta.tasks)
    axes = shared_axes([(run, w) for w in windows], unit, task, measure)
    for i, (col, w) in enumerate(zip(st.columns(n), windows)):
        with col:
            side(run, window_label(w, i, n), f"{len(w)} steps", unit, task, measure, w, axes)
    moved = ui.drift(run, unit, task, windows[0], windows[-1])
    st.caption(
        f"How far {unit}'s {task} gradient (all languages pooled) moved from "
        f"{window_label(windows[0])} to {window_label(windows[-1])}: "
        + ("its mean cannot be told from noise in one of them." if moved.cosine is None else
           f"noise-corrected cosine {moved.cosine:.2f}, 95 % interval [{moved.ci[0]:.2f}, "
           f"{moved.ci[1]:.2f}] (1: the same update asked at both ends; a fixed model gives 1 "
           "up to noise, and a scale change alone does not lower it)."))
    evidence = [ui.evidence(run, w) for w in windows]
    top = [e.module for e in rank_modules(evidence[-1], "excess_divergence")[:8]]
    series, errors = {}, {}
    for module in top:
        found = [next(e for e in ev if e.module == module) for ev in evidence]
        series[module] = [e.excess for e in found]
        errors[module] = [(e.excess - e.divergence.excess_ci[0],
                           e.divergence.excess_ci[1] - e.excess) for e in found]
    st.plotly_chart(lines_figure(
        [window_label(w) for w in windows], series,
        f"Excess divergence over the windows: the last window's top {len(top)} modules "
        "(95 % intervals)", "window", "excess divergence", zero_line=True, errors=errors),
        key="cmp_trajectory")
    st.caption("Each window's interval comes from its own steps; where two windows' intervals "
               "overlap, these steps do not show that the module's divergence changed.")
    plans_diff((window_label(windows[0]), window_label(windows[-1])),
               (evidence[0], evidence[-1]), (meta, meta), str(run))


st.header("Compare runs")
run = ui.current_run()
if run is None:
    st.stop()
mode = st.radio("Compare", ["with another run", "over its own training"], key="cmp_mode",
                horizontal=True,
                help="Over its own training: the run's steps cut into consecutive windows, each "
                     "analysed on its own (a run probed with training between its steps shows "
                     "how the answers move as the model trains)")
if mode == "with another run":
    two_runs(run)
else:
    over_training(run)
