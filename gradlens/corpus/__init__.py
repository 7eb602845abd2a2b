"""Corpora: what probes and training read (``Corpus``), one file each.

- ``numbers``: the embedded spoken-numbers corpus, and the positive control built on it;
- ``phrases``: the embedded CLDR phrases corpus (dates, times, measurements, money, places);
- ``manifest``: real data as a TSV manifest, content-paired when it names items;
- ``espeak``: the espeak-ng library (``espeakng-loader`` wheel) that speaks the embedded ones.

All give ``Example`` rows: 16 kHz mono float32 audio, the source-language transcript (for ASR)
and the English translation (for ST).

    python -m gradlens.corpus spa deu fin                 # examples of the spoken numbers
    python -m gradlens.corpus --corpus cldr-phrases est gle swh
"""

from __future__ import annotations

from gradlens.corpus.base import SAMPLE_RATE, SPLITS, Corpus, Example, split_of, to_16k
from gradlens.corpus.espeak import Espeak
from gradlens.corpus.manifest import MANIFEST_COLUMNS, Manifest, ManifestError, read_audio
from gradlens.corpus.numbers import CONTROL, SpokenNumbers, common_kinds, numbers, write_number
from gradlens.corpus.phrases import CldrPhrases
from gradlens.corpus.phrases import NAME as CLDR_PHRASES
from gradlens.corpus.phrases import NATURAL as CLDR_PHRASES_NATURAL
from gradlens.errors import ConfigError

__all__ = ["CLDR_PHRASES", "CLDR_PHRASES_NATURAL", "CONTROL", "EMBEDDED", "MANIFEST_COLUMNS", "SAMPLE_RATE", "SPLITS",
           "CldrPhrases", "Corpus", "Espeak", "Example", "Manifest", "ManifestError",
           "SpokenNumbers", "common_kinds", "is_embedded", "is_spoken_numbers", "numbers",
           "open_corpus", "read_audio", "split_of", "to_16k", "write_number"]


# the embedded corpora, by the names a probe or a job gives them (the positive control too)
EMBEDDED = ("spoken-numbers", CLDR_PHRASES, CLDR_PHRASES_NATURAL, CONTROL + "L1,L2,...")


def open_corpus(name: str, languages: list[str], seed: int = 0) -> Corpus:
    """The corpus a probe or a training job names: ``spoken-numbers``; ``cldr-phrases`` (speaking
    rates matched across languages) or ``cldr-phrases:natural-rates``; the positive control
    ``spoken-numbers:reversed=spa,nld,ukr`` (the listed languages' English targets in reversed
    word order, a conflict planted by construction); or a manifest TSV, checked to hold every
    language."""
    if name == "spoken-numbers":
        return SpokenNumbers(languages, seed=seed)
    if name in (CLDR_PHRASES, CLDR_PHRASES_NATURAL):
        return CldrPhrases(languages, seed=seed, matched_rates=name == CLDR_PHRASES)
    if name.startswith(CONTROL):
        group = tuple(x for x in name[len(CONTROL):].split(",") if x)
        outside = sorted(set(group) - set(languages))
        if not group or outside or len(group) == len(languages):
            raise ConfigError(
                f"corpus {name!r}: the reversed group must be a non-empty proper subset of the "
                f"languages {languages}" + (f"; {outside} are not among them" if outside else ""))
        return SpokenNumbers(languages, seed=seed, reversed_targets=group)
    corpus = Manifest(name, seed=seed)
    missing = [code for code in languages if code not in corpus.languages]
    if missing:
        raise ConfigError(f"{name}: no rows for language(s) {missing}; it has {corpus.languages}")
    return corpus


def is_spoken_numbers(name: str) -> bool:
    """Whether ``name`` is the spoken-numbers corpus (natural or positive control)."""
    return name == "spoken-numbers" or name.startswith(CONTROL)


def is_embedded(name: str) -> bool:
    """Whether ``name`` is an embedded corpus, which scores its own dev and test splits (a
    manifest is one split; its dev and test sets are other manifests)."""
    return is_spoken_numbers(name) or name in (CLDR_PHRASES, CLDR_PHRASES_NATURAL)
