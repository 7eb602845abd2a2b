"""Training jobs: a SQLite registry in the runs directory, run locally or on a Ray cluster.

A job is a directory ``runs/<job>/`` holding ``plan.json`` and ``train.json`` (what it trains),
``job.json`` (its registry row, rewritten at every change), ``metrics.jsonl`` and ``log.txt``
(written by ``gradlens.train.loop``). The registry ``runs/jobs.sqlite`` is the one record of
every job's state: queued, running, succeeded, failed (with the reason) or cancelled. The app
reads it and never owns a job, so jobs outlive the app.

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

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from gradlens.errors import GradlensError
from gradlens.launch import ROOT, alive, log_tail, run_dir_for, start_detached
from gradlens.plan import load_plan, new_plan
from gradlens.store import runs_dir
from gradlens.train.config import LOG

REGISTRY = "jobs.sqlite"
LOCAL_SLOT = ".local-slot.lock"
JOB_FILE = "job.json"
PROCESS_LOG = "process.log"
ACTIVE = ("queued", "running")
BACKENDS = ("local", "ray")
_RAY_STATES = {"PENDING": "queued", "RUNNING": "running", "SUCCEEDED": "succeeded",
               "FAILED": "failed", "STOPPED": "cancelled"}
_COLUMNS = ("id", "backend", "state", "reason", "kind", "plan_source", "created", "started",
            "finished", "pid", "worker_pid", "ray_address", "ray_id", "gpus", "config")


class JobError(GradlensError):
    """A job that cannot be submitted, found or controlled; says which job and why."""


@dataclass(frozen=True)
class Job:
    """One registry row. ``kind`` is the plan's: shared, proposed or edited."""

    id: str
    backend: str
    state: str
    reason: str
    kind: str
    plan_source: str
    created: float
    started: float | None
    finished: float | None
    pid: int | None
    worker_pid: int | None
    ray_address: str | None
    ray_id: str | None
    gpus: int
    config: dict

    def dir(self, root: Path | None = None) -> Path:
        return (root or runs_dir()) / self.id

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


