"""Experiments: does the plan help? Start one from the run's saved plan, follow its jobs, and
read the arms side by side with their intervals, per-language scores, significance and a few
hypotheses next to their references."""

import pandas as pd
import streamlit as st

from gradlens import experiment as ex
from gradlens import ui
from gradlens.errors import GradlensError
from gradlens.arms import ARMS, DEFAULT_ARMS
from gradlens.jobs import BACKENDS, JobError, allowed_ray_addresses
from gradlens.paths import PLAN_FILE
from gradlens.plan import PlanError, load_plan
from gradlens.plots import arms_figure, lines_figure
from gradlens.significance import METRICS
from gradlens.train.config import TrainConfig

st.header("Experiments")
st.caption(
    "An experiment trains the proposed plan and its baselines, at equal extra parameters, over "
    "several seeds, as ordinary jobs (one at a time on the local backend). *random-groups* keeps "
    "the plan's modules with languages dealt at random into groups of the same sizes; "
    "*random-modules* splits random modules of the same sizes; *typology* groups languages by "
    "URIEL genetic distance; *shared* splits nothing and so has fewer parameters. Each job's "
    "checkpoint is its evaluation with the best dev chrF; every arm and seed is scored on the "
    "same test utterances. The verdict is decided over seeds, each a training run: a paired t "
    "test over seeds, Holm-adjusted over the baselines, with a bootstrap interval that resamples "
    "seeds and then test utterances; the primary metric and baseline are declared before the "
    "run. The test-set p-values (paired randomisation over the pooled utterances) are secondary: "
    "they speak to these test utterances only, and call two seeds of the same arm different in "
    "about half of pairs (docs/results/aa-check.md).")
DEFAULTS = TrainConfig()
LABEL = {"bleu": "BLEU", "chrf": "chrF"}


def start_section(run) -> None:
    path = run / PLAN_FILE
    if not path.exists():
        st.info("This run has no saved plan yet: save one on the Sharing plan page, then test "
                "it here against its baselines.")
        return
    try:
        plan = load_plan(path)
    except PlanError as exc:
        st.error(f"The saved plan cannot be tested: {exc}")
        return
    if not plan.modules:
        st.info("The saved plan splits no module: every arm would be the shared model, so "
                "there is nothing to compare.")
        return
    st.caption(f"`{path}`: {len(plan.modules)} split module(s) on "
               f"{' '.join(plan.languages)}.")
    with st.form("exp_form"):
        c1, c2, c3, c4 = st.columns(4)
        seeds = c1.number_input("Seeds", 1, 20, 3, key="exp_seeds")
        steps = c2.number_input("Steps per job", 1, 1_000_000, DEFAULTS.steps, key="exp_steps")
        every = c3.number_input("Evaluate every", 1, 100_000, DEFAULTS.eval_every, key="exp_every")
        size = c4.number_input("Utterances per language scored", 1, 10_000, DEFAULTS.eval_size,
                               key="exp_size")
        arms = st.multiselect("Arms", list(ARMS), default=DEFAULT_ARMS, key="exp_arms",
                              format_func=lambda a: f"{a}: {ARMS[a]}")
        c1, c2 = st.columns(2)
        backend = c1.selectbox("Backend", BACKENDS, key="exp_backend")
        address = c2.selectbox("Ray cluster (ray backend)", allowed_ray_addresses(),
                               key="exp_ray_address", placeholder="none configured",
                               help="RAY_ADDRESS, or the addresses in GRADLENS_RAY_ADDRESSES, "
                                    "as set where the app was started")
        go = st.form_submit_button("Start the experiment", type="primary")
    if go:  # the cost first, and a second click to start
        st.session_state["exp_pending"] = dict(
            seeds=int(seeds), steps=int(steps), every=int(every), size=int(size),
            arms=["proposed", *[a for a in arms if a != "proposed"]], backend=backend,
            address=address or None)
    pending = st.session_state.get("exp_pending")
    if not pending:
        return
    jobs = pending["seeds"] * len(pending["arms"])
    speed = ui.training_pace()
    st.warning(
        f"This experiment trains {jobs} jobs ({len(pending['arms'])} arms × {pending['seeds']} "
        f"seed(s)) of {pending['steps']:,} steps each, {jobs * pending['steps']:,} steps in all, "
        "one job at a time on the local backend"
        + (f": about {ui.span(jobs * pending['steps'] / speed)} at the pace of the last finished "
           f"job ({speed:.2f} steps/s), evaluations not counted." if speed else
           "; no job has finished here yet to time it.")
        + (" **One seed gives no verdict**: the test over seeds needs at least 2 (the positive "
           "control's differences of 1-2 chrF were not resolved by 8)." if pending["seeds"] < 2
           else ""))
    c1, c2 = st.columns(2)
    if c2.button("Change the settings", key="exp_cancel_pending"):
        st.session_state["exp_pending"] = None
        st.rerun()
    if not c1.button(f"Start {jobs} jobs", type="primary", key="exp_confirm"):
        return
    st.session_state["exp_pending"] = None
    corpus = ui.meta(run).corpus  # the jobs train on the corpus the run probed
    cfg = TrainConfig(steps=pending["steps"], eval_every=pending["every"],
                      eval_size=pending["size"], corpus=corpus)
    try:
        with st.spinner("Writing the arms' plans and submitting their jobs…"):
            directory, spec, notes = ex.prepare(run, plan, list(range(pending["seeds"])), cfg,
                                                pending["arms"])
            started = ex.launch(directory, pending["backend"], pending["address"])
        for note in notes:
            st.warning(note)
        st.session_state["exp_pick"] = directory.name
        st.success(f"{directory.name}: submitted {len(started)} job(s). They run on their "
                   "own; closing this tab does not stop them.")
    except GradlensError as exc:
        st.error(str(exc))


