"""The adversarial sweep, kept: generated damaged runs go through the CLI and the app, each under
a time limit so that a hang fails. Every case must end in a named error (the file, what is
wrong), never a traceback, a hang or a silently analysed result."""

import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, random_run

def _overwrite_chunk(path, dataset: str, coord: tuple) -> None:
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info_by_coord(coord)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(np.random.default_rng(1).bytes(64))


def _truncate(path, size) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(size)


# each damage: (what it does to grads.h5, the commands that must refuse it, words the error holds)
DAMAGE = {
    "truncated to 100 bytes": (lambda p: _truncate(p, 100), ("info", "plan"), "truncated"),
    "truncated to a quarter": (lambda p: _truncate(p, p.stat().st_size // 4), ("info", "plan"),
                               "truncated"),
    "4 KB cut off": (lambda p: _truncate(p, p.stat().st_size - 4096), ("info", "analyze"),
                     "truncated"),
    "empty": (lambda p: _truncate(p, 0), ("info",), "not a readable HDF5 file"),
    "random bytes": (lambda p: p.write_bytes(np.random.default_rng(2).bytes(50_000)),
                     ("info", "plan"), "not a readable HDF5 file"),
    "a sketch chunk overwritten": (lambda p: _overwrite_chunk(p, "sketch", (3, 0, 0, 2, 0)),
                                   ("analyze", "plan"), "damaged"),
    "schema 2": (lambda p: _attr(p, "schema", 2), ("info", "plan"), "schema"),
    "probe_config not JSON": (lambda p: _attr(p, "probe_config", "{no"), ("info",),
                              "probe_config"),
    "a directory in its place": (lambda p: (p.unlink(), p.mkdir()), ("info", "plan"),
                                 "a directory"),
}


def _attr(path, name, value) -> None:
    with h5py.File(path, "r+") as f:
        f.attrs[name] = value


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """One run per damage, in one runs directory."""
    runs = tmp_path_factory.mktemp("fuzz") / "runs"
    random_run(runs / "good")
    for i, (name, (damage, _, _)) in enumerate(DAMAGE.items()):
        run = runs / f"bad{i}"
        shutil.copytree(runs / "good", run, ignore=shutil.ignore_patterns("*.lock"))
        damage(run / "grads.h5")
    return runs


@pytest.mark.parametrize("case", list(DAMAGE))
def test_the_cli_names_every_damage_within_seconds(damaged, case):
    run = damaged / f"bad{list(DAMAGE).index(case)}"
    _, commands, words = DAMAGE[case]
    for command in commands:
        proc = subprocess.run([sys.executable, "-m", "gradlens", command, str(run)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "GRADLENS_RUNS": str(damaged)})
        assert proc.returncode == 2, (command, proc.stdout[-300:], proc.stderr[-1500:])
        last = proc.stderr.strip().splitlines()[-1]  # after any progress bar
        assert last.startswith("gradlens: error: ") and "Traceback" not in proc.stderr
        assert str(run / "grads.h5") in last and words in last, last


def test_every_dataset_refuses_a_damaged_chunk(damaged, tmp_path):
    """The analysis reads only sketches; what else a reader asks for is checked as well."""
    from gradlens.store import Run, RunError

    for dataset, coord, read in (("sq_norm", (5, 0, 0, 0), Run.sq_norm),
                                 ("loss", (0, 0, 0), Run.loss)):
        run = tmp_path / dataset
        shutil.copytree(damaged / "good", run, ignore=shutil.ignore_patterns("*.lock", "analysis"))
        _overwrite_chunk(run / "grads.h5", dataset, coord)
        with Run(run) as r, pytest.raises(RunError, match=rf"grads.h5: /{dataset}, steps 0 to 7"):
            read(r)


def test_the_undamaged_run_analyses(damaged):
    proc = subprocess.run([sys.executable, "-m", "gradlens", "analyze", str(damaged / "good"),
                           "--out", str(damaged.parent / "good-analysis")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]


@pytest.mark.parametrize("case", ["a sketch chunk overwritten", "truncated to a quarter",
                                  "random bytes"])
def test_the_app_shows_the_damage_and_keeps_the_good_run(damaged, case, monkeypatch, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copytree(damaged / "good", runs / "good", ignore=shutil.ignore_patterns("analysis"))
    shutil.copytree(damaged / f"bad{list(DAMAGE).index(case)}", runs / "zz-bad",
                    ignore=shutil.ignore_patterns("analysis"))
    monkeypatch.setenv("GRADLENS_RUNS", str(runs))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "good" in at.sidebar.selectbox[0].options  # one bad run hides no good one
    at.sidebar.selectbox[0].set_value("zz-bad").run()
    at.switch_page("pages/divergence.py").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [e.value for e in at.error] + [w.value for w in at.warning]
    assert any("grads.h5" in m for m in shown), shown
