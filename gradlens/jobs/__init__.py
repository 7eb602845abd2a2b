"""Training jobs: a SQLite registry in the runs directory, run locally or on a Ray cluster.

A job is a directory ``runs/<job>/`` holding ``plan.json`` and ``train.json`` (what it trains),
``job.json`` (its registry row, rewritten at every change), ``metrics.jsonl`` and ``log.txt``
(written by ``probes.training``). The registry ``runs/jobs.sqlite`` is the one record of
every job's state: queued, running, succeeded, failed (with the reason) or cancelled. The app
reads it and never owns a job, so jobs outlive the app.

Layout: ``registry`` (the SQLite registry, ``Job``, names), ``control`` (submit, refresh,
cancel, logs, through a ``Backend``), ``local`` and ``ray_cluster`` (the two backends). Adding a
backend (Slurm, KubeRay) is one class with ``start``, ``refresh``, ``stop`` and ``logs``.

Backends:

- ``local``: a detached supervisor process (its own session) waits for the machine's one local
  slot (a lock in the runs directory: two training processes on the same cores or GPU slow
  each other down many times over), runs the entry point as its child, records the start, and
  at the end the exit status (``killed by SIGKILL`` ...). Cancelling signals the supervisor's
  process group. A supervisor that vanished without a word (the whole
  group killed, the machine rebooted) is found by ``refresh`` and reported as failed.
- ``ray``: the same entry point submitted through the Ray Jobs API to the cluster at
  ``RAY_ADDRESS`` (e.g. ``http://127.0.0.1:8265``), with the plan and the config shipped as the
  job's working directory and the ``gradlens`` and ``probes`` packages as its modules; states
  come from Ray. Outputs go to the job directory's absolute path: on a multi-node cluster the
  runs directory must be a shared filesystem.

With more than one GPU asked for, the entry point is ``torchrun`` (``torch.distributed.run``)
with one process per GPU. Commands are argument lists (joined with ``shlex`` only where Ray
takes a string); plan and output paths must lie in the runs directory.

    python -m gradlens train --plan runs/demo/plan.json      # submit and follow
    python -m gradlens jobs                                  # list
"""

from gradlens.jobs.control import (BACKENDS, Backend, allowed_ray_addresses, backend_of, cancel,
                                   logs, refresh, refresh_job, submit)
from gradlens.jobs.local import LOCAL_SLOT, PROCESS_LOG, LocalBackend, entry_argv, supervising
from gradlens.jobs.registry import (ACTIVE, JOB_FILE, REGISTRY, Job, JobError, Registry, confined,
                                    default_name, plan_kind)

__all__ = ["ACTIVE", "BACKENDS", "JOB_FILE", "LOCAL_SLOT", "PROCESS_LOG", "REGISTRY", "Backend",
           "Job", "JobError", "LocalBackend", "Registry", "allowed_ray_addresses", "backend_of",
           "cancel", "confined", "default_name", "entry_argv", "logs", "plan_kind", "refresh",
           "refresh_job", "submit", "supervising"]