def jobs_table(rows: list[dict]) -> None:
    done, total = ex.progress(rows)
    finished = sum(r["state"] == "succeeded" for r in rows)
    st.progress(done / max(1, total), text=f"{done:,} of {total:,} steps over {len(rows)} jobs; "
                                            f"{finished} finished")
    st.dataframe(pd.DataFrame([{
        "arm": r["arm"], "seed": r["seed"], "state": r["state"],
        "step": f"{r['step']} / {r['steps']}",
        "dev chrF so far": None if r["dev_chrf"] is None else round(r["dev_chrf"], 2),
        "at step": r["dev_step"], "now": r["activity"] or r["reason"]} for r in rows]),
        hide_index=True, width="stretch", key="exp_jobs")
    if any(r["dev_chrf"] is not None and r["state"] != "succeeded" for r in rows):
        st.caption("*dev chrF so far* of unfinished jobs is intermediate: their last evaluation, "
                   "not their result.")


def curves(directory) -> None:
    steps, series = ex.dev_curves(ex.read_spec(directory))
    if steps:
        st.plotly_chart(lines_figure(steps, series, "dev chrF by arm (mean over the seeds "
                                     "evaluated so far)", "step", "chrF"), key="exp_curves")


def results_section(directory, rows: list[dict]) -> None:
    with st.spinner("Scoring the finished jobs and running the paired tests…"):
        res = ex.results(directory, rows)
    if res is None:
        st.info("No job has finished yet: results appear as jobs finish.")
        return
    if not res["complete"]:
        st.warning(f"Intermediate: {res['jobs_done']} of {res['jobs']} jobs have finished; the "
                   "figures below cover those only.")
    spec = ex.read_spec(directory)
    worse = ex.below_start(spec)
    if worse:
        st.warning(f"{len(worse)} of {len(ex.jobs_of(spec))} jobs ended far below the model they "
                   f"started from (test chrF, all languages: "
                   + "; ".join(f"{jid} {a:.1f} → {b:.1f}" for jid, a, b in worse[:4])
                   + ("; …" if len(worse) > 4 else "") + "). Training made the model worse, so a "
                   "comparison of the arms says little about sharing: fewer steps, a lower "
                   "learning rate or a longer warm-up first.")
    st.markdown(f"**{ex.primary_conclusion(res)}**")
    names = list(res["arms"])
    cols = st.columns(2)
    for col, m in zip(cols, METRICS):
        s = [res["arms"][a]["scores"]["all"][m] for a in names]
        labels = [f"{res['arms'][a]['extra_params']:,} extra" if a != "shared"
                  else "fewer parameters" for a in names]
        fig = arms_figure(names, [x["mean"] for x in s], [x["low"] for x in s],
                          [x["high"] for x in s],
                          f"test {LABEL[m]} by arm (mean over seeds, 95 % interval)", LABEL[m], labels)
        with col:
            st.plotly_chart(fig, key=f"exp_arms_{m}")
            ui.downloads(fig, f"{directory.name}_{m}", key=f"exp_dl_{m}")
    st.caption(f"{res['test_utterances']} test utterances per seed, the same for every arm; "
               "bars without an error bar have one seed.")
    if res["comparisons"]:
        st.subheader("Proposed against each baseline")
        st.dataframe(pd.DataFrame([{
            "baseline": arm, "seeds": len(c["seeds"]),
            **{f"Δ {LABEL[m]}": round(c[m]["delta"]["mean"], 2) for m in METRICS},
            **{f"Δ {LABEL[m]} 95 % interval": "one seed" if c[m]["delta"]["low"] is None else
               f"[{c[m]['delta']['low']:.2f}, {c[m]['delta']['high']:.2f}]" for m in METRICS},
            **{f"{LABEL[m]} seed-level p (Holm)": "one seed" if c[m]["p_holm"] is None else
               f"{c[m]['seeds']['t_p']:.3g} ({c[m]['p_holm']:.3g})" for m in METRICS},
            **{f"{LABEL[m]} interval (seeds, utterances)": "one seed" if c[m]["interval"] is None
               else f"[{c[m]['interval']['low']:.2f}, {c[m]['interval']['high']:.2f}]"
               for m in METRICS},
            **{f"{LABEL[m]} test-set p (secondary)": f"{c[m]['p_utterances']:.3g}"
               for m in METRICS},
            **{f"{LABEL[m]}: proposed is": c[m]["verdict"] for m in METRICS}}
            for arm, c in res["comparisons"].items()]), hide_index=True, width="stretch",
            key="exp_cmp")
        for m in METRICS:
            st.markdown(f"**{ex.conclusion(res, m)}**")
        st.caption("Δ is proposed minus the baseline, paired by seed. " + "; ".join(
            ex.VERDICTS.values()) + ". A difference not shown is not evidence that the plan "
            "helps.")
    st.subheader("Per language")
    metric = st.radio("Score", METRICS, format_func=LABEL.get, horizontal=True, key="exp_metric")
    table = pd.DataFrame({a: {lang: v[metric]["mean"] for lang, v in res["arms"][a]["scores"].items()}
                          for a in names})
    st.dataframe(table.round(2), width="stretch", key="exp_lang")
    st.subheader("Hypotheses next to their references")
    outputs, _ = ex.job_outputs(spec)
    seed = st.selectbox("Seed", sorted({s for per in outputs.values() for s in per}),
                        key="exp_seed")
    st.dataframe(pd.DataFrame(ex.side_by_side(outputs, names, seed)), hide_index=True,
                 width="stretch", key="exp_hyps")


run = ui.current_run()
if run is not None:
    with st.expander("Start an experiment from this run's saved plan", expanded=False):
        start_section(run)
found = ex.experiments()
if not found:
    st.info(f"No experiments in `{ui.runs_dir()}` yet. Start one above, or from a shell: "
            "`python -m gradlens experiment runs/<run> --seeds 3`.")
else:
    names = [p.name for p in found]
    pick = st.selectbox("Experiment", names, key="exp_pick")
    directory = found[names.index(pick)]
    try:
        rows = ex.status(directory)
    except (ex.ExperimentError, JobError) as exc:
        st.error(str(exc))
        rows = []
    if rows:
        def draw(now: list[dict]) -> None:
            jobs_table(now)
            curves(directory)

        ui.follow_jobs(rows, lambda: ex.status(directory), draw)
        results_section(directory, rows)
