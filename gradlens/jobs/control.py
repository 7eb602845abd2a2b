"""Submitting, following and controlling jobs, whatever runs them (``Backend``).

    python -c "from gradlens.jobs import refresh; print(refresh())"
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Protocol

from gradlens.jobs.local import LocalBackend
from gradlens.jobs.ray_cluster import RayBackend
from gradlens.jobs.registry import Job, JobError, Registry, confined, default_name, plan_kind
from gradlens.launch import log_tail, run_dir_for
from gradlens.plan import SharingPlan, load_plan, new_plan
from gradlens.paths import runs_dir
from gradlens.train.config import LOG

BACKENDS = ("local", "ray")


class Backend(Protocol):
    """Where jobs run. ``start`` returns the registry fields that find the job again (``pid``,
    ``ray_id``); ``refresh`` brings an active job's state up to date; ``stop`` ends it and
    records that; ``logs`` is the backend's own log of it, read when the job wrote none."""

    name: str

    def start(self, job: Job, directory: Path) -> dict: ...

    def refresh(self, registry: Registry, job: Job) -> Job: ...

    def stop(self, registry: Registry, job: Job, wait: float) -> Job: ...

    def logs(self, job: Job, lines: int) -> str: ...


def backend_of(name: str) -> Backend:
    if name not in BACKENDS:
        raise JobError(f"backend must be one of {BACKENDS}, got {name!r}")
    return LocalBackend() if name == "local" else RayBackend()


RAY_ALLOWED_ENV = "GRADLENS_RAY_ADDRESSES"  # comma-separated, besides RAY_ADDRESS


def allowed_ray_addresses() -> list[str]:
    """The Ray clusters the app may connect its server to: ``RAY_ADDRESS`` and the addresses
    listed in ``GRADLENS_RAY_ADDRESSES``, set by whoever started the app. A browser user picks
    among them and never types a URL for the server to reach."""
    found = [os.environ.get("RAY_ADDRESS", ""),
             *os.environ.get(RAY_ALLOWED_ENV, "").split(",")]
    return list(dict.fromkeys(a.strip() for a in found if a.strip()))


def source_modules(plan: SharingPlan) -> list[str] | None:
    """The modules of the run the plan was proposed from, when that run is in the runs
    directory (only there: a plan's ``source_run`` never leads a read outside it)."""
    from gradlens.store import Run, RunError

    source = plan.source_run
    if not source:
        return None
    try:
        with Run(runs_dir() / Path(source).name) as run:
            return list(run.modules.name)
    except RunError:
        return None


@contextlib.contextmanager
def _submit_lock(root: Path):
    """An exclusive ``flock`` on ``<runs>/jobs.submit.lock`` (blocks until the holder is done)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "jobs.submit.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def submit(plan_path: str | Path, config, backend: str | Backend = "local",
           name: str | None = None, gpus: int = 0, shared: bool = False,
           ray_address: str | None = None) -> Job:
    """Register a training job for the plan at ``plan_path`` and start it on ``backend`` (a
    name in ``BACKENDS``, or a ``Backend``, e.g. a ``LocalBackend`` with another entry point).

    ``shared=True`` trains the fully shared baseline with the plan's model and languages.
    Submitting a job that failed or was cancelled, with the same plan and config, resumes it; a
    job that succeeded is never touched again.
    """
    from gradlens.train.config import CONFIG, PLAN, comparable, write_spec

    root = runs_dir()
    registry = Registry(root)
    runner = backend if not isinstance(backend, str) else backend_of(backend)
    backend = runner.name
    if int(gpus) < 0:
        raise JobError(f"gpus must be 0 or more, got {gpus}")
    source = confined(plan_path, root)
    plan = load_plan(source)
    known = source_modules(plan)
    if known is not None:  # an unknown module is refused now, not when the job starts
        plan.check(known, str(source))
    if shared:
        plan = new_plan(plan.model, plan.languages, plan.source_run)
    cfg = comparable(dataclasses.asdict(config))
    job_id = name or default_name(plan, cfg, source)
    directory = run_dir_for(job_id)  # refuses names that could leave the runs directory
    address = ray_address or os.environ.get("RAY_ADDRESS")
    if backend == "ray" and not address:
        raise JobError("the ray backend needs the cluster's address: set RAY_ADDRESS "
                       "(e.g. http://127.0.0.1:8265) or pass --ray-address")
    # check-then-register under one lock: two submits of the same job can never both pass
    with _submit_lock(root):
        try:
            old = registry.get(job_id)
        except JobError:
            old = None
        if old is not None:
            if old.active:
                raise JobError(f"job {job_id} is {old.state}; follow it with "
                               f"`python -m gradlens jobs logs {job_id}` or cancel it first")
            if old.state == "succeeded":  # a finished job's record and plan copy never change
                raise JobError(f"job {job_id} has already succeeded; its record stays as it is "
                               "(pass --name to train this plan again as a new job)")
            if (directory / CONFIG).exists() and (directory / PLAN).exists():
                same = (comparable(json.loads((directory / CONFIG).read_text())) == cfg
                        and load_plan(directory / PLAN).modules == plan.modules)
            else:  # its directory was removed: start afresh
                same = True
            if not same:
                raise JobError(f"job {job_id} exists with another plan or config; "
                               "pick another name")
        elif directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise JobError(f"{directory} exists and is not a job; pick another name")
        write_spec(directory, config, plan)
        job = registry.put(Job(
            id=job_id, backend=backend, state="queued", reason="", kind=plan_kind(plan),
            plan_source=str(source.relative_to(root.resolve())),
            created=old.created if old else time.time(), started=None, finished=None, pid=None,
            worker_pid=None, ray_address=address if backend == "ray" else None, ray_id=None,
            gpus=int(gpus), config=cfg))
    try:
        return registry.update(job_id, **runner.start(job, directory))
    except Exception as exc:  # whatever stopped it, the registry must not say queued
        registry.update(job_id, state="failed", reason=f"could not start: {exc}",
                        finished=time.time())
        raise JobError(f"job {job_id}: could not start on {backend} ({exc})") from exc


def refresh_job(registry: Registry, job: Job) -> Job:
    """``job`` with its state brought up to date, when it is active."""
    return backend_of(job.backend).refresh(registry, job) if job.active else job


def refresh(registry: Registry | None = None) -> list[Job]:
    """Every job, with the states of active ones brought up to date; newest first."""
    registry = registry or Registry()
    return [refresh_job(registry, job) for job in registry.jobs()]


def cancel(job_id: str, registry: Registry | None = None, wait: float = 10.0) -> Job:
    """Stop a job (a local one: SIGTERM to its supervisor's group, SIGKILL after ``wait`` s;
    a Ray one: Ray's stop); the registry then says cancelled."""
    registry = registry or Registry()
    job = registry.get(job_id)
    if not job.active:
        raise JobError(f"job {job_id} is {job.state}, not running")
    return backend_of(job.backend).stop(registry, job, wait)


def logs(job: Job, lines: int = 40) -> str:
    """The end of the job's ``log.txt``; with nothing there yet, its backend's log of it."""
    return log_tail(job.dir() / LOG, lines) or backend_of(job.backend).logs(job, lines)
