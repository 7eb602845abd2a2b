"""The adversarial sweep, re-measured: generated bad inputs through the CLI and the app, each under
a time limit, every outcome classified. Prints the table of ``docs/reliability.md``.

Categories (the issue's, on files this script generates; jobs scenarios are tests in
``tests/test_jobs.py``, not repeated here):

- corrupt runs through ``info``, ``analyze`` and ``plan``;
- bad plans and bad training flags through ``train --detach`` (refused at submit, or not);
- bad manifests through ``probe`` (torch is imported, so each case takes a few seconds);
- every app page over each corrupt run, in AppTest.

Outcomes: *named* (exit 2 / an error or warning on the page, naming the file or field),
*vague* (refused, but the message names neither), *traceback* (a raw traceback or an exception
box), *accepted* (exit 0 or a page drawn as if nothing were wrong), *hung* (past the limit).

    python bench/sweep.py            # about 5 minutes on 2 cores
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
import shutil  # noqa: E402

from conftest import random_run, stop_jobs  # noqa: E402
from test_fuzz import DAMAGE  # noqa: E402
from test_store import _damage  # noqa: E402

from gradlens.plan import SharingPlan, new_plan, save_plan  # noqa: E402

ATTR_DAMAGE = ["probe_config not JSON", "probe_config a list", "schema a string",
               "sketch_dim a string", "sq_norm reshaped", "loss missing a task", "n_params short"]
PAGES = ["dendrograms", "divergence", "alignment", "conflicts", "sharing_plan", "training",
         "experiments", "compare"]
OUTCOMES = ["named", "vague", "traceback", "accepted", "hung"]


def cli(argv: list[str], runs: Path, names: tuple[str, ...], limit: float = 120) -> str:
    try:
        proc = subprocess.run([sys.executable, "-m", "gradlens", *argv], cwd=ROOT, timeout=limit,
                              capture_output=True, text=True,
                              env={**os.environ, "GRADLENS_RUNS": str(runs)})
    except subprocess.TimeoutExpired:
        return "hung"
    if "Traceback" in proc.stderr:
        return "traceback"
    if proc.returncode == 0:
        return "accepted"
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    return "named" if any(n in last for n in names) else "vague"


def corrupt_runs(runs: Path) -> dict[str, Path]:
    random_run(runs / "good")
    made = {}
    for name, (damage, _, _) in DAMAGE.items():
        made[name] = _copy(runs, name, lambda p, d=damage: d(p))
    for name in (n for n in ATTR_DAMAGE if n not in made):
        made[name] = _copy(runs, name, lambda p, n=name: _damage(p, n))
    return made


def _copy(runs: Path, name: str, damage) -> Path:
    run = runs / ("bad-" + "".join(c if c.isalnum() else "-" for c in name))
    shutil.copytree(runs / "good", run, ignore=shutil.ignore_patterns("*.lock", "analysis"))
    damage(run / "grads.h5")
    return run


def sweep_runs(runs: Path, made: dict[str, Path], tally: Counter, notes: list[str]) -> None:
    for name, run in made.items():
        for command in ("info", "analyze", "plan"):
            out = cli([command, str(run)], runs, (str(run / "grads.h5"),), 60)
            tally[out] += 1
            if out != "named":
                notes.append(f"run '{name}' via {command}: {out}")


def sweep_plans(runs: Path, tally: Counter, notes: list[str]) -> None:
    langs = ["spa", "ita", "deu", "rus"]
    module = "text_decoder.layers.0.ffn"

    def plan(**change):
        p = new_plan("tiny", langs, "runs/good").to_dict()  # a dict, so a fault can be planted
        p["modules"][module] = {"groups": [["spa", "ita"], ["deu", "rus"]]}
        for key, value in change.items():
            if key == "groups":
                p["modules"][module]["groups"] = value
            else:
                p[key] = value
        return p

    bad_plans = {
        "unknown module": lambda d: _json(d, {**plan(), "modules": {"nope.ffn": {"groups": [langs]}}}),
        "module its run lacks": lambda d: _json(d, {**plan(), "modules": {
            "text_decoder.layers.9.ffn": {"groups": [["spa", "ita"], ["deu", "rus"]]}}}),
        "overlapping groups": lambda d: _json(d, plan(groups=[["spa", "ita"], ["ita", "deu", "rus"]])),
        "a language in no group": lambda d: _json(d, plan(groups=[["spa"], ["deu", "rus"]])),
        "an unknown language": lambda d: _json(d, plan(groups=[["spa", "xxx"], ["ita", "deu", "rus"]])),
        "repeated languages": lambda d: _json(d, plan(languages=["spa", "spa", "deu"])),
        "groups a string": lambda d: _json(d, plan(groups="spa ita | deu rus")),
        "wrong schema": lambda d: _json(d, plan(schema="gradlens.sharing-plan/9")),
        "not JSON": lambda d: d.write_text("{modules: ["),
        "empty file": lambda d: d.write_text(""),
        "a list at the top": lambda d: d.write_text("[1, 2]"),
        "not UTF-8": lambda d: d.write_bytes(b'{"schema": "\xff"}'),
        "a directory": lambda d: d.mkdir(),
    }
    good = runs / "plans" / "good.json"
    good.parent.mkdir(exist_ok=True)
    save_plan(SharingPlan.from_dict(plan()), good)
    for name, make in bad_plans.items():
        path = runs / "plans" / ("".join(c if c.isalnum() else "-" for c in name) + ".json")
        make(path)
        out = cli(["train", "--plan", str(path), "--detach"], runs, (str(path),))
        stop_jobs(runs)  # an accepted plan would start training: counted, then stopped
        tally[out] += 1
        if out != "named":
            notes.append(f"plan '{name}': {out}")
    flags = {"--steps 0": "steps", "--batch-size -1": "batch_size", "--seed -3": "seed",
             "--learning-rate 0": "learning_rate", "--learning-rate nan": "learning_rate",
             "--learning-rate=-1e-3": "learning_rate", "--temperature inf": "temperature",
             "--clip-norm -1": "clip_norm", "--aux-weight nan": "aux_weight",
             "--eval-size -3": "eval_size", "--eval-every 0": "eval_every",
             "--device tpu": "device", "--gpus -5": "gpus", "--name ../escape": "run name",
             "--name jobs.sqlite": "jobs.sqlite", "--steps 2.5": "--steps"}
    for flag, field in flags.items():
        out = cli(["train", "--plan", str(good), "--detach", *flag.split()], runs, (field,))
        stop_jobs(runs)
        tally[out] += 1
        if out != "named":
            notes.append(f"train flag '{flag}': {out}")


def _json(path: Path, value) -> None:
    import json

    path.write_text(json.dumps(value))


def sweep_manifests(runs: Path, tally: Counter, notes: list[str]) -> None:
    import soundfile

    folder = runs / "corpus"
    folder.mkdir()
    t = np.arange(11025) / 22050
    soundfile.write(str(folder / "a.wav"), 0.3 * np.sin(2 * np.pi * 220 * t), 22050)
    soundfile.write(str(folder / "empty.wav"), np.zeros(0), 22050)
    (folder / "noise.wav").write_bytes(b"this is not audio")
    soundfile.write(str(runs / "outside.wav"), 0.3 * np.sin(2 * np.pi * 220 * t), 22050)
    header = "audio\tsrc_lang\ttgt_lang\ttranscript\ttranslation\n"
    row = "{}\tgle\teng\tdia duit\thello\n"
    cases = {
        "a missing column": "audio\tsrc_lang\ttranscript\ttranslation\na.wav\tgle\tx\ty\n",
        "missing audio": header + row.format("gone.wav"),
        "not audio": header + row.format("noise.wav"),
        "an empty WAV": header + row.format("empty.wav"),
        "an empty field": header + "a.wav\tgle\teng\t\thello\n",
        "a short row": header + "a.wav\tgle\teng\thello\n",
        "a path outside its folder": header + row.format("../outside.wav"),
        "an absolute path": header + row.format(str(runs / "outside.wav")),
        "no rows": header,
        "not UTF-8": b"audio\tsrc_lang\n\xff\xfe\n",
        "a directory": None,
        "the asked language missing": header + row.format("a.wav").replace("gle", "bem"),
    }
    for name, text in cases.items():
        path = folder / ("".join(c if c.isalnum() else "-" for c in name) + ".tsv")
        if text is None:
            path.mkdir()
        elif isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        out = cli(["probe", "--corpus", str(path), "--languages", "gle", "--steps", "1",
                   "--batch-size", "1", "--sketch-dim", "64", "--out", str(runs / "m-probe")],
                  runs, (str(path),), 180)
        shutil.rmtree(runs / "m-probe", ignore_errors=True)
        tally[out] += 1
        if out != "named":
            notes.append(f"manifest '{name}': {out}")


def sweep_pages(runs: Path, made: dict[str, Path], tally: Counter, notes: list[str]) -> None:
    from streamlit.testing.v1 import AppTest

    os.environ["GRADLENS_RUNS"] = str(runs)
    for name, run in made.items():
        for page in ["home", *PAGES]:
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
            try:
                at.run()
                at.sidebar.selectbox[0].set_value(run.name).run()
                if page != "home":
                    at.switch_page(f"pages/{page}.py").run()
            except RuntimeError as exc:  # AppTest's time limit
                out = "hung" if "timed out" in str(exc).lower() else "traceback"
            else:
                shown = [e.value for e in at.error] + [w.value for w in at.warning]
                if at.exception:
                    out = "traceback"
                elif any(run.name in m or "grads.h5" in m for m in shown):
                    out = "named"
                elif shown:
                    out = "vague"
                else:
                    out = "accepted"
            tally[out] += 1
            if out != "named":
                notes.append(f"page {page} over '{name}': {out}")


def main() -> None:
    import gradlens

    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        made = corrupt_runs(runs)
        rows, notes = [], []
        for label, sweep in (("corrupt runs via `info`/`analyze`/`plan`",
                              lambda t: sweep_runs(runs, made, t, notes)),
                             ("plans and `train` flags", lambda t: sweep_plans(runs, t, notes)),
                             ("manifests through `probe`", lambda t: sweep_manifests(runs, t, notes)),
                             ("app pages over corrupt runs", lambda t: sweep_pages(runs, made, t, notes))):
            tally: Counter = Counter()
            sweep(tally)
            rows.append((label, tally))
            print(f"{label}: {dict(tally)}", file=sys.stderr, flush=True)
    print(f"python bench/sweep.py · {date.today()} · {platform.node()} · Python "
          f"{platform.python_version()} · gradlens {gradlens.__version__}\n")
    print("| category | cases | " + " | ".join(OUTCOMES) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in OUTCOMES) + " |")
    for label, tally in rows:
        print(f"| {label} | {sum(tally.values())} | "
              + " | ".join(str(tally[o]) for o in OUTCOMES) + " |")
    print("\nEvery case not named:" if notes else "\nEvery case gave a named error.")
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