# -- the registry -----------------------------------------------------------------------------
class Registry:
    """The jobs of one runs directory, in ``jobs.sqlite`` (WAL; safe across processes)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else runs_dir()
        self.path = self.root / REGISTRY

    def _connect(self) -> sqlite3.Connection:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            con = sqlite3.connect(self.path, timeout=30)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(f"CREATE TABLE IF NOT EXISTS jobs ({', '.join(_COLUMNS)}, "
                        "PRIMARY KEY (id))")
        except sqlite3.DatabaseError as exc:
            raise JobError(f"{self.path}: not a readable job registry ({exc}); move it aside "
                           "to start a new one (the job directories are kept)") from None
        con.row_factory = sqlite3.Row
        return con

    def _job(self, row) -> Job:
        """A row as a ``Job``; its id is checked again (a tampered row must not lead a path out
        of the runs directory)."""
        d = dict(row)
        try:
            run_dir_for(str(d["id"]))
        except ValueError as exc:
            raise JobError(f"{self.path}: a job row has an id that is no job name ({exc})") from None
        d["config"] = json.loads(d["config"] or "{}")
        return Job(**d)

    def jobs(self) -> list[Job]:
        """Every job, newest first (rows whose id is no job name are left out)."""
        out = []
        with self._connect() as con:
            for row in con.execute("SELECT * FROM jobs ORDER BY created DESC"):
                try:
                    out.append(self._job(row))
                except JobError:
                    continue
        return out

    def get(self, job_id: str) -> Job:
        with self._connect() as con:
            row = con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobError(f"no job {job_id!r} in {self.path}")
        return self._job(row)

    def put(self, job: Job) -> Job:
        d = dataclasses.asdict(job)
        d["config"] = json.dumps(d["config"])
        with self._connect() as con:
            con.execute(f"INSERT OR REPLACE INTO jobs VALUES ({', '.join('?' * len(_COLUMNS))})",
                        [d[c] for c in _COLUMNS])
        self._mirror(job)
        return job

    def update(self, job_id: str, **fields) -> Job:
        unknown = set(fields) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown job field(s) {sorted(unknown)}")
        with self._connect() as con:
            con.execute(f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                        [*fields.values(), job_id])
        job = self.get(job_id)
        self._mirror(job)
        return job

    def _mirror(self, job: Job) -> None:
        directory = job.dir(self.root)
        if directory.is_dir():
            tmp = directory / (JOB_FILE + ".tmp")
            tmp.write_text(json.dumps(dataclasses.asdict(job), indent=2), encoding="utf-8")
            tmp.replace(directory / JOB_FILE)


# -- submitting -------------------------------------------------------------------------------
def confined(path: str | Path, root: Path) -> Path:
    """``path`` resolved, refused unless it lies inside the runs directory ``root``."""
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise JobError(f"{path}: plans and outputs must lie in the runs directory {root}; "
                       "copy the plan there first")
    return resolved


def plan_kind(plan: dict) -> str:
    """``shared`` (no split module), ``edited`` (a person changed a module) or ``proposed``."""
    if not plan["modules"]:
        return "shared"
    return "edited" if any(e.get("edited") for e in plan["modules"].values()) else "proposed"


def default_name(plan: dict, config: dict, source: Path) -> str:
    """The same plan and config always name the same job, so repeating a command resumes it."""
    digest = hashlib.sha256(json.dumps([plan["model"], plan["languages"], plan["modules"],
                                        config], sort_keys=True).encode()).hexdigest()[:8]
    return f"train-{source.parent.name}-{plan_kind(plan)}-{digest}"[:64]


RAY_ALLOWED_ENV = "GRADLENS_RAY_ADDRESSES"  # comma-separated, besides RAY_ADDRESS


def allowed_ray_addresses() -> list[str]:
    """The Ray clusters the app may connect its server to: ``RAY_ADDRESS`` and the addresses
    listed in ``GRADLENS_RAY_ADDRESSES``, set by whoever started the app. A browser user picks
    among them and never types a URL for the server to reach."""
    found = [os.environ.get("RAY_ADDRESS", ""),
             *os.environ.get(RAY_ALLOWED_ENV, "").split(",")]
    return list(dict.fromkeys(a.strip() for a in found if a.strip()))


def entry_argv(spec: str, out: str, gpus: int, python: str = sys.executable) -> list[str]:
    """The training entry point; ``torchrun`` with one process per GPU when ``gpus > 1``."""
    if gpus > 1:
        return [python, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={gpus}", "-m", "gradlens.train", spec, "--out", out]
    return [python, "-m", "gradlens.train", spec, "--out", out]


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


def submit(plan_path: str | Path, config, backend: str = "local", name: str | None = None,
           gpus: int = 0, shared: bool = False, ray_address: str | None = None) -> Job:
    """Register a training job for the plan at ``plan_path`` and start it.

    ``shared=True`` trains the fully shared baseline with the plan's model and languages.
    Submitting a job that failed or was cancelled, with the same plan and config, resumes it; a
    job that succeeded is never touched again.
    """
    from gradlens.train.config import CONFIG, PLAN, write_spec

    root = runs_dir()
    registry = Registry(root)
    if backend not in BACKENDS:
        raise JobError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if int(gpus) < 0:
        raise JobError(f"gpus must be 0 or more, got {gpus}")
    source = confined(plan_path, root)
    plan = load_plan(source)
    if shared:
        plan = {**new_plan(plan["model"], plan["languages"], plan.get("source_run")), "modules": {}}
    cfg = dataclasses.asdict(config)
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
            try:
                same = (json.loads((directory / CONFIG).read_text()) == cfg
                        and json.loads((directory / PLAN).read_text())["modules"]
                        == plan["modules"])
            except FileNotFoundError:  # its directory was removed: start afresh
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
        if backend == "local":
            argv = [sys.executable, "-m", "gradlens.jobs", "supervise", str(directory.resolve())]
            pid = start_detached(argv, directory / PROCESS_LOG)
            return registry.update(job_id, pid=pid)
        return registry.update(job_id, ray_id=_ray_submit(job, directory, address))
    except Exception as exc:
        registry.update(job_id, state="failed", reason=f"could not start: {exc}",
                        finished=time.time())
        raise JobError(f"job {job_id}: could not start on {backend} ({exc})") from exc


# -- the local backend ------------------------------------------------------------------------
def _ended(returncode: int) -> tuple[str, str]:
    if returncode == 0:
        return "succeeded", ""
    if returncode < 0:
        sig = signal.Signals(-returncode)
        return "failed", f"killed by {sig.name} (signal {-returncode})"
    return "failed", f"exit status {returncode}"


def _last_error(directory: Path) -> str:
    """The last line of the traceback in ``log.txt`` or the process log, if any."""
    for name in (LOG, PROCESS_LOG):
        lines = [x for x in log_tail(directory / name, 40).splitlines() if x.strip()]
        if lines and ("Error" in lines[-1] or "Exception" in lines[-1]):
            return lines[-1].strip()
    return ""


def _die_with_parent() -> None:
    """In the worker, before it runs: Linux sends it SIGKILL when its supervisor dies."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def supervise(directory: Path) -> int:
    """Run a local job's entry point as a child and record how it ends (the detached part)."""
    registry = Registry(directory.parent)
    job = registry.get(directory.name)
    argv = entry_argv(str(directory), str(directory), job.gpus)
    cancelled, child = False, None

    def on_term(signum, frame):
        nonlocal cancelled
        cancelled = True
        if child is None:  # still waiting for the slot
            registry.update(job.id, state="cancelled", reason="cancelled while queued",
                            finished=time.time())
            os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    slot = open(directory.parent / LOCAL_SLOT, "a")
    fcntl.flock(slot, fcntl.LOCK_EX)  # queued until the job before it ends; freed at our exit
    # the worker dies with its supervisor (SIGKILL on the parent's death: no trainer left
    # running unwatched), and holds the slot's lock too, so no job starts beside it
    child = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, pass_fds=(slot.fileno(),),
                             preexec_fn=_die_with_parent)
    registry.update(job.id, state="running", started=time.time(), worker_pid=child.pid, reason="")
    code = child.wait()
    if cancelled:
        state, reason = "cancelled", "cancelled by request"
    else:
        state, reason = _ended(code)
        detail = _last_error(directory) if code > 0 else ""
        reason = f"{reason}: {detail}" if detail else reason
    registry.update(job.id, state=state, reason=reason, finished=time.time())
    return 0


