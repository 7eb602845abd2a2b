"""The CLDR phrases corpus: dates, times, measurements, money, places, lists of places and
relative times as each locale writes them, spoken by espeak-ng, translated to English.

Every phrase comes from the Unicode CLDR data that the ``babel`` wheel ships: a full date in the
locale's own order and words (Hungarian and Turkish end on the weekday: "2026. március 14.,
szombat", "14 Mart 2026 Cumartesi"), a time, a measurement with its unit's plural form, an
amount of money with its currency's name, a country's name, a list of countries joined by the
locale's list pattern ("España, Francia y Alemania"), and a relative time ("hace 3 días").
Digits stay digits, as the locales write them: espeak-ng reads them in the voice's language.
The English translation is the English locale's rendering of the same item.

An item is a number; what it says depends on the number alone (not on the seed), so the corpus
is n-way parallel: item ``i`` says the same thing in every language, and batch ``step`` draws the
same items for every language (``paired``). Items split 80/10/10 by their number, the same for
every seed. With ``matched_rates`` (the default) each language speaks at the espeak-ng rate that
makes its mean duration over a fixed sample of training items the English one's
(``speaking_rate``), so that utterance length does not stand in for the language.

    python -m gradlens.corpus --corpus cldr-phrases est gle swh hun tur
    python bench/speaking_rates.py      # the durations that remain, per language
"""

from __future__ import annotations

import datetime as dt
import json
import zlib
from decimal import Decimal
from functools import lru_cache
from itertools import zip_longest

import numpy as np

from gradlens.corpus.base import SPLITS, Example, check_split, split_of, spoken_languages
from gradlens.corpus.espeak import Espeak, speech
from gradlens.languages import LANGUAGES, PHRASE_LANGUAGES, TARGET

NAME = "cldr-phrases"
NATURAL = NAME + ":natural-rates"  # every language at espeak-ng's own rate for its voice
ITEMS = 40_000
KINDS = ("date", "time", "measure", "money", "place", "places", "relative")
# the units whose long forms Babel 2.18's CLDR data holds in every language here (metres,
# litres, hours and days lack some plural forms in some locales, e.g. sw, ga, ja)
UNITS = ("length-kilometer", "mass-kilogram", "temperature-celsius", "area-square-meter")
CURRENCIES = ("EUR", "USD", "GBP", "JPY", "CHF", "INR")
TERRITORIES = ("ES", "FR", "DE", "IT", "PT", "NL", "BE", "CH", "AT", "PL", "CZ", "SE", "NO",
               "DK", "FI", "EE", "LV", "LT", "IE", "GB", "GR", "TR", "EG", "MA", "KE", "TZ",
               "NG", "ZA", "ET", "IN", "CN", "JP", "KR", "VN", "TH", "ID", "MY", "AU", "NZ",
               "US", "CA", "MX", "BR", "AR", "CL", "PE", "CO", "RU", "UA", "HU", "RO", "BG",
               "GE", "AM", "IR", "SA", "IL", "PK", "BD", "LK")
# relative-time units with the largest count babel still names in that unit (its thresholds)
_RELATIVE = (("minutes", 50), ("hours", 20), ("days", 5), ("weeks", 3), ("months", 9),
             ("years", 30))
_BASE_RATE = 175  # espeak-ng's default words per minute
_RATE_SAMPLE = 40  # training items each language's rate is matched on
EVAL_SEED = 0  # dev and test sets are drawn and spoken alike whatever the training seed


# -- what an item says ------------------------------------------------------------------------
def item_kind(item: int) -> str:
    return KINDS[item % len(KINDS)]


def phrase(item: int, locale: str) -> str:
    """What ``item`` says in ``locale`` (a CLDR locale such as ``hu``; ``en`` for English)."""
    return _phrase(int(item), locale)


# CLDR's narrow and no-break spaces become plain ones, and bidirectional marks go: espeak-ng and
# a tokenizer read them as characters of their own
_PLAIN = str.maketrans({"\u202f": " ", "\u00a0": " ", "\u2009": " ", "\u200e": None,
                        "\u200f": None, "\u061c": None})


