"""The CLDR phrases corpus: every language renders every item, n-way parallel, fixed splits,
deterministic speech, speaking rates matched."""

import re

import numpy as np
import pytest

from gradlens.corpus import SPLITS, CldrPhrases, open_corpus
from gradlens.corpus.phrases import (ITEMS, KINDS, UNITS, item_kind, items, mean_duration,
                                     phrase, rate_sample)
from gradlens.languages import LANGUAGES, PHRASE_LANGUAGES, TARGET


def test_at_least_24_languages_of_7_families_with_the_low_resource_ones():
    families = {LANGUAGES[x].family for x in PHRASE_LANGUAGES}
    assert len(PHRASE_LANGUAGES) >= 24 and len(families) >= 7
    assert {"est", "gle", "swh"} <= set(PHRASE_LANGUAGES)


@pytest.mark.parametrize("code", sorted(PHRASE_LANGUAGES) + [TARGET.code])
def test_every_language_renders_every_kind_without_a_fallback(code):
    locale = TARGET.locale if code == TARGET.code else LANGUAGES[code].locale
    for item in range(0, 50 * len(KINDS)):
        text = phrase(item, locale)
        assert text.strip() and not any(unit in text for unit in UNITS), (item, text)
        assert not re.search("[\u00a0\u202f\u200e\u200f]", text), (item, text)


def test_word_order_follows_the_locale():
    date = next(i for i in range(ITEMS) if item_kind(i) == "date")
    weekday = phrase(date, "en").split(",")[0]  # "Thursday, October 12, 2006"
    assert phrase(date, "en").startswith(weekday)
    # Hungarian and Turkish put the weekday last
    assert phrase(date, "hu").endswith(("hétfő", "kedd", "szerda", "csütörtök", "péntek",
                                        "szombat", "vasárnap"))
    assert phrase(date, "tr").split()[-1] in ("Pazartesi", "Salı", "Çarşamba", "Perşembe", "Cuma",
                                              "Cumartesi", "Pazar")


def test_splits_are_disjoint_by_item_fixed_and_80_10_10():
    parts = {split: set(items(split).tolist()) for split in SPLITS}
    assert not parts["train"] & parts["dev"] and not parts["train"] & parts["test"]
    assert not parts["dev"] & parts["test"]
    assert sum(map(len, parts.values())) == ITEMS
    assert abs(len(parts["train"]) / ITEMS - 0.8) < 0.02
    assert abs(len(parts["dev"]) / ITEMS - 0.1) < 0.01
    for seed in (0, 5):
        corpus = CldrPhrases(["est", "gle"], seed=seed, matched_rates=False)
        for step in range(5):
            assert set(corpus.items("dev", 8, step)) <= parts["dev"]
    assert set(CldrPhrases(["est"]).evaluation_items("test", 50)) <= parts["test"]


def test_n_way_parallel_and_deterministic_for_a_seed():
    corpus = CldrPhrases(["hun", "tur", "swh"], seed=3, matched_rates=False)
    batches = {x: corpus.batch(x, "train", 3, step=7) for x in corpus.languages}
    assert len({tuple(e.item for e in b) for b in batches.values()}) == 1
    assert len({tuple(e.translation for e in b) for b in batches.values()}) == 1
    assert [e.transcript for e in batches["hun"]] != [e.transcript for e in batches["tur"]]
    again = CldrPhrases(["hun", "tur", "swh"], seed=3, matched_rates=False).batch("hun", "train", 3, 7)
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(batches["hun"], again))
    other = CldrPhrases(["hun"], seed=4, matched_rates=False)
    assert [e.item for e in other.batch("hun", "train", 3, 7)] != [e.item for e in again]
    item = int(again[0].item.removeprefix("cldr-"))
    assert not np.array_equal(other.example("hun", item).audio, again[0].audio)  # speed, pitch
    assert 0.3 < again[0].audio.size / 16_000 < 15


def test_the_tokenizer_texts_come_from_training_items_only():
    corpus = CldrPhrases(["est"], matched_rates=False)
    held_out = {phrase(int(i), "et") for split in ("dev", "test") for i in items(split)}
    train = {phrase(int(i), "et") for i in items("train")}
    texts = set(corpus.texts(per_language=100))
    assert texts and not (texts - train - {phrase(int(i), "en") for i in items("train")})
    assert not texts & (held_out - train)


def test_matched_rates_bring_each_language_to_englishs_mean_duration():
    sample = rate_sample()[:12]
    english = mean_duration(TARGET.code, 175, sample)
    natural, matched = [], []
    corpus = open_corpus("cldr-phrases", ["fin", "ell", "jpn"])
    for code in corpus.languages:
        natural.append(mean_duration(code, 175, sample) / english)
        matched.append(mean_duration(code, corpus.rate(code), sample) / english)
    assert max(abs(np.log(matched))) < 0.15, matched  # within about 15 % of English
    assert max(abs(np.log(matched))) < max(abs(np.log(natural))), (natural, matched)
