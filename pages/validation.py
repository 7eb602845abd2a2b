"""Validation: does the predicted gain predict the benefit? Follow a ``gradlens validate`` run's
fine-tunes, then read its answer, each predictor's rank correlation with what the splits
delivered, the scatter, and the table as CSV."""

import pandas as pd
import streamlit as st

from gradlens import experiment as ex
from gradlens import ui
from gradlens import validation as va
from gradlens.analysis.validation import RankCorrelation, prediction_verdict
from gradlens.jobs import JobError
from gradlens.modules import module_label
from gradlens.plots import validation_figure

st.header("Validation")
st.caption(
    "Does the evidence predict what a split delivers? `gradlens validate` fine-tunes modules "
    "spanning the predicted gain (the plan's first, then modules below it), each split alone "
    "into its proposed groups and into random, URIEL and loss-level groups of the same sizes, "
    "against a fine-tune that shares everything, over the same seeds, batches and starting "
    "model. A split's **realised benefit** is the shared fine-tune's dev ST loss minus its own, "
    "averaged over languages and seeds (positive: the split helped). Spearman's ρ over modules, "
    "with a bootstrap interval that resamples modules, says whether a predictor ranks the "
    "modules as their benefit does; the target is ρ ≥ 0.5 with the interval above 0.")


def results_section(directory, rows: list[dict]) -> None:
    with st.spinner("Reading the finished fine-tunes' dev losses…"):
        res = va.results(directory, rows)
    if res is None:
        st.info("No fine-tune has finished yet: results appear as they finish.")
        return
    st.markdown(f"**{res['answer']}**")
    if not res["complete"]:
        st.warning(f"Intermediate: {res['jobs_done']} of {res['jobs']} fine-tunes have finished; "
                   "the figures below cover those only.")
    label = {p: what.split(" (")[0] for p, what in va.PREDICTORS.items()}
    pick = st.radio("Predictor", list(va.PREDICTORS), format_func=label.get, horizontal=True,
                    key="val_predictor")
    rc = RankCorrelation(**res["correlations"][pick])
    fig = validation_figure(res["modules"], pick, label[pick],
                            f"{label[pick]} against the realised benefit"
                            + (f" (ρ = {rc.rho:.2f})" if rc.rho is not None else ""))
    st.plotly_chart(fig, key="val_scatter")
    table = pd.DataFrame([{
        "module": module_label(m["module"]), "in plan": m["in_plan"],
        **{label[p]: m["predictors"][p] for p in va.PREDICTORS},
        **{f"benefit, {g} groups": m["benefit"].get(g, {}).get("mean")
           for g in res["benefit"]}} for m in res["modules"]])
    ui.downloads(fig, f"{directory.name}_validation", key="val_dl")
    st.download_button("Table (CSV)", data=va.table_csv(res).encode("utf-8"),
                       file_name=f"{directory.name}_{va.TABLE}", mime="text/csv",
                       key="val_csv", on_click="ignore")
    st.subheader("Each predictor")
    per = res.get("per_parameter", {})
    st.dataframe(pd.DataFrame([{
        "predictor": va.PREDICTORS[p], "ρ": c["rho"], "95 % interval":
        "none" if c["low"] is None else f"[{c['low']:.2f}, {c['high']:.2f}]", "modules": c["n"],
        "reads": prediction_verdict(label[p], RankCorrelation(**c)),
        "ρ with the benefit per extra parameter": None if p not in per else per[p]["rho"]}
        for p, c in res["correlations"].items()]), hide_index=True, width="stretch",
        key="val_rho")
    st.caption("The plan spends a budget, so its priority ranks modules per extra parameter: "
               "its fair target is the benefit per extra parameter (last column, secondary).")
    st.caption(f"The primary predictor, declared before the fine-tunes ran, is the "
               f"{label[res['primary']]}; the others are secondary.")
    st.subheader("Each grouping")
    st.dataframe(pd.DataFrame([{
        "groups": g, "mean benefit": b["mean"], "95 % interval over modules":
        "one module" if b["low"] is None else f"[{b['low']:+.4f}, {b['high']:+.4f}]",
        "proposed − these": "" if g not in res["versus"] else
        f"{res['versus'][g]['mean']:+.4f}" + ("" if res["versus"][g]["low"] is None else
                                              f" [{res['versus'][g]['low']:+.4f}, "
                                              f"{res['versus'][g]['high']:+.4f}]"),
        "modules": b["n"]} for g, b in res["benefit"].items()]), hide_index=True,
        width="stretch", key="val_groupings")
    st.subheader("Each module")
    st.dataframe(table, hide_index=True, width="stretch", key="val_modules")


found = va.validations()
if not found:
    st.info(f"No validations in `{ui.runs_dir()}` yet. Start one from a shell: "
            "`python -m gradlens validate runs/<run> --modules 10 --seeds 2` (it trains about "
            "80 short fine-tunes, one at a time on the local backend).")
else:
    names = [p.name for p in found]
    pick = st.selectbox("Validation", names, key="val_pick")
    directory = found[names.index(pick)]
    try:
        spec = va.read_spec(directory)
        rows = va.status(directory)
    except (va.ValidationError, JobError) as exc:
        st.error(str(exc))
        rows = []
    if rows:
        st.caption(f"Of `{spec['source_run']}`: {len(spec['modules'])} modules × "
                   f"{len(spec['groupings'])} groupings and the shared fine-tune, "
                   f"{len(spec['seeds'])} seed(s), {spec['config']['steps']} steps each, dev "
                   f"loss on {spec['config']['dev_loss_size']} utterances per language.")
        def draw(now: list[dict]) -> None:
            done, total = ex.progress(now)
            finished = sum(r["state"] == "succeeded" for r in now)
            st.progress(done / max(1, total), text=f"{done:,} of {total:,} steps over "
                                                    f"{len(now)} fine-tunes; {finished} finished")
            failed = [r for r in now if r["state"] in ("failed", "cancelled")]
            if failed:
                st.warning(f"{len(failed)} fine-tune(s) did not finish ("
                           + "; ".join(f"{r['job']}: {r['state']}" for r in failed[:3])
                           + "): run the same command again to resume them.")

        ui.follow_jobs(rows, lambda: va.status(directory), draw)
        results_section(directory, rows)
