"""Shared fixtures: one small real probe run (tiny SeamlessM4T, spoken numbers, CPU) per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SMALL = dict(languages=["spa", "ita", "deu", "rus"], steps=5, batch_size=2, sketch_dim=256,
             train_steps_between=1)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    os.environ["GRADLENS_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def tiny_run(runs_dir) -> Path:
    """A real run: 4 languages × 2 tasks × 5 steps (CCA of rank 1 needs 5), training between steps."""
    from gradlens.probe_config import ProbeConfig
    from probes.loop import probe

    return probe(ProbeConfig(**SMALL, out=str(runs_dir / "small")))


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