# -- the Ray backend --------------------------------------------------------------------------
def _ray_client(address: str):
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except Exception as exc:  # ConnectionError, ValueError, RuntimeError, by Ray version
        raise JobError(f"cannot reach the Ray cluster at {address} ({exc})") from None


def _ray_submit(job: Job, directory: Path, address: str) -> str:
    """Submit the entry point; the plan and config travel as the working directory."""
    from gradlens.train.config import CONFIG, PLAN

    submission = f"{job.id}-{int(time.time())}"
    argv = entry_argv(".", str(directory.resolve()), job.gpus, python="python")
    with tempfile.TemporaryDirectory(prefix="gradlens-spec-") as spec:  # uploaded by submit_job
        for name in (CONFIG, PLAN):
            (Path(spec) / name).write_bytes((directory / name).read_bytes())
        return _ray_client(address).submit_job(
            entrypoint=shlex.join(argv), submission_id=submission,
            runtime_env={"working_dir": spec,
                         "py_modules": [str(ROOT / "gradlens"), str(ROOT / "probes")]},
            entrypoint_num_gpus=job.gpus or None, entrypoint_num_cpus=1)


def _ray_refresh(registry: Registry, job: Job) -> Job:
    client = _ray_client(job.ray_address)
    info = client.get_job_info(job.ray_id)
    state = _RAY_STATES.get(str(info.status.value), job.state)
    if state == job.state:
        return job
    fields = {"state": state}
    if state == "running":
        fields["started"] = (info.start_time or time.time() * 1000) / 1000
    if state in ("succeeded", "failed", "cancelled"):
        fields["finished"] = (info.end_time or time.time() * 1000) / 1000
        fields["reason"] = (info.message or "").strip() if state != "succeeded" else ""
    return registry.update(job.id, **fields)


