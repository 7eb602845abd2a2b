"""The training jobs as the app reads them: states brought up to date on every call, a broken
registry shown rather than raised."""

from __future__ import annotations

import streamlit as st


def jobs() -> list:
    """Every training job, states brought up to date (the registry is read on every call: jobs
    change under the app). A broken registry is shown, not raised."""
    from gradlens.jobs import JobError, refresh

    try:
        return refresh()
    except JobError as exc:
        st.error(str(exc))
        return []


def job(job_id: str):
    """One job, its state brought up to date (None if it is gone or the registry is broken)."""
    from gradlens.jobs import JobError, Registry, refresh_job

    try:
        registry = Registry()
        return refresh_job(registry, registry.get(job_id))
    except JobError:
        return None


def job_records(job) -> list[dict]:
    from gradlens.metrics import METRICS, read_metrics

    return read_metrics(job.dir() / METRICS)


@st.cache_data(max_entries=64, show_spinner=False)
def test_intervals(job_dir: str, step: int) -> dict:
    """BLEU and chrF over all languages of a job's test hypotheses at ``step``, each with its
    bootstrap interval over the utterances (a step's hypotheses never change once written;
    empty when they are gone)."""
    from pathlib import Path

    from gradlens.experiment import ExperimentError, test_rows
    from gradlens.significance import METRICS, utterance_interval

    try:
        rows = test_rows(Path(job_dir), step)
    except ExperimentError:
        return {}
    hyps, refs = [r["hyp"] for r in rows], [r["ref"] for r in rows]
    return {m: utterance_interval(hyps, refs, m) for m in METRICS}


def training_pace() -> float | None:
    """Steps per second of the job that finished last on this machine (its training steps,
    evaluations not counted): the pace an estimate of new work is made at; None before any."""
    from gradlens.metrics import pace

    done = sorted((j for j in jobs() if j.state == "succeeded" and j.finished),
                  key=lambda j: j.finished)
    for job in reversed(done):
        found = pace(job_records(job), total=0, last=10_000)
        if found:
            return found[0]
    return None


def follow_jobs(rows: list[dict], status, draw) -> None:
    """Draw ``draw(rows)`` of a group of jobs (an experiment's or a validation's ``status()``
    rows) and redraw it every 3 s while any is queued or running; the whole page reruns when a
    job finishes or all have ended, so the results drawn below it cannot lag behind."""
    active = any(r["state"] in ("queued", "running") for r in rows)
    succeeded = sum(r["state"] == "succeeded" for r in rows)

    @st.fragment(run_every=3.0 if active else None)
    def follow() -> None:
        now = status()
        draw(now)
        ended = active and not any(r["state"] in ("queued", "running") for r in now)
        if ended or sum(r["state"] == "succeeded" for r in now) != succeeded:
            st.rerun(scope="app")

    follow()
