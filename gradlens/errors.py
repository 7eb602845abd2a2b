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


class ConfigError(GradlensError):
    """A setting refused where it is checked: a config field, a corpus or language, a budget, a
    method name. The message names the setting, the value given and what is accepted."""


class NotEnoughData(GradlensError):
    """A run too short (or too narrow) for the statistic asked of it: the message says what the
    statistic needs and what the run has."""


def check_number(where: str, name: str, value, kind: type, ok, expected: str):
    """``value`` as ``kind`` (int or float) if it is one and ``ok(value)`` holds, else a
    ``ConfigError`` naming ``where``, the field and what was expected. Booleans, strings and
    non-integral floats for an int are refused rather than coerced."""
    try:
        good = (not isinstance(value, (bool, str)) and ok(kind(value))
                and (kind is float or float(value).is_integer()))
    except (TypeError, ValueError, OverflowError):
        good = False
    if not good:
        raise ConfigError(f"{where}: {name} must be {expected}, got {value!r}")
    return kind(value)
