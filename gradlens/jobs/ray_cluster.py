"""The Ray backend: the training entry point submitted through the Ray Jobs API.

The plan and the config travel as the job's working directory and the ``gradlens`` and
``probes`` packages as its modules; states come from Ray (``PENDING``, ``RUNNING``,
``SUCCEEDED``, ``FAILED``, ``STOPPED``). Outputs go to the job directory's absolute path: on a
multi-node cluster the runs directory must be a shared filesystem. The entrypoint is Ray's one
string: ``shlex.join`` of the argument list.

    RAY_ADDRESS=http://127.0.0.1:8265 python -m gradlens train --plan runs/demo/plan.json --backend ray
"""

from __future__ import annotations

import shlex
import tempfile
import time
from pathlib import Path

from gradlens.jobs.local import entry_argv
from gradlens.jobs.registry import Job, JobError, Registry
from gradlens.launch import ROOT

_STATES = {"PENDING": "queued", "RUNNING": "running", "SUCCEEDED": "succeeded",
           "FAILED": "failed", "STOPPED": "cancelled"}


def client(address: str):
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except Exception as exc:  # ConnectionError, ValueError, RuntimeError, by Ray version
        raise JobError(f"cannot reach the Ray cluster at {address} ({exc})") from None


class RayBackend:
    """A Ray cluster's Jobs API at the job's ``ray_address``."""

    name = "ray"

    def start(self, job: Job, directory: Path) -> dict:
        from gradlens.train.config import CONFIG, PLAN

        submission = f"{job.id}-{int(time.time())}"
        argv = entry_argv(".", str(directory.resolve()), job.gpus, python="python")
        with tempfile.TemporaryDirectory(prefix="gradlens-spec-") as spec:  # uploaded by submit
            for name in (CONFIG, PLAN):
                (Path(spec) / name).write_bytes((directory / name).read_bytes())
            ray_id = client(job.ray_address).submit_job(
                entrypoint=shlex.join(argv), submission_id=submission,
                runtime_env={"working_dir": spec,
                             "py_modules": [str(ROOT / "gradlens"), str(ROOT / "probes")]},
                entrypoint_num_gpus=job.gpus or None, entrypoint_num_cpus=1)
        return {"ray_id": ray_id}

    def _update(self, registry: Registry, job: Job) -> Job:
        info = client(job.ray_address).get_job_info(job.ray_id)
        state = _STATES.get(str(info.status.value), job.state)
        if state == job.state:
            return job
        fields = {"state": state}
        if state == "running":
            fields["started"] = (info.start_time or time.time() * 1000) / 1000
        if state in ("succeeded", "failed", "cancelled"):
            fields["finished"] = (info.end_time or time.time() * 1000) / 1000
            fields["reason"] = (info.message or "").strip() if state != "succeeded" else ""
        return registry.update(job.id, **fields)

    def refresh(self, registry: Registry, job: Job) -> Job:
        if not job.ray_id:
            return job
        try:
            return self._update(registry, job)
        except (JobError, ConnectionError, OSError, RuntimeError, ValueError):
            return job  # cluster unreachable: keep the last known state

    def stop(self, registry: Registry, job: Job, wait: float) -> Job:
        client(job.ray_address).stop_job(job.ray_id)
        deadline = time.time() + wait
        while time.time() < deadline:
            job = self._update(registry, job)
            if not job.active:
                return job
            time.sleep(0.5)
        return job

    def logs(self, job: Job, lines: int) -> str:
        if not job.ray_id:
            return ""
        try:
            return "\n".join(client(job.ray_address).get_job_logs(job.ray_id).splitlines()[-lines:])
        except (JobError, ConnectionError, OSError, RuntimeError, ValueError) as exc:
            return f"(cannot reach Ray at {job.ray_address}: {exc})"
