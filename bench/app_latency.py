"""App latency in a real browser: first render of every page and the response to a unit change.

Serves the synthetic run of ``bench/synthetic.py`` (91 modules x 32 languages x 2 tasks x 100
steps, k = 1024) with the real app (a Streamlit subprocess) and drives Debian's Chromium
headless with Playwright, as ``tests/test_browser.py`` does. Before serving, the whole-run
evidence is computed once into the run (what ``gradlens analyze`` leaves behind; about a minute,
printed) and URIEL's distances are cached, so the figures are those of a researcher's app after
the analysis, not of the one-off analysis itself.

    python bench/synthetic.py && python bench/app_latency.py     # targets: render < 2 s, change < 0.3 s
    python bench/app_latency.py --serve runs/demo                # the demo run as `gradlens demo` left it

With ``--serve RUN`` an existing run is served as it is (its evidence is read or computed
first, as the app would on its first visit), which is how the demo's target is measured: the
first visit to any page right after ``python -m gradlens app`` renders in under 3 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from browser import PAGES, browser_page, chromium_path, served_app, wait_rendered  # noqa: E402
from synthetic import build  # noqa: E402

from gradlens.analysis.evidence import similarity_of  # noqa: E402
from gradlens.evidence import cached_run_evidence  # noqa: E402
from gradlens.analysis.typology import typology_agreement  # noqa: E402
from gradlens.store import Run  # noqa: E402

PLOTS = {"": 0, "dendrograms": 2, "divergence": 4, "alignment": 2, "conflicts": 3,
         "sharing_plan": 0, "training": 0, "experiments": 0, "compare": 0}


def first_render(page, url: str, path: str) -> float:
    t = time.perf_counter()
    page.goto(f"{url}/{path}")
    wait_rendered(page)
    if PLOTS[path]:
        page.wait_for_function("n => document.querySelectorAll('.js-plotly-plot').length >= n",
                               arg=PLOTS[path], timeout=120_000)
    return time.perf_counter() - t


def change_unit(page, label: str, value: str, title_part: str, chart: int) -> float:
    """Pick ``value`` in the selectbox labelled ``label``; seconds until chart ``chart``'s title
    shows ``title_part`` and the script has finished."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.click()
    page.keyboard.type(value)
    t = time.perf_counter()
    page.keyboard.press("Enter")
    page.wait_for_function(
        """([i, part]) => { const t = document.querySelectorAll('.js-plotly-plot .gtitle')[i];
                            return t && t.textContent.includes(part); }""",
        arg=[chart, title_part], timeout=120_000)
    wait_rendered(page)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/bench-synthetic", help="synthetic run directory")
    parser.add_argument("--serve", default=None, metavar="RUN",
                        help="serve this existing run as it is instead of the synthetic one "
                             "(the demo's target: first renders under 3 s)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per figure (default: 3)")
    args = parser.parse_args()
    if chromium_path() is None:
        sys.exit("needs Debian's chromium: apt-get install chromium")
    run_dir = Path(args.serve).resolve() if args.serve else build(Path(args.run)).resolve()
    render_target = 3.0 if args.serve else 2.0
    t = time.perf_counter()
    with Run(run_dir) as run:
        evidence = cached_run_evidence(run)
        typology_agreement(1 - similarity_of(evidence), run.languages, 99)
        modules = list(run.modules.name)
    print(f"one-off: whole-run evidence and URIEL ready in {time.perf_counter() - t:.1f} s")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        runs.mkdir()
        (runs / run_dir.name).symlink_to(run_dir)
        with served_app(runs, Path(tmp) / "app.log") as url, browser_page() as page:
            for path in PAGES:  # the server's very first render of each page
                rows.append((f"first render, cold server: /{path}", [first_render(page, url, path)]))
            for path in PAGES:  # a new visitor once the server has read the run
                rows.append((f"first render, new session: /{path}",
                             [first_render(page, url, path) for _ in range(args.repeat)]))
            changes = {"dendrograms: unit (layer)": [], "divergence: module": [],
                       "alignment: module (computes CCA)": []}
            for i in range(args.repeat):
                first_render(page, url, "dendrograms")
                layer = f"speech_encoder.encoder.layers.{i + 1}"
                changes["dendrograms: unit (layer)"].append(change_unit(page, "Unit", layer, layer, 0))
                first_render(page, url, "divergence")
                m = modules[10 + i]
                changes["divergence: module"].append(change_unit(page, "Module", m, m, 1))
                first_render(page, url, "alignment")
                m = modules[20 + i]
                changes["alignment: module (computes CCA)"].append(change_unit(page, "Unit", m, m, 0))
            rows += [(f"widget change, {k}", v) for k, v in changes.items()]
    print(f"{'measure':58s} {'median s':>9s} {'max s':>7s} {'target':>7s}")
    for name, values in rows:
        target = 0.3 if name.startswith("widget") else render_target
        med = statistics.median(values)
        print(f"{name:58s} {med:9.3f} {max(values):7.3f} {'ok' if med < target else 'MISSED':>7s}")


if __name__ == "__main__":
    main()