# -- following and controlling ----------------------------------------------------------------
def supervising(job: Job, root: Path | None = None) -> bool:
    """Whether ``job.pid`` is this job's supervisor: alive, and its command line names
    ``gradlens.jobs supervise`` and the job's directory. A pid stored before a reboot may
    belong to another process by now; it must never be signalled as the job's."""
    if not job.pid or not alive(job.pid):
        return False
    try:
        argv = Path(f"/proc/{job.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    words = [a.decode(errors="replace") for a in argv]
    directory = str(job.dir(root).resolve())
    return "gradlens.jobs" in words and "supervise" in words and directory in words


def refresh_job(registry: Registry, job: Job) -> Job:
    """``job`` with its state brought up to date, when it is active."""
    if not job.active:
        return job
    if job.backend == "local" and job.pid and not supervising(job, registry.root):
        job = registry.get(job.id)  # the supervisor may have just written the end
        if job.active:
            job = registry.update(job.id, state="failed", finished=time.time(),
                                  reason=f"the job's process (pid {job.pid}) is gone without "
                                         "reporting an end: killed with its whole process "
                                         "group, or the machine restarted")
    elif job.backend == "ray" and job.ray_id:
        try:
            job = _ray_refresh(registry, job)
        except Exception:  # cluster unreachable: keep the last known state
            pass
    return job


def refresh(registry: Registry | None = None) -> list[Job]:
    """Every job, with the states of active ones brought up to date; newest first."""
    registry = registry or Registry()
    return [refresh_job(registry, job) for job in registry.jobs()]


def cancel(job_id: str, registry: Registry | None = None, wait: float = 10.0) -> Job:
    """Stop a job: SIGTERM to a local job's process group (SIGKILL after ``wait`` s), or Ray's
    stop; the registry then says cancelled."""
    registry = registry or Registry()
    job = registry.get(job_id)
    if not job.active:
        raise JobError(f"job {job_id} is {job.state}, not running")
    if job.backend == "ray":
        _ray_client(job.ray_address).stop_job(job.ray_id)
        deadline = time.time() + wait
        while time.time() < deadline:
            job = _ray_refresh(registry, job)
            if not job.active:
                return job
            time.sleep(0.5)
        return job
    if supervising(job, registry.root):
        os.killpg(job.pid, signal.SIGTERM)
        deadline = time.time() + wait
        while time.time() < deadline and alive(job.pid):
            time.sleep(0.1)
        if alive(job.pid):
            os.killpg(job.pid, signal.SIGKILL)
    job = registry.get(job_id)
    if job.active:
        job = registry.update(job_id, state="cancelled", reason="cancelled by request",
                              finished=time.time())
    return job


def logs(job: Job, lines: int = 40) -> str:
    """The end of the job's ``log.txt``; with nothing there yet, its process or Ray log."""
    directory = job.dir()
    text = log_tail(directory / LOG, lines)
    if text:
        return text
    if job.backend == "ray" and job.ray_id:
        try:
            return "\n".join(_ray_client(job.ray_address).get_job_logs(job.ray_id)
                             .splitlines()[-lines:])
        except Exception as exc:
            return f"(cannot reach Ray at {job.ray_address}: {exc})"
    return log_tail(directory / PROCESS_LOG, lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m gradlens.jobs supervise JOB_DIR``: the local backend's detached supervisor."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "supervise":
        print("usage: python -m gradlens.jobs supervise JOB_DIR", file=sys.stderr)
        return 2
    return supervise(Path(argv[1]))


if __name__ == "__main__":
    sys.exit(main())
