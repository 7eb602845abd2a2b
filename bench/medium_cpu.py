"""SeamlessM4T-Medium end to end on the CPU: the mission's scale, measured without a GPU.

Each stage runs in its own process, so that its peak resident memory is the process's own
(``wait4``), and its figures come back as JSON:

- ``save``: ``medium-random`` (821 M parameters; its tokenizer trained on the bench's
  languages) written with ``save_pretrained`` into ``WORK/model``, as a user's downloaded
  snapshot is; every later stage loads that directory, offline.
- ``probe``: ``python -m gradlens probe --model WORK/model`` on the CLDR phrases (2-3 s each),
  2 languages x ST and ASR x 3 steps, k = 4096, batch 2: seconds per step, bytes stored per
  (step, language, task), modules.
- ``overhead``: ``bench/probe_overhead.py``: the probed step against a plain one, interleaved,
  batch 2 x 1.4 s, and each arm's peak resident memory (targets 1.10 and 1.2).
- ``fidelity``: ``bench/sketch_fidelity.py``: every folded module's sketched cosines of 4
  languages against the exact ones (target: median error 0.012, within the theory's spread).
- ``analysis``: ``gradlens analyze`` and ``gradlens plan`` on the probe's run, timed.
- ``pages``: every page of the app in AppTest on that run, the Dendrograms page at module
  granularity among them.
- ``train``: ``bench/train_overhead.py``: a plan-routed training step (the Conformer FFNs from
  layer 11 down to 10 % of the parameters split) against the shared one (target 1.10), SGD.
- ``memory``: MGCM's extra peak resident memory against flat PCGrad's, one process per arm
  (``bench/train_overhead.py --arm``; target 5 %).

    python bench/medium_cpu.py                                   # every stage, ~30 min on 2 cores
    python bench/medium_cpu.py --stages probe analysis pages     # some, on the saved model

The figures go to ``bench/results/medium_cpu.json`` with the command, date, machine and
versions; ``docs/performance.md`` gives them as rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from record import provenance, write_json  # noqa: E402

LANGUAGES = ["spa", "deu", "fra", "rus"]   # the benches' own (sketch_fidelity's four)
PROBE = dict(languages=["spa", "deu"], steps=3, batch=2, k=4096, corpus="cldr-phrases")
STAGES = ("save", "probe", "overhead", "fidelity", "analysis", "pages", "train", "memory")
PAGES = ["dendrograms", "divergence", "alignment", "conflicts", "sharing_plan", "training",
         "experiments", "compare"]
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def run_stage(cmd: list[str], log: Path, env: dict | None = None) -> dict:
    """Run ``cmd`` with its output shown and kept in ``log``; its wall time and peak resident
    memory (the child's own ``ru_maxrss``)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env={**os.environ, **OFFLINE, **(env or {})})
        for chunk in iter(lambda: proc.stdout.read1(4096), b""):
            out.write(chunk)
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    result = {"command": " ".join(Path(c).name if c == sys.executable else c for c in cmd),
              "seconds": time.perf_counter() - t0, "peak_rss_bytes": usage.ru_maxrss * 1024,
              "returncode": proc.returncode}
    if proc.returncode:
        raise SystemExit(f"stage failed ({proc.returncode}): {' '.join(cmd)}; log in {log}")
    return result


def save(model_dir: Path) -> None:
    """medium-random with its tokenizer and feature extractor, as ``save_pretrained`` writes a
    snapshot."""
    from gradlens.corpus import open_corpus
    from probes.models import load_model

    texts = [t for name in ("spoken-numbers", PROBE["corpus"])
             for t in open_corpus(name, LANGUAGES, 0).texts()]
    lm = load_model("medium-random", LANGUAGES, texts, seed=0)
    model_dir.mkdir(parents=True, exist_ok=True)
    lm.model.save_pretrained(model_dir)
    lm.tokenizer.save_pretrained(model_dir)
    lm.feature_extractor.save_pretrained(model_dir)
    print(f"saved {sum(p.numel() for p in lm.model.parameters()):,} parameters to {model_dir}")


def pages(runs: Path, out: Path) -> None:
    """Every page in AppTest on the one run under ``runs``; exceptions and seconds per page."""
    os.environ["GRADLENS_RUNS"] = str(runs)
    from streamlit.testing.v1 import AppTest

    from gradlens.paths import PREFETCH_ENV

    os.environ[PREFETCH_ENV] = "0"
    figures = {}
    for page in ["home", *PAGES]:
        t0 = time.perf_counter()
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=1200).run()
        if page != "home":
            at.switch_page(f"pages/{page}.py").run()
        row = {"exceptions": [str(e.value)[:300] for e in at.exception],
               "charts": len(at.get("plotly_chart")), "tables": len(at.dataframe),
               "warnings": [w.value[:200] for w in at.warning]}
        if page == "dendrograms" and not at.exception:
            at.radio(key="dend_granularity").set_value("module").run()
            row["module_granularity_units"] = len(at.selectbox(key="dend_unit_module").options)
            row["exceptions"] += [str(e.value)[:300] for e in at.exception]
        row["seconds"] = time.perf_counter() - t0
        figures[page] = row
        print(f"page {page:13s} {row['seconds']:7.1f} s  {row['charts']} charts, "
              f"{row['tables']} tables  {'ok' if not row['exceptions'] else row['exceptions']}",
              flush=True)
    out.write_text(json.dumps(figures, indent=1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    ap.add_argument("--work", default="/tmp/gradlens-medium", help="model, run and logs "
                    "(about 5 GB; default: /tmp/gradlens-medium)")
    ap.add_argument("--json", default=str(BENCH / "results" / "medium_cpu.json"))
    ap.add_argument("--reps", type=int, default=10, help="interleaved repetitions of the "
                    "overhead bench (default: 10)")
    ap.add_argument("--save", default=None, help=argparse.SUPPRESS)    # a stage's own process
    ap.add_argument("--pages", nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.save:
        save(Path(args.save))
        return 0
    if args.pages:
        pages(Path(args.pages[0]), Path(args.pages[1]))
        return 0

    from tqdm import tqdm

    work = Path(args.work)
    model, runs, logs = work / "model", work / "runs", work / "logs"
    run = runs / "medium"
    py = sys.executable
    previous = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
    stages = previous.get("stages", {})
    bar = tqdm(args.stages, desc="medium on the CPU", unit="stage")
    for name in bar:
        bar.set_postfix_str(name)
        js = work / f"{name}.json"
        if name == "save":
            row = run_stage([py, __file__, "--save", str(model)], logs / "save.log")
            row["snapshot_bytes"] = sum(f.stat().st_size for f in model.iterdir())
        elif name == "probe":
            if run.exists():
                import shutil

                shutil.rmtree(run)
            row = run_stage([py, "-m", "gradlens", "probe", "--model", str(model),
                             "--corpus", PROBE["corpus"], "--languages", *PROBE["languages"],
                             "--steps", str(PROBE["steps"]), "--batch-size", str(PROBE["batch"]),
                             "--sketch-dim", str(PROBE["k"]), "--device", "cpu",
                             "--out", str(run)], logs / "probe.log")
            row.update(probe_figures(run))
        elif name == "overhead":
            row = run_stage([py, str(BENCH / "probe_overhead.py"), "--model", str(model),
                             "--k", "4096", "--batch", "2", "--seconds", "1.4", "--reps",
                             str(args.reps), "--warmup", "1", "--device", "cpu", "--json",
                             str(js)], logs / "overhead.log")
            row = {**json.loads(js.read_text()), **row}      # the stage's own time wins
        elif name == "fidelity":
            row = run_stage([py, str(BENCH / "sketch_fidelity.py"), "--model", str(model),
                             "--k", "4096", "--batch", "2", "--device", "cpu", "--languages",
                             *LANGUAGES, "--json", str(js)], logs / "fidelity.log")
            row = {**json.loads(js.read_text()), **row}      # the stage's own time wins
        elif name == "analysis":
            row = {"analyze": run_stage([py, "-m", "gradlens", "analyze", str(run)],
                                        logs / "analyze.log"),
                   "plan": run_stage([py, "-m", "gradlens", "plan", str(run)], logs / "plan.log")}
            plan = json.loads((run / "plan.json").read_text())
            row["plan_split"] = sorted(k for k, v in plan.get("modules", {}).items()
                                       if len(v.get("groups", [])) > 1)
        elif name == "pages":
            row = run_stage([py, __file__, "--pages", str(runs), str(js)], logs / "pages.log")
            row["pages"] = json.loads(js.read_text())
        elif name == "train":
            row = run_stage([py, str(BENCH / "train_overhead.py"), "--model", str(model),
                             "--batch", "2", "--reps", "4", "--budget", "0.1", "--optimizer",
                             "sgd", "--device", "cpu", "--json", str(js)], logs / "train.log")
            row = {**json.loads(js.read_text()), **row}      # the stage's own time wins
        else:  # memory
            row = {}
            for arm in ("plain", "mgcm", "flat"):
                row[arm] = run_stage([py, str(BENCH / "train_overhead.py"), "--model",
                                      str(model), "--batch", "1", "--arm", arm, "--device", "cpu",
                                      "--json", str(work / f"memory-{arm}.json")],
                                     logs / f"memory-{arm}.log")
            extra = {arm: row[arm]["peak_rss_bytes"] - row["plain"]["peak_rss_bytes"]
                     for arm in ("mgcm", "flat")}
            row.update(mgcm_extra_bytes=extra["mgcm"], flat_extra_bytes=extra["flat"],
                       mgcm_over_flat=extra["mgcm"] / max(extra["flat"], 1))
        stages[name] = {**row, "date": provenance()["date"]}
        write_json(args.json, {"stages": stages})           # each stage kept as it ends
    summary(stages)
    return 0


def probe_figures(run: Path) -> dict:
    from gradlens.corpus import open_corpus
    from gradlens.store import Run

    with Run(run) as r:
        modules, steps = len(r.modules), len(r.done_steps)
        units = steps * len(r.languages) * len(r.tasks)
    corpus = open_corpus(PROBE["corpus"], PROBE["languages"], 0)
    seconds = [len(ex.audio) / 16_000 for lang in PROBE["languages"]
               for step in range(PROBE["steps"])
               for ex in corpus.batch(lang, "train", PROBE["batch"], step)]
    size = (run / "grads.h5").stat().st_size
    return {"modules": modules, "steps": steps, "grads_h5_bytes": size,
            "bytes_per_unit": size / units, "audio_seconds_mean": sum(seconds) / len(seconds),
            "audio_seconds_max": max(seconds)}


def summary(stages: dict) -> None:
    gib = 2 ** 30
    print("\nstage        seconds  peak RSS")
    for name, row in stages.items():
        if "seconds" in row:
            print(f"{name:10s} {row['seconds']:9.0f}  {row['peak_rss_bytes'] / gib:6.1f} GiB")
    from figures import rows

    print("\n".join(rows(only="medium_cpu.json")))

if __name__ == "__main__":
    sys.exit(main())
