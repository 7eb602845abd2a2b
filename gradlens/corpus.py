"""Corpora: the embedded spoken-numbers corpus and manifests of real data.

Both give ``Example`` rows: 16 kHz mono float32 audio, the source-language transcript (for ASR)
and the English translation (for ST). The spoken-numbers corpus needs nothing but pip wheels:
numbers, ordinals and years written by ``num2words`` and spoken by the espeak-ng library that
the ``espeakng-loader`` wheel ships (loaded with ctypes).

    python -m gradlens.corpus spa deu fin   # prints a few examples per language
"""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path

import numpy as np

from gradlens.errors import ConfigError, GradlensError
from gradlens.languages import LANGUAGES, TARGET
from gradlens.probe_config import DEMO_LANGUAGES

SAMPLE_RATE = 16_000
SPLITS = ("train", "dev", "test")
MANIFEST_COLUMNS = ("audio", "src_lang", "tgt_lang", "transcript", "translation")
# Numbers each kind draws from.
_RANGES = {"cardinal": (0, 9999), "ordinal": (1, 100), "year": (1100, 2099)}


@dataclass(frozen=True)
class Example:
    """One utterance. ``audio`` has shape ``[samples]``, float32 in [-1, 1], 16 kHz."""

    id: str
    src_lang: str
    tgt_lang: str
    transcript: str
    translation: str
    audio: np.ndarray = field(repr=False)


# -- splits -----------------------------------------------------------------------------------
def split_of(number: int) -> str:
    """The split of a number, whatever its kind or language: 80 % train, 10 % dev, 10 % test.

    Fixed for all seeds, so no number spoken in training is ever tested on.
    """
    bucket = zlib.crc32(f"gradlens-split-{number}".encode()) % 100
    return "train" if bucket < 80 else "dev" if bucket < 90 else "test"


def numbers(kind: str, split: str) -> np.ndarray:
    """All numbers of ``kind`` in ``split``, ascending."""
    lo, hi = _RANGES[kind]
    return np.array([n for n in range(lo, hi + 1) if split_of(n) == split])


def write_number(n: int, kind: str, lang: str) -> str:
    """``n`` written as words in ``lang`` (``eng`` for the English translation)."""
    from num2words import num2words

    spec = TARGET if lang == TARGET.code else LANGUAGES[lang]
    return num2words(n, lang=spec.num2words, to=kind)


# -- espeak-ng --------------------------------------------------------------------------------
# espeak-ng keeps static state across utterances (even across espeak_Terminate), so the same
# call gives slightly different audio depending on what was spoken before. The worker below
# initialises the library once and never speaks itself: each utterance is spoken by a fresh
# fork of it, from the same pristine state, so an utterance depends on its arguments alone.
_WORKER = r"""
import ctypes, json, os, struct, sys, espeakng_loader
lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
rate = lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0)
chunks = []
CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
def collect(wav, n, events):
    if n > 0:
        chunks.append(ctypes.string_at(wav, 2 * n))
    return 0
callback = CB(collect)
lib.espeak_SetSynthCallback(callback)
lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                             ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
inp, out = sys.stdin.buffer, sys.stdout.buffer
out.write(struct.pack("<i", rate)); out.flush()
def read_all(fd):
    parts = []
    while True:
        part = os.read(fd, 1 << 16)
        if not part:
            return b"".join(parts)
        parts.append(part)
while True:
    head = inp.read(4)
    if len(head) < 4:
        break
    req = json.loads(inp.read(struct.unpack("<I", head)[0]))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        err = lib.espeak_SetVoiceByName(req["voice"].encode())
        if err == 0:
            lib.espeak_SetParameter(1, req["rate"], 0)
            lib.espeak_SetParameter(3, req["pitch"], 0)
            data = req["text"].encode("utf-8") + b"\0"
            err = lib.espeak_Synth(data, len(data), 0, 1, 0, 1, None, None) or 0
            err = err and 1000 + err
        body = b"".join(chunks)
        os.write(w, struct.pack("<i", err))
        view = memoryview(body)
        while view:
            view = view[os.write(w, view):]
        os._exit(0)
    os.close(w)
    reply = read_all(r)
    os.close(r)
    os.waitpid(pid, 0)
    out.write(struct.pack("<I", len(reply)) + reply); out.flush()
"""