@lru_cache(maxsize=65536)
def _phrase(item: int, locale: str) -> str:
    return _render(item, locale).translate(_PLAIN)


def _render(item: int, locale: str) -> str:
    from babel import Locale, dates, lists, numbers, units

    rng = np.random.default_rng([0x434C4452, item])  # the content: the item's alone, no seed
    kind = item_kind(item)
    if kind == "date":
        day = dt.date(1950, 1, 1) + dt.timedelta(days=int(rng.integers(0, 36524)))
        return dates.format_date(day, "full", locale=locale)
    if kind == "time":
        at = dt.time(int(rng.integers(0, 24)), 5 * int(rng.integers(0, 12)))
        return dates.format_time(at, "short", locale=locale)
    if kind == "measure":
        value = int(rng.integers(1, 1000)) if rng.random() < 0.8 else float(rng.integers(1, 100)) + 0.5
        return units.format_unit(value, str(rng.choice(UNITS)), "long", locale=locale)
    if kind == "money":
        amount = Decimal(int(rng.integers(100, 1_000_000))) / 100
        return numbers.format_currency(amount, str(rng.choice(CURRENCIES)), locale=locale,
                                       format_type="name")
    names = Locale.parse(locale).territories
    if kind == "place":
        return names[str(rng.choice(TERRITORIES))]
    if kind == "places":
        picked = rng.choice(TERRITORIES, size=int(rng.integers(2, 5)), replace=False)
        return lists.format_list([names[str(x)] for x in picked], locale=locale)
    unit, most = _RELATIVE[int(rng.integers(len(_RELATIVE)))]
    count = int(rng.integers(1, most + 1))
    days = {"minutes": count / 1440, "hours": count / 24, "days": count, "weeks": 7 * count,
            "months": 30 * count, "years": 365 * count}[unit]
    sign = 1 if rng.random() < 0.5 else -1
    return dates.format_timedelta(dt.timedelta(days=sign * days), add_direction=True,
                                  locale=locale)


def items(split: str) -> np.ndarray:
    """All items of ``split``, ascending (80/10/10 by item, fixed for every seed)."""
    check_split(split)
    return _items(split)


@lru_cache(maxsize=3)
def _items(split: str) -> np.ndarray:
    return np.array([i for i in range(ITEMS) if split_of(f"cldr-{i}") == split])


