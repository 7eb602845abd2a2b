"""The errors gradlens raises for bad input: one tree, so callers catch what they expect.

Each names the file (or run, job, plan), the field and what was expected. Anything else that
escapes is a bug and keeps its traceback.

    python -c "from gradlens.errors import GradlensError; help(GradlensError)"
"""

from __future__ import annotations


class GradlensError(ValueError):
    """Bad input to gradlens: a run, plan, manifest, job, experiment or model it cannot use."""


class ModelNotFound(GradlensError, FileNotFoundError):
    """A model that is neither a built-in name, nor a local path, nor in the local HF cache."""
