import numpy as np
import pytest

from gradlens.corpus import SAMPLE_RATE, SPLITS, SpokenNumbers, numbers, split_of, write_number
from gradlens.languages import LANGUAGES, NUMBER_LANGUAGES


def test_at_least_24_languages_from_6_families():
    spoken = [LANGUAGES[x] for x in NUMBER_LANGUAGES]
    assert len(spoken) >= 24
    assert len({lang.family for lang in spoken}) >= 6
    for fam in ["Romance", "Germanic", "Slavic", "Uralic", "Baltic", "Turkic", "Semitic"]:
        assert any(lang.family == fam for lang in spoken), fam


@pytest.mark.parametrize("code", sorted(NUMBER_LANGUAGES))
def test_every_language_speaks_and_writes(code):
    corpus = SpokenNumbers([code], seed=0)
    for kind in LANGUAGES[code].kinds:
        n = 21 if kind == "ordinal" else 1987
        ex = corpus.example(code, kind, n)
        assert ex.transcript and ex.translation
        assert ex.audio.dtype == np.float32 and ex.audio.ndim == 1
        assert 0.2 * SAMPLE_RATE < ex.audio.size < 10 * SAMPLE_RATE
        assert np.abs(ex.audio).max() > 0.01 and np.abs(ex.audio).max() <= 1.0


def test_deterministic_for_a_seed_and_varied_across_seeds():
    a = SpokenNumbers(["fin"], seed=3).batch("fin", "train", 3, step=5)
    b = SpokenNumbers(["fin"], seed=3).batch("fin", "train", 3, step=5)
    c = SpokenNumbers(["fin"], seed=4).example("fin", "cardinal", 1234)
    d = SpokenNumbers(["fin"], seed=3).example("fin", "cardinal", 1234)
    assert [x.transcript for x in a] == [x.transcript for x in b]
    assert all(np.array_equal(x.audio, y.audio) for x, y in zip(a, b))
    assert c.transcript == d.transcript and not np.array_equal(c.audio, d.audio)  # speed/pitch vary


def test_batches_pair_languages_on_the_same_numbers():
    corpus = SpokenNumbers(["spa", "deu"], seed=0)
    spa, deu = corpus.batch("spa", "train", 4, 2), corpus.batch("deu", "train", 4, 2)
    assert [x.translation for x in spa] == [x.translation for x in deu]


def test_splits_are_disjoint_by_number():
    seen = {split: set() for split in SPLITS}
    for kind in ("cardinal", "ordinal", "year"):
        for split in SPLITS:
            seen[split] |= set(numbers(kind, split).tolist())
    assert not seen["train"] & seen["dev"] and not seen["train"] & seen["test"]
    assert not seen["dev"] & seen["test"]
    corpus = SpokenNumbers(["spa"], seed=1)
    for split in SPLITS:
        for _, n in corpus.items(split, 16, step=0):
            assert split_of(n) == split


def test_translation_is_english():
    assert write_number(1987, "year", "eng") == "nineteen eighty-seven"
    assert write_number(3, "ordinal", "eng") == "third"


def test_unknown_language_is_named():
    with pytest.raises(ValueError, match="xxx"):
        SpokenNumbers(["spa", "xxx"])


def test_every_language_of_a_corpus_draws_only_kinds_all_of_them_write():
    """Swedish writes no years, Lithuanian no ordinals: with both, only cardinals are drawn, so
    every language gets the same English targets (no planted difference)."""
    corpus = SpokenNumbers(["spa", "swe", "lit"], seed=0)
    assert corpus.kinds == ("cardinal",)
    items = corpus.items("train", 32, step=3)
    assert {kind for kind, _ in items} == {"cardinal"}
    targets = {lang: [x.translation for x in corpus.batch(lang, "train", 6, 1)]
               for lang in corpus.languages}
    assert targets["spa"] == targets["swe"] == targets["lit"]
    assert SpokenNumbers(["spa", "deu"]).kinds == ("cardinal", "ordinal", "year")


def test_evaluation_sets_are_fixed_distinct_and_held_out():
    a = SpokenNumbers(["spa", "deu"], seed=0)
    b = SpokenNumbers(["spa", "deu"], seed=7)
    items = a.evaluation_items("dev", 200)
    assert items == b.evaluation_items("dev", 200)              # whatever the training seed
    assert len(set(items)) == 200                                # without repeats
    assert {kind for kind, _ in items} == {"cardinal", "ordinal", "year"}
    assert all(split_of(n) == "dev" for _, n in items)
    whole = a.evaluation_items("test")                           # the whole split by default
    assert len(whole) == a.sizes("test")["spa"] == len(set(whole))
    ea, eb = a.evaluation_set("spa", "dev", 2), b.evaluation_set("spa", "dev", 2)
    assert all(np.array_equal(x.audio, y.audio) for x, y in zip(ea, eb))


def test_the_tokenizer_text_holds_no_dev_or_test_number():
    corpus = SpokenNumbers(["spa"], seed=0)
    texts = set(corpus.texts())
    held_out = {write_number(n, "cardinal", "eng") for n in numbers("cardinal", "dev")}
    assert texts and not texts & held_out


@pytest.mark.integration
def test_the_espeak_worker_does_not_let_its_folder_shadow_the_standard_library(tmp_path):
    """The worker runs as a script beside corpus/numbers.py, whose folder Python puts first on
    the path: the worker's own first lines take it off (a folder with its own numbers.py here)."""
    import subprocess
    import sys

    from gradlens.corpus.espeak import WORKER

    (tmp_path / "numbers.py").write_text("raise SystemExit('the folder shadowed the stdlib')\n")
    head = WORKER.read_text().split("import ctypes")[0]
    (tmp_path / "worker_head.py").write_text(head + "import numbers\nprint(numbers.__file__)\n")
    out = subprocess.run([sys.executable, str(tmp_path / "worker_head.py")], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert str(tmp_path) not in out.stdout and out.stdout.strip().endswith("numbers.py")


def test_speech_is_kept_once_spoken_and_a_torn_file_is_spoken_again(tmp_path, monkeypatch):
    from gradlens.corpus.base import to_16k
    from gradlens.corpus.espeak import SPEECH_CACHE, Espeak, speech

    monkeypatch.setenv("GRADLENS_CACHE", str(tmp_path))
    fresh = speech("veintitrés", "es", 170, 40)
    espeak = Espeak.get()
    assert np.array_equal(fresh, to_16k(espeak.speak("veintitrés", "es", rate=170, pitch=40),
                                        espeak.rate))
    (kept,) = (tmp_path / SPEECH_CACHE).rglob("*.npy")
    assert np.array_equal(np.load(kept), fresh)
    assert np.array_equal(speech("veintitrés", "es", 170, 40), fresh)  # read back
    kept.write_bytes(kept.read_bytes()[:60])  # a kill mid-write elsewhere
    assert np.array_equal(speech("veintitrés", "es", 170, 40), fresh)
    assert np.array_equal(np.load(kept), fresh)
    speech("veintitrés", "es", 171, 40)  # another rate: another utterance, another file
    assert len(list((tmp_path / SPEECH_CACHE).rglob("*.npy"))) == 2
