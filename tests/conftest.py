"""Shared fixtures (one small real probe run per session: tiny SeamlessM4T, spoken numbers,
CPU) and the two test tiers.

The default ``pytest`` runs the unit tier: pure functions, simulated sketches, small HDF5 files
written by the store, tiny models built in memory. A test is ``integration`` (``pytest -m
integration``) when it starts a real probe, a subprocess, Streamlit's AppTest, a Ray head,
torchrun or Chromium. The mark is given here, from what a test uses (``INTEGRATION_FIXTURES``,
``INTEGRATION_IMPORTS``) or by hand (``@pytest.mark.integration``), and a unit-tier test that
starts a probe or a process anyway fails at once, naming what it started: no test lands in the
wrong tier unnoticed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# fixtures that make a test integration, and why
INTEGRATION_FIXTURES = {"tiny_run": "a real probe"}
# what a test module imports that makes every test in it integration
INTEGRATION_IMPORTS = {"AppTest": "Streamlit's AppTest", "served_app": "a served app",
                       "browser_page": "Chromium"}
# audit events a unit-tier test must not raise (gradlens.probe: probes.loop.probe starting)
_STARTS = ("subprocess.Popen", "os.posix_spawn", "os.fork", "os.forkpty", "os.exec", "os.spawn",
           "gradlens.probe")
# helpers that libraries run to find shared libraries (ctypes.util.find_library), and the
# embedded corpora's speech engine (one espeak-ng worker per process, not a subject of the test)
_HELPERS = {"ldconfig", "gcc", "cc", "ld", "objdump", "uname"}
_HELPER_SCRIPTS = (str(ROOT / "gradlens" / "corpus" / "espeak_worker.py"),)
_unit_test: str | None = None


def _integration_reason(item) -> str | None:
    if item.get_closest_marker("integration"):
        return "marked"
    for name in INTEGRATION_FIXTURES.keys() & set(getattr(item, "fixturenames", ())):
        return f"uses {name} ({INTEGRATION_FIXTURES[name]})"
    module = getattr(item, "module", None)
    for name in INTEGRATION_IMPORTS.keys() & set(vars(module) if module else ()):
        return f"its module imports {name} ({INTEGRATION_IMPORTS[name]})"
    return None


@pytest.hookimpl(tryfirst=True)  # before -m deselects by the mark
def pytest_collection_modifyitems(config, items):
    for item in items:
        if _integration_reason(item):
            item.add_marker(pytest.mark.integration)


def _started(event: str, args: tuple) -> str | None:
    """What a start event started, unless it is a library's helper."""
    if event == "gradlens.probe":
        return f"a real probe into {args[0]}"
    if event == "subprocess.Popen":
        argv = args[1] if isinstance(args[1], (list, tuple)) else [args[1]]
        program = os.path.basename(str(args[0] or argv[0]))
        if program in _HELPERS or any(str(a) in _HELPER_SCRIPTS for a in argv[1:2]):
            return None
        return f"a subprocess: {' '.join(map(str, argv))[:120]}"
    return f"a process ({event})"


def _tier_guard(event: str, args: tuple) -> None:
    if _unit_test is None or not event.startswith(_STARTS):
        return
    what = _started(event, args)
    if what:
        raise RuntimeError(f"{_unit_test} is in the unit tier but started {what}: give it an "
                           "integration fixture (tests/conftest.py) or @pytest.mark.integration")


sys.addaudithook(_tier_guard)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    global _unit_test
    _unit_test = None if item.get_closest_marker("integration") else item.nodeid
    try:
        yield
    finally:
        _unit_test = None

SMALL = dict(languages=["spa", "ita", "deu", "rus"], steps=11, batch_size=2, sketch_dim=256,
             train_steps_between=1)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    os.environ["GRADLENS_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def tiny_run(runs_dir) -> Path:  # makes its users integration (INTEGRATION_FIXTURES)
    """A real run: 4 languages × 2 tasks × 11 steps, training between steps (CCA of rank 1 then
    needs 11)."""
    from gradlens.probe_config import ProbeConfig
    from probes.loop import probe

    return probe(ProbeConfig(**SMALL, out=str(runs_dir / "small")))


def random_run(directory: Path, languages=("spa", "ita", "deu", "rus"), steps: int = 8,
               k: int = 256, probe_config: dict | None = None) -> Path:
    """A real run file written without a model (random sketches of six decoder modules): for
    what needs a run but not a probe (damage, plans with a source run)."""
    import numpy as np

    from gradlens.store import ModuleTable, RunWriter

    modules = ModuleTable(name=[f"text_decoder.layers.{i}.{m}" for i in range(3)
                                for m in ("self_attn", "ffn")],
                          n_params=np.array([4096, 8192] * 3), kind=["self_attn", "ffn"] * 3,
                          exact=np.zeros(6, bool))
    rng = np.random.default_rng(0)
    with RunWriter(directory, languages=list(languages), tasks=["st", "asr"], modules=modules,
                   sketch_dim=k, sketch_seed=0, model="tiny", model_config={},
                   probe_config={"steps": steps, "tasks": ["st", "asr"],
                                 **(probe_config or {})}) as w:
        for step in range(steps):
            shape = (len(languages), 2, len(modules), k)
            w.append(step, rng.normal(size=shape).astype(np.float16),
                     rng.uniform(1, 2, shape[:3]).astype(np.float32),
                     np.ones(shape[:2], np.float32))
    return directory


def stop_jobs(runs: Path) -> None:
    """Cancel the jobs a test left running in ``runs`` (they would slow every later test)."""
    from gradlens.jobs import JobError, Registry, cancel, refresh

    try:
        jobs = refresh(Registry(runs)) if (runs / "jobs.sqlite").exists() else []
    except JobError:  # a test that broke the registry on purpose
        return
    registry = Registry(runs)
    for job in jobs:
        if job.active:
            try:
                cancel(job.id, registry, wait=5)
            except Exception:
                pass
