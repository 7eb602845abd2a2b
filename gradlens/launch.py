"""Start gradlens work as detached processes that outlive the app, and find them again.

A launched probe is a directory ``runs/<name>/`` holding ``probe.log`` (its output) from the
moment it starts; ``grads.h5`` appears once the model is loaded, and its write lock tells
whether the probe still runs. Commands are argument lists, never shell strings.

    python -c "from gradlens.launch import start_probe; print(start_probe('x', ['spa', 'deu'], 4))"
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from gradlens.errors import ConfigError
from gradlens.paths import GRADS_FILE, runs_dir

PROBE_LOG = "probe.log"
PROBE_PID = "probe.pid"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ROOT = Path(__file__).resolve().parent.parent


def start_detached(argv: list[str], log: Path, cwd: Path = ROOT) -> int:
    """Run ``argv`` in its own session (so closing the app or tab does not stop it), output to
    ``log``; return its pid. A thread of this process reaps it when it ends: the app's server
    starts probes and jobs and lives on, and an unreaped child stays a zombie for its life."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return proc.pid


def reap_inherited_children() -> list[int]:
    """Reap, when they end, the children this process had before it was exec'd into (``gradlens
    app`` starts the demo's build, then becomes the server): their Popen objects are gone, so
    nothing else would. Returns their pids."""
    me = str(os.getpid())
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
        except OSError:  # ended while we looked
            continue
        if fields[1] == me:
            children.append(int(stat.parent.name))
    for pid in children:
        threading.Thread(target=_wait_pid, args=(pid,), name=f"reap-{pid}", daemon=True).start()
    return children


def _wait_pid(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # reaped elsewhere
        pass


def run_dir_for(name: str) -> Path:
    """``runs/<name>``, refusing names that could leave the runs directory."""
    if not _NAME.match(name):
        raise ConfigError(f"run name {name!r}: use letters, digits, '.', '_' or '-' (at most 64), "
                         "starting with a letter or digit")
    return runs_dir() / name


def start_probe(name: str, languages: list[str], steps: int, model: str = "tiny",
                batch_size: int = 4, sketch_dim: int = 512, train_steps_between: int = 0,
                corpus: str = "spoken-numbers") -> Path:
    """Start ``gradlens probe`` of an embedded ``corpus`` into ``runs/<name>`` as a detached
    process; return the run dir."""
    from gradlens.languages import CORPUS_LANGUAGES

    out = run_dir_for(name)
    if (out / GRADS_FILE).exists() or (out / PROBE_LOG).exists():
        raise ConfigError(f"run {name!r} already exists in {runs_dir()}; pick another name")
    if len(languages) < 2:
        raise ConfigError("pick at least two languages")
    if corpus not in CORPUS_LANGUAGES:
        raise ConfigError(f"corpus {corpus!r}: choose one of {list(CORPUS_LANGUAGES)}")
    unspoken = [x for x in languages if x not in CORPUS_LANGUAGES[corpus]]
    if unspoken:
        raise ConfigError(f"the {corpus} corpus does not speak {', '.join(unspoken)}; pick "
                          "others or the other corpus")
    argv = [sys.executable, "-m", "gradlens", "probe", "--model", model, "--languages", *languages,
            "--steps", str(int(steps)), "--batch-size", str(int(batch_size)),
            "--sketch-dim", str(int(sketch_dim)),
            "--train-steps-between", str(int(train_steps_between)), "--corpus", corpus,
            "--out", str(out.resolve())]
    pid = start_detached(argv, out / PROBE_LOG)
    (out / PROBE_PID).write_text(str(pid), encoding="utf-8")
    return out


def start_demo(out: Path) -> bool:
    """Start ``gradlens demo`` detached, building the demo run ``out``, unless it already runs;
    return whether it was started. Its log is the run's ``probe.log``, so the Runs page
    follows it."""
    try:
        if alive(int((out / PROBE_PID).read_text())):
            return False
    except (FileNotFoundError, ValueError):
        pass
    out.mkdir(parents=True, exist_ok=True)
    pid = start_detached([sys.executable, "-m", "gradlens", "demo"], out / PROBE_LOG)
    (out / PROBE_PID).write_text(str(pid), encoding="utf-8")
    return True


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


@dataclass(frozen=True)
class Starting:
    """A launched probe with no ``grads.h5`` yet: loading (or, for the demo, training) the
    model, or failed before writing. ``progress``: the last ``step N/M`` its log reports."""

    path: Path
    log_tail: str
    running: bool
    progress: tuple[int, int] | None = None


_STEP = re.compile(r"step (\d+)/(\d+)")


def last_progress(text: str) -> tuple[int, int] | None:
    """The last ``step N/M`` in a log (lines end with newlines or, from a progress bar, with
    carriage returns)."""
    found = _STEP.findall(text[-20_000:])
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def log_tail(path: Path, lines: int = 12) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def starting_probes() -> list[Starting]:
    """Launched probes whose run file does not exist yet."""
    root = runs_dir()
    if not root.is_dir():
        return []
    out = []
    for log in sorted(root.glob(f"*/{PROBE_LOG}")):
        if (log.parent / GRADS_FILE).exists():
            continue
        try:
            pid = int((log.parent / PROBE_PID).read_text())
        except (FileNotFoundError, ValueError):
            pid = -1
        try:
            progress = last_progress(log.read_text(encoding="utf-8", errors="replace"))
        except FileNotFoundError:
            progress = None
        out.append(Starting(log.parent, log_tail(log), pid > 0 and alive(pid), progress))
    return out

