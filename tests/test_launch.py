"""Probes started from the app run as detached processes and are found again from disk."""

import subprocess
import sys
import time

import pytest

from conftest import ROOT
from gradlens.launch import run_dir_for, start_detached, start_probe, starting_probes
from gradlens.store import Run, being_written


@pytest.mark.integration
def test_a_started_probe_outlives_its_starter_and_finishes(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADLENS_RUNS", str(tmp_path))
    out = start_probe("launched", ["spa", "deu"], steps=2, batch_size=1, sketch_dim=128)
    assert out == tmp_path / "launched" and (out / "probe.log").exists()
    seen_writing = False
    deadline = time.time() + 300
    while time.time() < deadline:
        seen_writing |= being_written(out)
        if (out / "grads.h5").exists() and not being_written(out):
            try:
                with Run(out) as run:
                    if len(run.done_steps) == 2:
                        break
            except Exception:
                pass
        time.sleep(0.2)
    with Run(out) as run:
        assert len(run.done_steps) == 2 and run.languages == ["spa", "deu"]
    assert seen_writing
    assert starting_probes() == []


@pytest.mark.integration
def test_a_probe_that_fails_before_its_first_step_shows_its_log(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADLENS_RUNS", str(tmp_path))
    out = start_probe("bad", ["spa", "deu"], steps=2, model=str(tmp_path / "no-such-model"))
    deadline = time.time() + 120
    while time.time() < deadline:
        found = starting_probes()
        if found and not found[0].running:
            break
        time.sleep(0.2)
    (probe,) = starting_probes()
    assert probe.path == out and not probe.running
    assert "no-such-model" in probe.log_tail


def test_names_that_leave_the_runs_directory_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADLENS_RUNS", str(tmp_path))
    for bad in ("../x", "a/b", "", ".hidden", "x" * 65):
        with pytest.raises(ValueError, match="run name"):
            run_dir_for(bad)
    with pytest.raises(ValueError, match="at least two languages"):
        start_probe("one", ["spa"], 2)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "probe.log").write_text("")
    with pytest.raises(ValueError, match="already exists"):
        start_probe("taken", ["spa", "deu"], 2)


def test_the_progress_of_a_starting_run_is_read_from_its_log():
    from gradlens.launch import last_progress

    assert last_progress("") is None
    log = "loading\n2026 step 10/400 spa loss 3\r bar 3/9 \n2026 step 20/400 deu loss 2\n"
    assert last_progress(log) == (20, 400)


@pytest.mark.integration
def test_the_app_serves_at_once_and_builds_the_demo_in_the_background(tmp_path):
    """`gradlens app` must not make a newcomer wait for the demo: the server answers while the
    demo is built by a detached process whose log the Runs page follows."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    from conftest import ROOT

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADLENS_RUNS": str(tmp_path / "runs"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gradlens", "app", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline, ok = time.time() + 90, False
        while time.time() < deadline and not ok:
            try:
                ok = urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                            timeout=2).read() == b"ok"
            except OSError:
                time.sleep(0.5)
        assert ok, "the app did not answer within 90 s"
        demo = tmp_path / "runs" / "demo"
        assert (demo / "probe.log").exists() and (demo / "probe.pid").exists()
        os.kill(proc.pid, signal.SIGTERM)  # its pid alone, as a user would: no server outlives it
        proc.wait(timeout=30)
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        try:
            os.killpg(int((tmp_path / "runs" / "demo" / "probe.pid").read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def _state(pid: int) -> str:
    """A process's state letter ('Z' a zombie), '' once it is reaped."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[-1].split()[0]
    except FileNotFoundError:
        return ""


def _until_reaped(pid: int, seconds: float = 20) -> str:
    deadline = time.time() + seconds
    while _state(pid) and time.time() < deadline:
        time.sleep(0.05)
    return _state(pid)


@pytest.mark.integration
def test_a_detached_process_that_ends_is_reaped_not_left_a_zombie(tmp_path):
    pid = start_detached([sys.executable, "-c", "pass"], tmp_path / "log")
    assert _until_reaped(pid) == ""


@pytest.mark.integration
def test_a_server_reaps_the_children_it_inherited_across_exec(tmp_path):
    # `gradlens app` starts the demo's build, then execs into the server
    script = ("import os, subprocess, sys\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(0.5)'])\n"
              "print(child.pid, flush=True)\n"
              "os.execv(sys.executable, [sys.executable, '-c', 'from gradlens.launch import "
              "reap_inherited_children as r; print(r(), flush=True); import time; "
              "time.sleep(30)'])\n")
    server = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        child = int(server.stdout.readline())
        assert server.stdout.readline().strip() == f"[{child}]"
        assert _until_reaped(child) == ""
    finally:
        server.kill()
        server.wait()


def test_a_probe_naming_languages_its_corpus_does_not_speak_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADLENS_RUNS", str(tmp_path))
    with pytest.raises(ValueError, match="the spoken-numbers corpus does not speak est, gle"):
        start_probe("p", ["spa", "est", "gle"], 2)
    with pytest.raises(ValueError, match="corpus 'nope': choose one of"):
        start_probe("p", ["spa", "deu"], 2, corpus="nope")
    assert not (tmp_path / "p").exists()
