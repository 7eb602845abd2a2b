"""Training: start a job from the run's sharing plan (or the fully shared baseline), follow the
jobs live to their BLEU/chrF, cancel one, and compare finished jobs side by side."""

import pandas as pd
import streamlit as st

from gradlens import ui
from gradlens.jobs import (BACKENDS, JobError, allowed_ray_addresses, cancel, logs, plan_kind,
                           submit)
from gradlens.metrics import (FAR_BELOW, compare, fell_below_start, final_scores, final_step,
                              last_step, loss_curves, pace, score_curves, start_scores)
from gradlens.paths import PLAN_FILE
from gradlens.plan import PlanError, load_plan
from gradlens.plots import grouped_bars_figure, lines_figure
from gradlens.train.config import TrainConfig

st.header("Training")
DEFAULTS = TrainConfig()


def start_section(run) -> None:
    path = run / PLAN_FILE
    if not path.exists():
        st.info("This run has no saved plan yet: save one on the Sharing plan page, then train "
                "it here (next to the fully shared baseline).")
        return
    try:
        plan = load_plan(path)
    except PlanError as exc:
        st.error(f"The saved plan cannot be trained: {exc}")
        return
    st.caption(f"`{path}`: {plan_kind(plan)} plan, {len(plan.modules)} split module(s), "
               f"model {plan.model}, languages {' '.join(plan.languages)}.")
    with st.form("train_form"):
        c1, c2, c3, c4 = st.columns(4)
        steps = c1.number_input("Steps", 1, 1_000_000, DEFAULTS.steps, key="train_steps")
        batch = c2.number_input("Batch (one language)", 1, 256, DEFAULTS.batch_size, key="train_batch")
        lr = c3.number_input("Peak learning rate", 1e-6, 1.0, DEFAULTS.learning_rate,
                             format="%.0e", key="train_lr",
                             help="reached after the warm-up, then decayed linearly to 0; the log "
                                  "prints the rate in force at each step")
        warmup = c4.number_input("Warm-up steps", 0, 1_000_000, DEFAULTS.warmup_steps,
                                 key="train_warmup", help="the rate rises linearly from 0 to its "
                                 "peak over these steps (at most the job's steps)")
        c1, c2, c3, c4 = st.columns(4)
        every = c1.number_input("Evaluate every", 1, 100_000, DEFAULTS.eval_every, key="train_eval")
        aux = c2.number_input("λ (ASR weight)", 0.0, 10.0, DEFAULTS.aux_weight, key="train_aux")
        mgcm = c3.checkbox("MGCM projection", DEFAULTS.mgcm, key="train_mgcm")
        backend = c4.selectbox("Backend", BACKENDS, key="train_backend")
        c1, c2 = st.columns([1, 3])
        gpus = c1.number_input("GPUs (>1: torchrun)", 0, 64, 0, key="train_gpus")
        address = c2.selectbox("Ray cluster (ray backend)", allowed_ray_addresses(),
                               key="train_ray_address", placeholder="none configured",
                               help="RAY_ADDRESS, or the addresses in GRADLENS_RAY_ADDRESSES, "
                                    "as set where the app was started")
        b1, b2 = st.columns(2)
        mine = b1.form_submit_button("Train this plan", type="primary")
        shared = b2.form_submit_button("Train the fully shared baseline")
    if mine or shared:
        cfg = TrainConfig(steps=int(steps), batch_size=int(batch), learning_rate=float(lr),
                          warmup_steps=int(warmup), eval_every=int(every),
                          aux_weight=float(aux), mgcm=bool(mgcm))
        try:
            job = submit(path, cfg, backend, gpus=int(gpus), shared=shared,
                         ray_address=address or None)
            st.session_state["train_follow"] = job.id  # follow the new job
            st.success(f"Started {job.id} ({job.kind}) on {job.backend}. It runs on its own; "
                       "closing this tab does not stop it.")
        except (JobError, PlanError, ValueError) as exc:
            st.error(str(exc))


@st.fragment(run_every=2.0)
def jobs_section() -> None:
    """Every job with its progress and final test scores; refreshed every 2 s."""
    jobs = ui.jobs()
    if not jobs:
        st.info(f"No training jobs in `{ui.runs_dir()}` yet.")
        return
    rows = []
    for job in jobs:
        records = ui.job_records(job)
        final = final_scores(records, "test").get("all", {})
        start = start_scores(records, "test").get("all", {})
        rows.append({"job": job.id, "state": job.state, "plan": job.kind, "backend": job.backend,
                     "step": f"{last_step(records)} / {job.config.get('steps', '?')}",
                     "test chrF at start": start.get("chrf"),
                     "test BLEU": final.get("bleu"), "test chrF": final.get("chrf"),
                     "scores": "" if not final else "final" if job.state == "succeeded"
                     else "intermediate (last evaluation)",
                     "reason": job.reason})
        if job.active:
            total = max(1, job.config.get("steps", 1))
            speed = pace(records, total)
            st.progress(min(last_step(records) / total, 1.0),
                        text=f"{job.id}: {job.state}, step {last_step(records)} of {total}"
                             + (f" · {speed[0]:.2f} steps/s · about {ui.span(speed[1])} left"
                                if speed else ""))
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="train_jobs")


