"""The spoken-numbers corpus: numbers, ordinals and years written by ``num2words`` and spoken by
espeak-ng in many languages, translated to English; paired (batch ``step`` holds the same numbers
in every language), unlimited and deterministic.

    python -m gradlens.corpus spa deu fin   # prints a few examples per language
"""

from __future__ import annotations

import zlib
from itertools import zip_longest

import numpy as np

from gradlens.corpus.base import SPLITS, Example, check_split, split_of, spoken_languages
from gradlens.corpus.espeak import speech
from gradlens.errors import ConfigError
from gradlens.languages import LANGUAGES, NUMBER_LANGUAGES, TARGET

# Numbers each kind draws from.
_RANGES = {"cardinal": (0, 9999), "ordinal": (1, 100), "year": (1100, 2099)}


def numbers(kind: str, split: str) -> np.ndarray:
    """All numbers of ``kind`` in ``split``, ascending."""
    lo, hi = _RANGES[kind]
    return np.array([n for n in range(lo, hi + 1) if split_of(n) == split])


def write_number(n: int, kind: str, lang: str) -> str:
    """``n`` written as words in ``lang`` (``eng`` for the English translation)."""
    from num2words import num2words

    spec = TARGET if lang == TARGET.code else LANGUAGES[lang]
    return num2words(n, lang=spec.num2words, to=kind)


def common_kinds(languages: list[str]) -> tuple[str, ...]:
    """The number kinds every one of ``languages`` can write (cardinals always)."""
    return tuple(kind for kind in _RANGES if all(kind in LANGUAGES[x].kinds for x in languages))


EVAL_SEED = 0  # dev and test sets are drawn and spoken alike whatever the training seed


class SpokenNumbers:
    """Numbers, ordinals and years spoken in many languages, translated to English.

    Deterministic for a seed: ``example(lang, kind, n)`` always gives the same audio, and
    ``batch(lang, split, size, step)`` the same numbers. Speed and pitch vary per utterance.

    Every language of a corpus draws only the kinds all of them can write (``kinds``), so a
    batch holds the same English targets in every language: a language that cannot write
    ordinals never speaks a cardinal in their place, which would plant a difference between
    languages that is about the data, not the language. Dev and test sets are fixed whatever
    the seed, without repeats (``evaluation_set``).
    """

    name = "spoken-numbers"
    paired = True

    def __init__(self, languages: list[str] | None = None, seed: int = 0,
                 reversed_targets: tuple[str, ...] = ()):
        self.languages = languages = spoken_languages(self.name, languages, NUMBER_LANGUAGES)
        self.seed = seed
        self.kinds = common_kinds(languages)
        self.reversed_targets = tuple(reversed_targets)
        if self.reversed_targets:
            self.name = CONTROL + ",".join(self.reversed_targets)

    def translation(self, n: int, kind: str, lang: str) -> str:
        """The English target of ``n`` spoken in ``lang``: in reversed word order for the
        planted group of the positive control."""
        text = write_number(n, kind, TARGET.code)
        return " ".join(text.split()[::-1]) if lang in self.reversed_targets else text

    def example(self, lang: str, kind: str, n: int, seed: int | None = None) -> Example:
        """One utterance; ``seed`` (default the corpus's) varies its speed and pitch."""
        spec = LANGUAGES[lang]
        if kind not in spec.kinds:
            raise ConfigError(f"num2words cannot write {kind} numbers in {lang}; it can {spec.kinds}")
        seed = self.seed if seed is None else seed
        rng = np.random.default_rng([seed, zlib.crc32(f"{lang}/{kind}/{n}".encode())])
        rate, pitch = int(rng.integers(140, 211)), int(rng.integers(30, 71))
        text = write_number(n, kind, lang)
        return Example(
            id=f"{lang}-{kind}-{n}",
            src_lang=lang,
            tgt_lang=TARGET.code,
            transcript=text,
            translation=self.translation(n, kind, lang),
            audio=speech(text, spec.voice, rate, pitch),
            item=f"{kind}-{n}",
        )

    def items(self, split: str, size: int, step: int) -> list[tuple[str, int]]:
        """The (kind, number) pairs of batch ``step``: the same for every language (paired)."""
        check_split(split)
        rng = np.random.default_rng([self.seed, step, SPLITS.index(split)])
        kinds = rng.choice(list(self.kinds), size=size)
        return [(str(kind), int(rng.choice(numbers(kind, split)))) for kind in kinds]

    def batch(self, lang: str, split: str, size: int, step: int) -> list[Example]:
        """Batch ``step`` of ``lang``."""
        return [self.example(lang, kind, n) for kind, n in self.items(split, size, step)]

    def evaluation_items(self, split: str, size: int = 0) -> list[tuple[str, int]]:
        """The distinct (kind, number) pairs ``split`` is scored on: every one of the split
        (``size`` 0) or the first ``size``, the kinds taken in turn, each in a fixed shuffled
        order. The same whatever the seed."""
        check_split(split)
        rng = np.random.default_rng([EVAL_SEED, SPLITS.index(split)])
        queues = [[(kind, int(n)) for n in rng.permutation(numbers(kind, split))]
                  for kind in self.kinds]
        out = [item for turn in zip_longest(*queues) for item in turn if item is not None]
        return out[: size or None]

    def evaluation_set(self, lang: str, split: str, size: int = 0) -> list[Example]:
        """The fixed utterances of ``lang`` that ``split`` is scored on (``evaluation_items``),
        spoken alike whatever the seed."""
        return [self.example(lang, kind, n, seed=EVAL_SEED)
                for kind, n in self.evaluation_items(split, size)]

    def sizes(self, split: str = "train") -> dict[str, int]:
        """Distinct utterances per language in ``split`` (the same for every language)."""
        n = sum(len(numbers(kind, split)) for kind in self.kinds)
        return {lang: n for lang in self.languages}

    def texts(self, per_language: int = 400) -> list[str]:
        """Transcripts and translations of training numbers only, for training a tokenizer
        (a tokenizer that saw dev or test text would leak them); deterministic."""
        out = []
        for kind in _RANGES:
            train = numbers(kind, "train")
            values = train[np.linspace(0, len(train) - 1, per_language // len(_RANGES)).astype(int)]
            out += [write_number(int(n), kind, TARGET.code) for n in values]
            if self.reversed_targets:
                out += [self.translation(int(n), kind, self.reversed_targets[0]) for n in values]
            for lang in self.languages:
                if kind in LANGUAGES[lang].kinds:
                    out += [write_number(int(n), kind, lang) for n in values]
        return out


CONTROL = "spoken-numbers:reversed="  # a corpus name's prefix: the positive control's corpus