class Espeak:
    """The espeak-ng C library from the ``espeakng-loader`` wheel, behind a forking worker.

    ``Espeak.get()`` gives the process's one instance; calls are serialised with a lock.
    """

    _instance: "Espeak | None" = None
    _lock = threading.Lock()

    def __init__(self):
        self._pid = os.getpid()
        self._proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE)
        head = self._proc.stdout.read(4)
        if len(head) < 4:
            raise RuntimeError("espeak-ng worker failed to start (is espeakng-loader installed?)")
        self.rate = struct.unpack("<i", head)[0]
        if self.rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise from the espeakng-loader data")

    @classmethod
    def get(cls) -> "Espeak":
        with cls._lock:
            if cls._instance is None or cls._instance._pid != os.getpid() \
                    or cls._instance._proc.poll() is not None:
                cls._instance = Espeak()
            return cls._instance

    def speak(self, text: str, voice: str, rate: int = 175, pitch: int = 50) -> np.ndarray:
        """Audio of ``text`` at the library's rate (22050 Hz), int16 samples."""
        request = json.dumps({"text": text, "voice": voice, "rate": int(rate), "pitch": int(pitch)})
        with self._lock:
            body = request.encode()
            self._proc.stdin.write(struct.pack("<I", len(body)) + body)
            self._proc.stdin.flush()
            head = self._proc.stdout.read(4)
            if len(head) < 4:
                raise RuntimeError(f"espeak-ng worker died while speaking {text!r}")
            reply = self._proc.stdout.read(struct.unpack("<I", head)[0])
        err = struct.unpack("<i", reply[:4])[0]
        if err:
            what = f"no voice {voice!r}" if err < 1000 else f"error {err - 1000}"
            raise ValueError(f"espeak-ng could not speak {text!r}: {what}")
        return np.frombuffer(reply[4:], dtype=np.int16).copy()


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


# -- the spoken-numbers corpus ----------------------------------------------------------------
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

    def __init__(self, languages: list[str] | None = None, seed: int = 0,
                 reversed_targets: tuple[str, ...] = ()):
        languages = list(languages or LANGUAGES)
        unknown = [code for code in languages if code not in LANGUAGES]
        if unknown:
            raise ConfigError(f"spoken-numbers has no language(s) {unknown}; "
                             f"choose from {sorted(LANGUAGES)}")
        self.languages = languages
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
        raw = Espeak.get().speak(text, spec.voice, rate=rate, pitch=pitch)
        return Example(
            id=f"{lang}-{kind}-{n}",
            src_lang=lang,
            tgt_lang=TARGET.code,
            transcript=text,
            translation=self.translation(n, kind, lang),
            audio=to_16k(raw, Espeak.get().rate),
        )

    def items(self, split: str, size: int, step: int) -> list[tuple[str, int]]:
        """The (kind, number) pairs of batch ``step``: the same for every language (paired)."""
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
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
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
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


CONTROL = "spoken-numbers:reversed="
# The positive control's run (``gradlens demo --control``): the demo's 14 languages (so its model
# is the demo's, which knows the ordinary numbers), half of them reversed, the planted group cut
# across the six families (two of four Romance, one of three Germanic, two of three Slavic, one of
# two Uralic, the Turkic one), so neither typology nor the languages' own differences can stand
# in for the planted conflict, and a random split of a module into two groups of 7 almost never
# comes near it (docs/results.md §4c).
CONTROL_LANGUAGES = list(DEMO_LANGUAGES)
CONTROL_GROUP = ["spa", "fra", "nld", "pol", "ukr", "fin", "tur"]
CONTROL_CORPUS = CONTROL + ",".join(CONTROL_GROUP)


def open_corpus(name: str, languages: list[str], seed: int = 0):
    """The corpus a probe or a training job names: ``spoken-numbers``; the positive control
    ``spoken-numbers:reversed=spa,nld,ukr`` (the listed languages' English targets in reversed
    word order, a conflict planted by construction); or a manifest TSV, checked to hold every
    language."""
    if name == "spoken-numbers":
        return SpokenNumbers(languages, seed=seed)
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
    """Whether ``name`` is the embedded corpus (natural or positive control), which scores its
    own dev and test splits."""
    return name == "spoken-numbers" or name.startswith(CONTROL)


# -- manifests --------------------------------------------------------------------------------
class ManifestError(GradlensError):
    """A malformed manifest or a missing or unreadable audio file; says file, line and field."""


def read_audio(path: Path) -> np.ndarray:
    import soundfile

    data, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
    if data.size == 0:
        raise ValueError("the file holds no samples")
    return to_16k(data, rate)


