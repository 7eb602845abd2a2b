"""Where gradlens keeps things, and the names of its files: defined here once.

    python -c "from gradlens.paths import runs_dir, cache_dir; print(runs_dir(), cache_dir())"
"""

from __future__ import annotations

import os
from pathlib import Path

RUNS_ENV = "GRADLENS_RUNS"  # where runs live; default ./runs
CACHE_ENV = "GRADLENS_CACHE"  # tokenizers, URIEL distances, trained demo models
PREFETCH_ENV = "GRADLENS_PREFETCH"  # "0": the app makes nothing ahead (a shared machine; the bench)

GRADS_FILE = "grads.h5"  # a run's gradients (schema in docs/design.md)
PLAN_FILE = "plan.json"  # a run's saved sharing plan, and a job's copy of what it trains
AGREEMENT_FILE = "plan-agreement.json"  # how the plan agrees with plans from other probes
TRAIN_CONFIG = "train.json"  # a job's TrainConfig
LOG = "log.txt"  # a job's log
METRICS = "metrics.jsonl"  # a job's losses and scores


def runs_dir() -> Path:
    """The runs directory: ``$GRADLENS_RUNS`` or ``./runs``."""
    return Path(os.environ.get(RUNS_ENV, "runs"))


def cache_dir() -> Path:
    """gradlens' own cache: ``$GRADLENS_CACHE`` or ~/.cache/gradlens."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "gradlens"))


def made_ahead() -> bool:
    """Whether the app may work ahead of its visitors (the first visit's view, the other units'
    trees): not where ``$GRADLENS_PREFETCH`` is ``0``."""
    return os.environ.get(PREFETCH_ENV, "1") != "0"
