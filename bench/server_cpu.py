"""The app server's CPU while a browser tab is open on a page: gradlens' server as shipped (no
file watcher) beside the same server with Streamlit's watcher on, the default before issue 37,
side by side in one run. Reads the server process's user+system time from /proc over a window.

    python bench/server_cpu.py --serve runs/demo [--seconds 30] [--page divergence]

The watcher walks the project folder (.venv, runs/) and re-walks it at each inotify overflow,
so the figure depends on how much lies there; the bench prints the folder's directory count.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import browser_page, chromium_path, served_app, wait_rendered  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def share_of_a_core(pid: int, seconds: float) -> float:
    start, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - start) / (time.monotonic() - t0)


def measure(runs: Path, flags: list[str], page: str, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        with served_app(runs, Path(tmp) / "app.log", flags=flags) as url:
            time.sleep(3)
            no_tab = share_of_a_core(url.pid, seconds)
            with browser_page() as tab:
                tab.goto(f"{url}/{page}")
                wait_rendered(tab)
                time.sleep(3)
                with_tab = share_of_a_core(url.pid, seconds)
    return {"no_tab": no_tab, "tab_open": with_tab}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", default="runs/demo", help="a run directory to serve")
    parser.add_argument("--page", default="divergence")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", default="bench/results/server_cpu.json")
    args = parser.parse_args()
    if chromium_path() is None:
        print("needs Debian's chromium (tests/setup.sh installs it)", file=sys.stderr)
        return 2
    run = Path(args.serve).resolve()
    folders = sum(len(d) for _, d, _ in os.walk(ROOT))
    arms = {"shipped (no watcher)": [], "watcher on (before)": ["--server.fileWatcherType", "auto"]}
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        runs.mkdir()
        (runs / run.name).symlink_to(run)
        rows = {name: measure(runs, flags, args.page, args.seconds) for name, flags in arms.items()}
    print(f"server CPU, share of one core over {args.seconds:.0f} s; {folders:,} folders under "
          f"{ROOT}")
    for name, r in rows.items():
        print(f"  {name:22s} no tab {r['no_tab']:6.1%}   tab open on /{args.page} "
              f"{r['tab_open']:6.1%}")
    result = {"command": " ".join(sys.argv), "date": dt.datetime.now().isoformat(timespec="seconds"),
              "machine": platform.platform(), "folders": folders, "seconds": args.seconds,
              "rows": rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
