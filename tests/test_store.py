import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import ROOT, SMALL
from gradlens.store import Run, RunError, RunWriter


def test_plain_h5py_reads_every_schema_field(tiny_run):
    """No gradlens import needed to read a run: every schema-1 field is there."""
    with h5py.File(tiny_run / "grads.h5", "r", swmr=True) as f:
        for attr in ("schema", "created", "model", "model_config", "probe_config", "sketch_dim",
                     "sketch_seed", "gradlens_version"):
            assert attr in f.attrs, attr
        assert f.attrs["schema"] == 1
        json.loads(f.attrs["model_config"]), json.loads(f.attrs["probe_config"])
        L, T = len(f["languages"]), len(f["tasks"])
        M, k = len(f["modules/name"]), int(f.attrs["sketch_dim"])
        assert [s.decode() for s in f["languages"][:]] == SMALL["languages"]
        assert [s.decode() for s in f["tasks"][:]] == ["st", "asr"]
        for name in ("n_params", "kind", "exact"):
            assert f["modules"][name].shape == (M,)
        S = f["steps/done"].shape[0]
        assert f["sketch"].shape == (S, L, T, M, k) and f["sketch"].dtype == np.float16
        assert f["sq_norm"].shape == (S, L, T, M) and f["loss"].shape == (S, L, T)
        assert f["steps/done"][:].all() and S == SMALL["steps"]
        assert (f["sq_norm"][:] > 0).any() and np.isfinite(f["loss"][:]).all()
        # each language's mean audio seconds per step: spoken numbers last about 0.5 to 4 s
        assert f["duration"].shape == (S, L) and ((f["duration"][:] > 0.3)
                                                  & (f["duration"][:] < 6)).all()


def _probe_cmd(out: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "gradlens", "probe", "--out", str(out), "--steps", str(steps),
            "--languages", "spa", "deu", "--batch-size", "2", "--sketch-dim", "128",
            "--train-steps-between", "1"]


def _done(path: Path) -> int:
    try:
        with h5py.File(path / "grads.h5", "r", swmr=True, locking=False) as f:
            return int(f["steps/done"][:].sum())
    except (OSError, KeyError):
        return 0


