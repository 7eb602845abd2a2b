"""The app served for real (a subprocess) and Debian's Chromium driven by Playwright.

Shared by the browser test and ``bench/app_latency.py``. Chromium is the system package
(``apt-get install chromium``), never a browser downloaded by a tool.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-extensions", "--no-first-run"]
PAGES = {"": "gradlens", "dendrograms": "Language dendrograms",
         "divergence": "Self and cross divergence", "alignment": "Subspace alignment",
         "conflicts": "ST–ASR gradient conflict", "sharing_plan": "Sharing plan",
         "training": "Training", "experiments": "Experiments", "validation": "Validation",
         "compare": "Compare runs"}


def chromium_path() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served(str):
    """A served app's URL, with the server's process id (``pid``)."""

    pid: int


def inotify_watchers(pid: int) -> int:
    """How many inotify instances process ``pid`` holds (a file watcher's open descriptors)."""
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if _link(fd) == "anon_inode:inotify")


def _link(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:  # closed while we looked
        return ""


@contextmanager
def served_app(runs: Path, log: Path, script: Path | None = None, args: list[str] = (),
               flags: list[str] = ()):
    """Serve ``app.py`` as ``gradlens app`` does (or another Streamlit ``script`` as plain
    ``streamlit run`` does, given ``args``) on a free loopback port over the runs in ``runs``;
    yield its URL (a ``Served``). Nothing is added to what those commands set themselves, but
    the server ``flags`` given (a bench's other arm)."""
    port = _free_port()
    env = {**os.environ, "GRADLENS_RUNS": str(runs), "HF_HUB_OFFLINE": "1"}
    serve = (["-m", "gradlens.serve"] if script is None  # what `gradlens app` runs
             else ["-m", "streamlit", "run", str(script)])
    cmd = [sys.executable, *serve,
           "--server.headless", "true", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--browser.gatherUsageStats", "false", *flags,
           *(["--", *args] if args else [])]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = Served(f"http://127.0.0.1:{port}")
    url.pid = proc.pid
    try:
        deadline = time.time() + 90
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the app did not start; its log:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    """A Playwright page in headless system Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True,
                                    args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def wait_rendered(page, timeout_ms: int = 60_000) -> None:
    """Until Streamlit has finished running the script (no 'running' status, app present)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        """() => {
            const app = document.querySelector('[data-testid="stApp"]');
            return app && app.getAttribute('data-test-script-state') === 'notRunning';
        }""", timeout=timeout_ms)
    page.wait_for_load_state("networkidle", timeout=timeout_ms)
    # widgets first paint as skeletons while their code loads
    page.wait_for_function(
        "() => !document.querySelector('[data-testid*=\"Skeleton\"]')", timeout=timeout_ms)
