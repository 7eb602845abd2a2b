"""The job registry: ``runs/jobs.sqlite`` (WAL; safe across processes), one row per job, mirrored
into each job directory's ``job.json``; and the names and kinds of jobs.

    python -c "from gradlens.jobs.registry import Registry; print(Registry().jobs())"
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from gradlens.errors import GradlensError
from gradlens.launch import run_dir_for
from gradlens.paths import runs_dir
from gradlens.plan import SharingPlan

REGISTRY = "jobs.sqlite"
JOB_FILE = "job.json"
ACTIVE = ("queued", "running")
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
            return self._fetch(con, job_id)

    def _fetch(self, con: sqlite3.Connection, job_id: str) -> Job:
        row = con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobError(f"no job {job_id!r} in {self.path}")
        return self._job(row)

    def put(self, job: Job) -> Job:
        d = dataclasses.asdict(job)
        d["config"] = json.dumps(d["config"])
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            con.execute(f"INSERT OR REPLACE INTO jobs VALUES ({', '.join('?' * len(_COLUMNS))})",
                        [d[c] for c in _COLUMNS])
            self._mirror(job)
        return job

    def update(self, job_id: str, **fields) -> Job:
        """Change ``fields`` of one job. Its ``job.json`` is written while the registry's write
        lock is held, before the change commits: a reader who sees the change in the registry
        finds it in the file too, and two processes' changes reach the file in the order they
        reach the registry."""
        unknown = set(fields) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown job field(s) {sorted(unknown)}")
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            con.execute(f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                        [*fields.values(), job_id])
            job = self._fetch(con, job_id)
            self._mirror(job)
        return job

    def _mirror(self, job: Job) -> None:
        directory = job.dir(self.root)
        if directory.is_dir():
            tmp = directory / (JOB_FILE + ".tmp")
            tmp.write_text(json.dumps(dataclasses.asdict(job), indent=2), encoding="utf-8")
            tmp.replace(directory / JOB_FILE)


def confined(path: str | Path, root: Path) -> Path:
    """``path`` resolved, refused unless it lies inside the runs directory ``root``."""
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise JobError(f"{path}: plans and outputs must lie in the runs directory {root}; "
                       "copy the plan there first")
    return resolved


def plan_kind(plan: SharingPlan) -> str:
    """``shared`` (no split module), ``edited`` (a person changed a module) or ``proposed``."""
    if not plan.modules:
        return "shared"
    return "edited" if plan.edited else "proposed"


def default_name(plan: SharingPlan, config: dict, source: Path) -> str:
    """The same plan and config always name the same job, so repeating a command resumes it."""
    d = plan.to_dict()
    digest = hashlib.sha256(json.dumps([d["model"], d["languages"], d["modules"], config],
                                       sort_keys=True).encode()).hexdigest()[:8]
    return f"train-{source.parent.name}-{plan_kind(plan)}-{digest}"[:64]
