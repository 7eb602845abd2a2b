"""What every corpus gives: ``Example`` rows, the ``Corpus`` protocol, splits and 16 kHz audio.

    python -m gradlens.corpus spa deu fin      # examples of the spoken-numbers corpus
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

SAMPLE_RATE = 16_000
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Example:
    """One utterance. ``audio`` has shape ``[samples]``, float32 in [-1, 1], 16 kHz. ``item``
    names its content: examples of different languages with one item say the same thing ('' when
    the corpus does not know)."""

    id: str
    src_lang: str
    tgt_lang: str
    transcript: str
    translation: str
    audio: np.ndarray = field(repr=False)
    item: str = ""


class Corpus(Protocol):
    """What probes and training read. ``paired``: batch ``step`` holds the same content (items) in
    every language, so the languages' gradients at one step can be compared row by row (the
    paired similarity and the paired CCA evidence need it)."""

    name: str
    languages: list[str]
    seed: int
    paired: bool

    def batch(self, lang: str, split: str, size: int, step: int) -> list[Example]: ...

    def evaluation_set(self, lang: str, split: str, size: int = 0) -> list[Example]: ...

    def sizes(self, split: str = "train") -> dict[str, int]: ...

    def texts(self, per_language: int = 400) -> list[str]: ...


def split_of(key: int | str) -> str:
    """The split of an item, whatever its language: 80 % train, 10 % dev, 10 % test, fixed for all
    seeds, so nothing spoken in training is ever tested on. (Spoken numbers key by the number.)"""
    bucket = zlib.crc32(f"gradlens-split-{key}".encode()) % 100
    return "train" if bucket < 80 else "dev" if bucket < 90 else "test"


def spoken_languages(corpus: str, asked: list[str] | None, speaks: list[str]) -> list[str]:
    """The languages a corpus is asked for (all it ``speaks`` when none are), refusing those it
    does not speak by name."""
    from gradlens.errors import ConfigError

    languages = list(asked or speaks)
    unknown = [code for code in languages if code not in speaks]
    if unknown:
        raise ConfigError(f"{corpus} has no language(s) {unknown}; choose from {sorted(speaks)}")
    return languages


def check_split(split: str) -> str:
    from gradlens.errors import ConfigError

    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    """Resample int16 or float audio to 16 kHz mono float32 in [-1, 1]."""
    from scipy.signal import resample_poly

    x = np.asarray(samples)
    if x.ndim == 2:
        x = x.mean(axis=1)
    x = x.astype(np.float32) / 32768.0 if np.issubdtype(x.dtype, np.integer) else x.astype(np.float32)
    if rate != SAMPLE_RATE:
        g = np.gcd(int(rate), SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // g, int(rate) // g).astype(np.float32)
    return np.clip(x, -1.0, 1.0)  # the resampling filter overshoots full-scale peaks slightly
