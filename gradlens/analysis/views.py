"""Views of a run: gradients of a module, layer or block, by language and task, over steps.

A layer's (or block's) gradient is the concatenation of its modules' gradients, so its sketch
is the concatenation of theirs: inner products add over modules, and no new collisions appear.

    python -c "from gradlens.store import Run; from gradlens.analysis.views import *; \\
               print(unit_sketches(Run('runs/x'), 'speech_encoder.encoder.layers.0').shape)"
"""

from __future__ import annotations

import numpy as np

from gradlens.errors import ConfigError, NotEnoughData
from gradlens.modules import groups
from gradlens.store import Run


def units(run: Run, granularity: str) -> dict[str, list[int]]:
    """The units of ``granularity`` (module, layer, block) and their module indices."""
    return groups(run.modules.name, granularity)


def unit_of(run: Run, key: str) -> list[int]:
    """Module indices of ``key``: a module, a layer or a block name."""
    for granularity in ("module", "layer", "block"):
        found = units(run, granularity).get(key)
        if found:
            return found
    raise ConfigError(f"{key!r} is no module, layer or block of {run.path}")


def unit_sketches(run: Run, key: str, steps=None) -> np.ndarray:
    """Sketches of unit ``key``: ``[S, L, T, n_modules * k]`` over the done (or given) steps."""
    parts = [run.sketch(m, steps) for m in unit_of(run, key)]
    return np.concatenate(parts, axis=-1)


def unit_mean(run: Run, key: str, steps=None) -> np.ndarray:
    """Mean sketch of unit ``key`` over the done (or given) steps: ``[L, T, n_modules * k]``.

    Read and averaged one module at a time, so a block of many modules never sits in memory
    with all its steps at once.
    """
    parts = []
    for m in unit_of(run, key):
        x = run.sketch(m, steps)
        if x.shape[0] == 0:
            raise NotEnoughData(f"{run.path}: no completed steps to average")
        parts.append(x.mean(axis=0, dtype=np.float64))
    return np.concatenate(parts, axis=-1)