def follow(job_id: str) -> None:
    """One job's curves, log and cancel button; reruns alone every 2 s while the job is active."""
    job = ui.job(job_id)
    if job is None:
        return
    if not job.active and st.session_state.get("train_was_active") == job_id:
        st.session_state["train_was_active"] = None
        st.rerun(scope="app")  # it just ended: stop refreshing, show it in the comparison
    if job.active:
        st.session_state["train_was_active"] = job_id
    records = ui.job_records(job)
    st.markdown(f"**{job.id}** · {job.state}" + (f" · {job.reason}" if job.reason else ""))
    asked = job.active and st.session_state.get("train_cancel_asked") == job.id
    if job.active and not asked and st.button("Cancel this job", key="train_cancel"):
        st.session_state["train_cancel_asked"] = job.id
        asked = True
    if asked:
        st.warning(f"Cancel {job.id}? It stops at once; submitting the same plan and settings "
                   "again resumes it from its last checkpoint.")
        c1, c2 = st.columns(2)
        if c2.button("Keep it running", key="train_cancel_no"):
            st.session_state["train_cancel_asked"] = None
            st.rerun()
        if c1.button("Yes, cancel it", key="train_cancel_yes"):
            st.session_state["train_cancel_asked"] = None
            try:
                job = cancel(job.id)
                st.success(f"{job.id}: {job.state}")
            except JobError as exc:
                st.error(str(exc))
    fell = fell_below_start(records)
    if fell:
        st.warning(f"Test chrF fell from {fell[0]:.1f} (the starting model, step 0) to "
                   f"{fell[1]:.1f}, more than {FAR_BELOW:.0f} points: this training made the "
                   "model worse. Fewer steps, a lower learning rate or a longer warm-up.")
    sizes = {split: final_scores(records, split) or start_scores(records, split)
             for split in ("dev", "test")}
    sizes = {split: next((s["n"] for lang, s in per.items() if lang != "all" and "n" in s), None)
             for split, per in sizes.items()}
    last = final_step(records)
    spread = ui.test_intervals(str(job.dir()), last) if last else {}
    if spread:
        st.caption(f"Test at step {last}, all languages: " + ", ".join(
            f"{'BLEU' if m == 'bleu' else 'chrF'} {i.mean:.1f} [{i.low:.1f}, {i.high:.1f}]"
            for m, i in spread.items())
            + f" (95 % bootstrap intervals over its {spread['chrf'].n} utterances: how far the "
              "score moves with which utterances were scored; a training seed moves it too, "
              "which only an experiment's seeds measure).")
    if any(sizes.values()):
        st.caption("Scored on " + ", ".join(f"{n} {split}" for split, n in sizes.items() if n)
                   + " utterances per language: with so few, a language's score moves by "
                   "several points from one evaluation to the next by chance; read the "
                   "all-languages line, and an experiment's seeds, before one language.")
    steps, losses = loss_curves(records)
    if steps:
        st.plotly_chart(lines_figure(steps, losses, "Training loss", "step", "loss"),
                        key="train_loss")
    c1, c2 = st.columns(2)
    for column, metric, label in ((c1, "bleu", "BLEU"), (c2, "chrf", "chrF")):
        at, series = score_curves(records, "dev", metric)
        if at:
            column.plotly_chart(lines_figure(at, series, f"dev {label} per language", "step", label),
                                key=f"train_{metric}")
    st.code(logs(job, 15) or "(no log yet)", language=None, wrap_lines=True)


def compare_section(jobs) -> None:
    done = [j for j in jobs if j.state == "succeeded"]
    if not done:
        return
    st.subheader("Compare finished jobs")
    labels = {f"{j.kind} · {j.id}": j for j in done}
    chosen = st.multiselect("Jobs", list(labels), default=list(labels)[:4], key="train_compare")
    if not chosen:
        return
    finals = {label: final_scores(ui.job_records(labels[label]), "test") for label in chosen}
    for metric, name in (("bleu", "BLEU"), ("chrf", "chrF")):
        table = compare(finals, metric)
        fig = grouped_bars_figure(table, f"test {name} per language", name)
        st.plotly_chart(fig, key=f"train_cmp_{metric}")
        st.dataframe(table.round(2), key=f"train_cmp_table_{metric}")
        ui.downloads(fig, f"compare_{metric}", table, key=f"train_cmp_dl_{metric}")


run = ui.current_run()
if run is not None:
    with st.expander("Start a training job", expanded=True):
        start_section(run)
st.subheader("Jobs")
jobs_section()
jobs = ui.jobs()
if jobs:
    job_id = st.selectbox("Follow", [j.id for j in jobs], key="train_follow")
    active = next(j for j in jobs if j.id == job_id).active
    st.fragment(follow, run_every=2.0 if active else None)(job_id)
    compare_section(jobs)
