"""The "Current figures" table of ``docs/performance.md``, one row per target, made from the JSON
the benches write under ``bench/results/``.

    python bench/figures.py            # rewrite the table between its markers
    python bench/figures.py --check    # exit 1 if the table is not what the JSON says

A target whose JSON is missing is left out, so the table shows only what was measured.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "performance.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"
MIB = 2 ** 20


def _medium(stage: str):
    return lambda d: d["stages"][stage]


def _mins(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(round(seconds % 60))} s"


def _whole(stages: dict) -> str:
    """The wall time of every stage of ``bench/medium_cpu.py`` (KeyError until all ran)."""
    from medium_cpu import STAGES

    total = 0.0
    for name in STAGES:
        row = stages[name]
        total += row.get("seconds", 0) + sum(v["seconds"] for v in row.values()
                                             if isinstance(v, dict) and "seconds" in v)
    return _mins(total)


# (target, JSON file, part of it, figure, goal, how it is measured)
TARGETS = [
    ("the unit test tier (`pytest`)", "test_tiers.json", lambda d: d,
     lambda d: f"{d['unit_tests']} tests in {d['unit_seconds']:.0f} s (fresh-clone `.ci/run`, "
               f"commit {d['commit']})", "under 2 min", "`.ci/run`"),
    ("the integration tier (`pytest -m integration`)", "test_tiers.json", lambda d: d,
     lambda d: f"{d['integration_tests']} tests in {_mins(d['integration_seconds'])}", "",
     "`.ci/run`"),
    ("the whole fresh-clone CI (venv set-up, both tiers)", "test_tiers.json", lambda d: d,
     lambda d: _mins(d["ci_seconds"]), "under 15 min", "`git clone … && ./.ci/run`"),
    ("the app server's CPU with a tab open on a page", "server_cpu.json",
     lambda d: d["rows"],
     lambda r: f"{r['shipped (no watcher)']['tab_open']:.1%} of a core; with Streamlit's file "
               f"watcher on, as before: {r['watcher on (before)']['tab_open']:.1%}",
     "about idle", "`python bench/server_cpu.py`"),
    ("Medium on the CPU, the whole path (save, probe, benches, analysis, pages, training)",
     "medium_cpu.json", lambda d: d["stages"],
     lambda s: _whole(s), "under 45 min",
     "`python bench/medium_cpu.py`"),
    ("Medium, CPU: probed step / plain step (batch 2 × 1.4 s, k = 4096)", "medium_cpu.json",
     _medium("overhead"),
     lambda o: f"{o['ratio']:.3f} (medians of {o['reps']} interleaved; {o['plain_median_s']:.1f} s "
               f"plain); the capture's own time {o['fold_median_s']:.2f} s = "
               f"{o['fold_share_of_plain']:.1%} of a plain step",
     "≤ 1.10", "`python bench/medium_cpu.py --stages overhead`"),
    ("Medium, CPU: peak resident memory, probed / plain step", "medium_cpu.json",
     _medium("overhead"),
     lambda o: f"{o['peak_ratio']:.3f} ({o['probed_peak_bytes'] / MIB:,.0f} / "
               f"{o['plain_peak_bytes'] / MIB:,.0f} MiB)", "≤ 1.2",
     "`python bench/medium_cpu.py --stages overhead`"),
    ("Medium: bytes stored per (step, language, task), k = 4096, float16", "medium_cpu.json",
     _medium("probe"), lambda p: f"{p['bytes_per_unit'] / 1e6:.3f} MB ({p['modules']} modules)",
     "< 1 MB", "`python bench/medium_cpu.py --stages probe`"),
    ("Medium: sketched against exact cosine, median error over modules and language pairs",
     "medium_cpu.json", _medium("fidelity"),
     lambda f: f"{f['cosine_error_median']:.4f} ({f['folded']} folded modules × "
               f"{f['pairs'] // max(f['folded'], 1)} pairs; {f['within_2sd']:.1%} within 2 sd "
               f"of the theory's spread)", "≤ 0.012",
     "`python bench/medium_cpu.py --stages fidelity`"),
    ("Medium, CPU: plan-routed training step / shared step", "medium_cpu.json",
     _medium("train"),
     lambda t: f"{t['ratio']:.3f} ({len(t['split'])} Conformer FFNs split, "
               f"{t['optimizer'].upper()}, medians of {t['reps']})", "≤ 1.10",
     "`python bench/medium_cpu.py --stages train`"),
    ("Medium, CPU: MGCM's extra peak resident memory / flat PCGrad's", "medium_cpu.json",
     _medium("memory"),
     lambda m: f"{m['mgcm_over_flat']:.1%} ({m['mgcm_extra_bytes'] / MIB:,.0f} / "
               f"{m['flat_extra_bytes'] / MIB:,.0f} MiB, one process per arm)", "≤ 5 %",
     "`python bench/medium_cpu.py --stages memory`"),
]


def rows(only: str | None = None) -> list[str]:
    """The table's lines; ``only``: the rows from that JSON file alone."""
    out = ["| target | figure | goal | bench | date |", "| --- | --- | --- | --- | --- |"]
    for target, name, part, figure, goal, bench in TARGETS:
        path = RESULTS / name
        if (only and name != only) or not path.exists():
            continue
        data = json.loads(path.read_text())
        try:
            value = part(data)
            text = figure(value)
        except KeyError:                       # that stage or field not measured yet
            continue
        date = (value.get("date") if isinstance(value, dict) else None) or data.get("date", "")
        out.append(f"| {target} | {text} | {goal} | {bench} | {str(date)[:10]} |")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check the table")
    args = ap.parse_args()
    doc = DOC.read_text()
    if START not in doc or END not in doc:
        print(f"{DOC}: no {START} … {END} markers", file=sys.stderr)
        return 2
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    new = head + START + "\n" + "\n".join(rows()) + "\n" + END + tail
    if args.check:
        return 0 if new == doc else 1
    DOC.write_text(new)
    print("\n".join(rows()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