# -- speaking rates ---------------------------------------------------------------------------
def rate_sample() -> list[int]:
    """The training items every language's speaking rate is matched on: each kind in turn."""
    train = items("train")
    by_kind = [[int(i) for i in train if item_kind(int(i)) == kind][: _RATE_SAMPLE // len(KINDS) + 1]
               for kind in KINDS]
    return [i for turn in zip_longest(*by_kind) for i in turn if i is not None][:_RATE_SAMPLE]


def mean_duration(lang: str, rate: int, sample: list[int] | None = None) -> float:
    """Mean seconds of ``sample`` (default ``rate_sample``) spoken in ``lang`` at ``rate``
    words per minute (``eng``: English)."""
    spec = TARGET if lang == TARGET.code else LANGUAGES[lang]
    espeak = Espeak.get()
    lengths = [len(espeak.speak(phrase(i, spec.locale), spec.voice, rate=rate))
               for i in (sample or rate_sample())]
    return float(np.mean(lengths)) / espeak.rate


@lru_cache(maxsize=1)
def _english_duration() -> float:
    """English's mean duration at the default rate: the reference every language is matched
    to, spoken once per process (not once per language)."""
    return mean_duration(TARGET.code, _BASE_RATE)


def speaking_rate(lang: str) -> int:
    """The espeak-ng rate (words per minute, 80-450) at which ``lang``'s mean duration over
    ``rate_sample`` matches English at the default rate: duration falls as 1/rate, so two
    corrections from the default land within a few per cent. Kept on disk per language and
    espeak-ng data version."""
    from gradlens.paths import cache_dir

    import espeakng_loader

    key = f"{lang}-{getattr(espeakng_loader, '__version__', '0')}-{_RATE_SAMPLE}-{ITEMS}"
    path = cache_dir() / "phrases" / f"rate-{zlib.crc32(key.encode()):08x}.json"
    try:
        return int(json.loads(path.read_text())["rate"])
    except (OSError, ValueError, KeyError):
        pass
    target = _english_duration()
    rate = _BASE_RATE
    for _ in range(2):
        rate = int(np.clip(round(rate * mean_duration(lang, rate) / target), 80, 450))
    from gradlens.atomic import write_text

    write_text(path, json.dumps({"lang": lang, "rate": rate, "key": key}))
    return rate


# -- the corpus -------------------------------------------------------------------------------
class CldrPhrases:
    """The corpus (the module's description): deterministic for a seed, which varies the
    items drawn and each utterance's speed (±15 % around the language's rate) and pitch."""

    paired = True

    def __init__(self, languages: list[str] | None = None, seed: int = 0,
                 matched_rates: bool = True):
        self.languages = spoken_languages(NAME, languages, PHRASE_LANGUAGES)
        self.seed = seed
        self.matched_rates = matched_rates
        self.name = NAME if matched_rates else NATURAL
        self._rates: dict[str, int] = {}

    def rate(self, lang: str) -> int:
        """``lang``'s speaking rate: matched (``speaking_rate``) or espeak-ng's default."""
        if not self.matched_rates:
            return _BASE_RATE
        if lang not in self._rates:
            self._rates[lang] = speaking_rate(lang)
        return self._rates[lang]

    def example(self, lang: str, item: int, seed: int | None = None) -> Example:
        spec = LANGUAGES[lang]
        seed = self.seed if seed is None else seed
        rng = np.random.default_rng([seed, zlib.crc32(f"{lang}/cldr/{item}".encode())])
        rate = int(np.clip(round(self.rate(lang) * rng.uniform(0.87, 1.15)), 80, 450))
        text = phrase(item, spec.locale)
        audio = speech(text, spec.voice, rate, int(rng.integers(30, 71)))
        return Example(id=f"{lang}-cldr-{item}", src_lang=lang, tgt_lang=TARGET.code,
                       transcript=text, translation=phrase(item, TARGET.locale),
                       audio=audio, item=f"cldr-{item}")

    def items(self, split: str, size: int, step: int) -> list[int]:
        """The items of batch ``step``: the same for every language (paired)."""
        pool = items(split)
        rng = np.random.default_rng([self.seed, step, SPLITS.index(split), 0xC1D8])
        return [int(i) for i in rng.choice(pool, size=size, replace=False)]

    def batch(self, lang: str, split: str, size: int, step: int) -> list[Example]:
        return [self.example(lang, i) for i in self.items(split, size, step)]

    def evaluation_items(self, split: str, size: int = 0) -> list[int]:
        """The items ``split`` is scored on: the first ``size`` (all for 0) of a fixed shuffled
        order, the same whatever the seed."""
        pool = items(split)
        order = np.random.default_rng([EVAL_SEED, SPLITS.index(split), 0xC1D8]).permutation(pool)
        return [int(i) for i in order[: size or None]]

    def evaluation_set(self, lang: str, split: str, size: int = 0) -> list[Example]:
        return [self.example(lang, i, seed=EVAL_SEED) for i in self.evaluation_items(split, size)]

    def sizes(self, split: str = "train") -> dict[str, int]:
        return {lang: len(items(split)) for lang in self.languages}

    def texts(self, per_language: int = 400) -> list[str]:
        """Transcripts and translations of training items only, for training a tokenizer;
        deterministic."""
        train = items("train")
        chosen = train[np.linspace(0, len(train) - 1, per_language).astype(int)]
        locales = [TARGET.locale] + [LANGUAGES[x].locale for x in self.languages]
        return [phrase(int(i), loc) for loc in locales for i in chosen]