@pytest.mark.integration
def test_resume_after_sigkill_loses_nothing_and_matches_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    steps = 5
    reference = tmp_path / "reference"
    subprocess.run(_probe_cmd(reference, steps), check=True, env=env, capture_output=True)
    killed = tmp_path / "killed"
    for kill_after in (1, 3):  # killed twice, at different points
        proc = subprocess.Popen(_probe_cmd(killed, steps), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 120
        while _done(killed) < kill_after and time.time() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with Run(killed) as run:  # the killed file is valid and its steps are kept
            assert len(run.done_steps) >= kill_after
            kept = {int(s): run.sketch(0, [s]) for s in run.done_steps}
    subprocess.run(_probe_cmd(killed, steps), check=True, env=env, capture_output=True)
    with Run(killed) as a, Run(reference) as b:
        assert a.done_steps.tolist() == list(range(steps))
        for s, sketch in kept.items():
            np.testing.assert_array_equal(a.sketch(0, [s]), sketch)
        for m in range(len(a.modules)):
            np.testing.assert_allclose(a.sketch(m), b.sketch(m), rtol=1e-3, atol=1e-6)
        np.testing.assert_allclose(a.loss(), b.loss(), rtol=1e-5)


def _writer(path, **over):
    from gradlens.store import ModuleTable

    modules = ModuleTable(name=["a", "b"], n_params=np.array([3, 10]), kind=["ffn", "ffn"],
                          exact=np.array([True, False]))
    args = dict(languages=["spa", "deu"], tasks=["st"], modules=modules, sketch_dim=4,
                sketch_seed=0, model="tiny", model_config={}, probe_config={"batch_size": 2, "steps": 3})
    args.update(over)
    return RunWriter(path, **args)


def test_another_configuration_is_refused_naming_the_setting(tmp_path):
    with _writer(tmp_path / "r") as w:
        w.append(0, np.ones((2, 1, 2, 4)), np.ones((2, 1, 2)), np.ones((2, 1)))
    with pytest.raises(RunError, match=r"batch_size: file has 2, asked 4"):
        _writer(tmp_path / "r", probe_config={"batch_size": 4, "steps": 3})
    with pytest.raises(RunError, match=r"languages: file has \['spa', 'deu'\]"):
        _writer(tmp_path / "r", languages=["spa", "fin"])
    with _writer(tmp_path / "r", probe_config={"batch_size": 2, "steps": 9}) as w:  # more steps: fine
        assert w.first_undone() == 1


def test_a_second_writer_is_refused(tmp_path):
    with _writer(tmp_path / "r"):
        with pytest.raises(RunError, match="being written by another probe"):
            _writer(tmp_path / "r")


def test_bad_files_give_clear_errors(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "grads.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(RunError, match=r"junk/grads.h5: not a readable HDF5 file"):
        Run(tmp_path / "junk")
    with h5py.File(tmp_path / "other.h5", "w", libver="latest") as f:
        f["x"] = 1
    with pytest.raises(RunError, match=r"other.h5: not a gradlens run \(missing attribute"):
        Run(tmp_path / "other.h5")
    with pytest.raises(RunError, match="no such run file"):
        Run(tmp_path / "nothing")


@pytest.mark.parametrize("cut", ["100", "half", "4096 short"])
def test_a_truncated_run_is_refused_at_once_naming_the_file(tiny_run, tmp_path, cut):
    """A cut file used to hang every reader (SWMR skips HDF5's truncation check and retries
    without end) or, cut by 4 KB, to be analysed silently. Now: a named error within seconds,
    from the CLI as from the library."""
    import shutil
    import subprocess
    import sys

    from conftest import ROOT

    run = tmp_path / "cut"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("*.lock", "*.pt", "analysis"))
    grads = run / "grads.h5"
    size = grads.stat().st_size
    new = {"100": 100, "half": size // 2, "4096 short": size - 4096}[cut]
    with open(grads, "r+b") as fh:
        fh.truncate(new)
    with pytest.raises(RunError, match=f"{grads}: truncated: the file has {new:,} bytes"):
        Run(run)
    if cut != "half":  # the commands read through Run alike: one cut size shows it for them
        return
    for command in (["info", str(run)], ["analyze", str(run)], ["plan", str(run)]):
        proc = subprocess.run([sys.executable, "-m", "gradlens", *command], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "truncated" in proc.stderr, proc.stderr[-500:]
        assert "Traceback" not in proc.stderr


def _damage(path, how):
    with h5py.File(path, "r+") as f:
        if how == "probe_config not JSON":
            f.attrs["probe_config"] = "{not json"
        elif how == "probe_config a list":
            f.attrs["probe_config"] = "[1, 2]"
        elif how == "schema a string":
            f.attrs["schema"] = "one"
        elif how == "sketch_dim a string":
            f.attrs["sketch_dim"] = "big"
        elif how == "sq_norm reshaped":
            data = f["sq_norm"][:]
            del f["sq_norm"]
            f["sq_norm"] = data[..., :1]
        elif how == "loss missing a task":
            data = f["loss"][:]
            del f["loss"]
            f["loss"] = data[:, :, :1]
        elif how == "n_params short":
            data = f["modules/n_params"][:]
            del f["modules/n_params"]
            f["modules/n_params"] = data[:-1]


@pytest.mark.parametrize("how", ["probe_config not JSON", "probe_config a list",
                                 "schema a string", "sketch_dim a string", "sq_norm reshaped",
                                 "loss missing a task", "n_params short"])
def test_malformed_runs_give_a_named_error(tiny_run, tmp_path, how):
    import shutil

    run = tmp_path / "bad"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("*.lock", "*.pt", "analysis"))
    _damage(run / "grads.h5", how)
    with pytest.raises(RunError, match=str(run / "grads.h5")):
        Run(run)


def test_readers_see_only_steps_whose_rows_exist(tiny_run, tmp_path):
    """During a write ``steps/done`` can run past the rows a reader sees; such steps are not
    done for the reader (it used to raise IndexError)."""
    import shutil

    run = tmp_path / "ahead"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("*.lock", "*.pt", "analysis"))
    with h5py.File(run / "grads.h5", "r+") as f:
        n = f["steps/done"].shape[0]
        f["steps/done"].resize((n + 2,))
        f["steps/done"][n:] = True
    with Run(run) as r:
        assert r.done_steps.tolist() == list(range(n))
        assert r.sketch(0).shape[0] == n


@pytest.mark.integration
def test_a_killed_writers_run_opens_in_plain_h5py_once_gradlens_has_read_it(tmp_path):
    """A writer killed mid-run leaves HDF5's writer flags: plain h5py refuses the file until
    the next gradlens reader, finding no writer holding the lock, clears them."""
    import subprocess
    import sys

    import h5py

    from conftest import ROOT

    child = (
        "import sys, os, numpy as np\n"
        f"sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]\n"
        "from test_store import _writer\n"
        f"w = _writer({str(tmp_path / 'r')!r})\n"
        "w.append(0, np.ones((2, 1, 2, 4)), np.ones((2, 1, 2)), np.ones((2, 1)))\n"
        "os._exit(0)  # killed: no close\n")
    subprocess.run([sys.executable, "-c", child], check=True, timeout=120)
    path = tmp_path / "r" / "grads.h5"
    with pytest.raises(OSError):
        h5py.File(path, "r")
    with Run(tmp_path / "r") as run:
        assert list(run.done_steps) == [0]
    with h5py.File(path, "r") as f:  # any h5py user, as design.md promises
        assert bool(f["steps/done"][0])


def _rewritten(src: Path, dst: Path, superblock: int) -> Path:
    """``src``'s run written again by plain h5py, as another tool would: its defaults give a
    version 0 superblock; a non-default chunk B-tree size (set through HDF5's own C call, which
    h5py does not wrap) gives version 1."""
    import ctypes
    import glob

    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_EARLIEST, h5py.h5f.LIBVER_V18)
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    if superblock == 1:
        libs = glob.glob(str(Path(h5py.__file__).parent.parent / "h5py.libs" / "libhdf5-*"))
        hdf5 = ctypes.CDLL(libs[0]) if libs else ctypes.CDLL(None)
        assert hdf5.H5Pset_istore_k(ctypes.c_int64(fcpl.id), ctypes.c_uint(64)) >= 0
    dst.mkdir(parents=True, exist_ok=True)
    out = dst / "grads.h5"
    with h5py.File(h5py.h5f.create(str(out).encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl,
                                   fapl=fapl)) as new, h5py.File(src / "grads.h5", "r") as old:
        def rewrite(name, obj):  # datasets read and written plainly (no chunks, as a script does)
            if isinstance(obj, h5py.Dataset):
                new.create_dataset(name, data=obj[()])
            else:
                new.require_group(name)
            new[name].attrs.update(dict(obj.attrs))

        old.visititems(rewrite)
        new.attrs.update(dict(old.attrs))
    assert out.read_bytes()[8] == superblock
    return out


@pytest.mark.parametrize("version", [0, 1])
def test_a_run_written_by_another_tool_with_an_old_superblock_opens_and_a_cut_one_is_named(
        tmp_path, version):
    from conftest import random_run

    src = random_run(tmp_path / "src", steps=4)
    grads = _rewritten(src, tmp_path / "other", version)
    with Run(grads.parent) as run:
        assert len(run.done_steps) == 4 and run.languages == ["spa", "ita", "deu", "rus"]
        assert run.sketch(0).shape[0] == 4
    data = grads.read_bytes()
    grads.write_bytes(data[: len(data) // 2])
    with pytest.raises(RunError, match=f"{grads}: truncated: HDF5 finds the file shorter"):
        Run(grads.parent)
