"""The local backend: a detached supervisor per job, one job at a time on this machine.

``start`` runs ``python -m gradlens.jobs supervise JOB_DIR -- ENTRY...`` in its own session.
The supervisor waits for the machine's one local slot (a lock in the runs directory: two
training processes on the same cores or GPU slow each other down many times over), runs the
entry point as its child, records the start, and at the end the exit status (``killed by
SIGKILL`` ...). The child dies with its supervisor (Linux ``PR_SET_PDEATHSIG``) and holds the
slot's lock too, so no trainer runs unwatched. Cancelling signals the supervisor's process group,
after checking that the stored pid's command line is that job's supervisor. A supervisor that
vanished without a word (the whole group killed, the machine rebooted) is found by ``refresh``
and reported as failed.

The entry point is a parameter (``LocalBackend(entry=...)``): training by default, anything in
tests that need a process to supervise, kill or queue.

    python -m gradlens.jobs supervise runs/<job> -- python -m probes.training runs/<job> --out runs/<job>
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from gradlens.jobs.registry import Job, Registry
from gradlens.launch import ROOT, alive, log_tail, start_detached
from gradlens.train.config import LOG

LOCAL_SLOT = ".local-slot.lock"
PROCESS_LOG = "process.log"


def entry_argv(spec: str, out: str, gpus: int, python: str = sys.executable) -> list[str]:
    """The training entry point; ``torchrun`` with one process per GPU when ``gpus > 1``."""
    if gpus > 1:
        return [python, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={gpus}", "-m", "probes.training", spec, "--out", out]
    return [python, "-m", "probes.training", spec, "--out", out]


def training_entry(job: Job, directory: Path) -> list[str]:
    return entry_argv(str(directory), str(directory), job.gpus)


class LocalBackend:
    """Detached supervisors on this machine (see the module's description)."""

    name = "local"

    def __init__(self, entry: Callable[[Job, Path], list[str]] = training_entry):
        self.entry = entry

    def start(self, job: Job, directory: Path) -> dict:
        argv = [sys.executable, "-m", "gradlens.jobs", "supervise", str(directory.resolve()),
                "--", *self.entry(job, directory)]
        return {"pid": start_detached(argv, directory / PROCESS_LOG)}

    def refresh(self, registry: Registry, job: Job) -> Job:
        if not job.pid or supervising(job, registry.root):
            return job
        job = registry.get(job.id)  # the supervisor may have just written the end
        if job.active:
            job = registry.update(job.id, state="failed", finished=time.time(),
                                  reason=f"the job's process (pid {job.pid}) is gone without "
                                         "reporting an end: killed with its whole process "
                                         "group, or the machine restarted")
        return job

    def stop(self, registry: Registry, job: Job, wait: float) -> Job:
        if supervising(job, registry.root):
            os.killpg(job.pid, signal.SIGTERM)
            deadline = time.time() + wait
            while time.time() < deadline and alive(job.pid):
                time.sleep(0.1)
            if alive(job.pid):
                os.killpg(job.pid, signal.SIGKILL)
        job = registry.get(job.id)
        if job.active:
            job = registry.update(job.id, state="cancelled", reason="cancelled by request",
                                  finished=time.time())
        return job

    def logs(self, job: Job, lines: int) -> str:
        return log_tail(job.dir() / PROCESS_LOG, lines)


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


# -- the supervisor (the detached part) --------------------------------------------------------
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


def supervise(directory: Path, argv: list[str]) -> int:
    """Run ``argv`` as the job's worker once the local slot is free, and record how it ends."""
    registry = Registry(directory.parent)
    job = registry.get(directory.name)
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