class Manifest:
    """A TSV manifest with columns ``audio, src_lang, tgt_lang, transcript, translation``.

    ``audio`` paths are relative to the manifest's folder and must stay inside it (a manifest from
    elsewhere reads nothing outside its own folder). Rows are checked when
    the manifest is read; audio is read when a batch needs it. Every error names the manifest,
    the line (1 = the header) and the field.
    """

    name = "manifest"

    def __init__(self, path: str | Path, seed: int = 0):
        self.path = Path(path)
        self.seed = seed
        if not self.path.exists():
            raise ManifestError(f"{self.path}: manifest not found")
        if not self.path.is_file():
            raise ManifestError(f"{self.path}: is a directory, not a manifest (a TSV file with the "
                                f"columns {', '.join(MANIFEST_COLUMNS)})")
        self.rows: dict[str, list[tuple[int, dict]]] = {}
        root = self.path.parent.resolve()
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{self.path}: not UTF-8 text (byte {exc.start}); a manifest is a "
                                "UTF-8 TSV file") from None
        with io.StringIO(text, newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = reader.fieldnames or []
            missing = [c for c in MANIFEST_COLUMNS if c not in header]
            if missing:
                raise ManifestError(f"{self.path}:1: missing column(s) {missing}; "
                                    f"the header has {header}, expected {list(MANIFEST_COLUMNS)}")
            for line, row in enumerate(reader, start=2):
                if None in row or any(row[c] is None for c in header):
                    raise ManifestError(f"{self.path}:{line}: expected {len(header)} tab-separated "
                                        "fields, found a different number")
                for column in MANIFEST_COLUMNS:
                    if not row[column].strip():
                        raise ManifestError(f"{self.path}:{line}: field '{column}' is empty")
                audio = (self.path.parent / row["audio"]).resolve()
                if not audio.is_relative_to(root):
                    raise ManifestError(f"{self.path}:{line}: field 'audio': {row['audio']} lies "
                                        f"outside the manifest's folder {root}; audio paths are "
                                        "relative to it and stay inside it")
                if not audio.exists():
                    raise ManifestError(f"{self.path}:{line}: field 'audio': file {audio} not found")
                row["audio"] = str(audio)
                self.rows.setdefault(row["src_lang"], []).append((line, row))
        if not self.rows:
            raise ManifestError(f"{self.path}: no rows after the header")
        self.languages = sorted(self.rows)

    def example(self, line: int, row: dict) -> Example:
        try:
            audio = read_audio(Path(row["audio"]))
        # soundfile raises LibsndfileError (a RuntimeError), TypeError or OSError for what it
        # cannot decode; ValueError is an empty file
        except (RuntimeError, TypeError, ValueError, OSError) as exc:
            raise ManifestError(f"{self.path}:{line}: field 'audio': cannot read {row['audio']} "
                                f"({exc})") from None
        return Example(id=f"{self.path.stem}:{line}", src_lang=row["src_lang"],
                       tgt_lang=row["tgt_lang"], transcript=row["transcript"],
                       translation=row["translation"], audio=audio)

    def batch(self, lang: str, split: str, size: int, step: int) -> list[Example]:
        """Batch ``step`` of ``lang``, sampled with replacement; a manifest is one split."""
        if lang not in self.rows:
            raise ManifestError(f"{self.path}: no rows with src_lang {lang!r}; it has {self.languages}")
        rows = self.rows[lang]
        rng = np.random.default_rng([self.seed, step, zlib.crc32(lang.encode())])
        return [self.example(*rows[i]) for i in rng.integers(0, len(rows), size=size)]

    def evaluation_set(self, lang: str, split: str, size: int = 0) -> list[Example]:
        """The first ``size`` rows of ``lang`` in file order (all of them for 0); a manifest is
        one split, so ``split`` only names it."""
        if lang not in self.rows:
            raise ManifestError(f"{self.path}: no rows with src_lang {lang!r}; it has {self.languages}")
        rows = self.rows[lang][: size or None]
        return [self.example(*row) for row in rows]

    def sizes(self, split: str = "train") -> dict[str, int]:
        """Rows per language."""
        return {lang: len(rows) for lang, rows in self.rows.items()}

    def texts(self, per_language: int = 0) -> list[str]:
        return [r[c] for rows in self.rows.values() for _, r in rows for c in ("transcript", "translation")]


if __name__ == "__main__":
    corpus = SpokenNumbers(sys.argv[1:] or ["spa", "deu", "fin"])
    for code in corpus.languages:
        for ex in corpus.batch(code, "train", 3, 0):
            print(f"{ex.id:22s} {len(ex.audio) / SAMPLE_RATE:4.2f}s  {ex.transcript!r} -> {ex.translation!r}")
