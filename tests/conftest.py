"""Shared fixtures: one small real probe run (tiny SeamlessM4T, spoken numbers, CPU) per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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
def tiny_run(runs_dir) -> Path:
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
