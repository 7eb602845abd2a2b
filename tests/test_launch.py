"""Probes started from the app run as detached processes and are found again from disk."""

import time

import pytest

from gradlens.launch import run_dir_for, start_probe, starting_probes
from gradlens.store import Run, being_written


@pytest.mark.slow
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


@pytest.mark.slow
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
