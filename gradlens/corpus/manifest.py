"""Manifests of real data: a TSV with the columns ``audio, src_lang, tgt_lang, transcript,
translation`` and an optional ``item``.

Rows of different languages with one ``item`` say the same thing (FLEURS speaks one FLoRes
sentence in every language). With items a manifest is content-paired: batch ``step`` draws the
same items for every language that has them, and the run records it (``Run.content_paired``), so
the paired similarity and the paired CCA evidence are computed for it. Without items each
language is sampled on its own, and those views are not offered.

    python -c "from gradlens.corpus import Manifest; print(Manifest('data/train.tsv').sizes())"
"""

from __future__ import annotations

import csv
import io
import zlib
from pathlib import Path

import numpy as np

from gradlens.corpus.base import Example, to_16k
from gradlens.errors import GradlensError

MANIFEST_COLUMNS = ("audio", "src_lang", "tgt_lang", "transcript", "translation")
ITEM = "item"  # the optional column naming a row's content


class ManifestError(GradlensError):
    """A malformed manifest or a missing or unreadable audio file; says file, line and field."""


def read_audio(path: Path) -> np.ndarray:
    import soundfile

    data, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
    if data.size == 0:
        raise ValueError("the file holds no samples")
    return to_16k(data, rate)


class Manifest:
    """A TSV manifest (the module's description).

    ``audio`` paths are relative to the manifest's folder and must stay inside it (a manifest from
    elsewhere reads nothing outside its own folder). Rows are checked when the manifest is read;
    audio is read when a batch needs it. Every error names the manifest, the line (1 = the
    header) and the field.
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
            self.paired = ITEM in header
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
        # item -> its row's index in each language that has it
        self.items: dict[str, dict[str, int]] = self._check_items() if self.paired else {}
        self.item_order = sorted(self.items)
        self._order: tuple[int | None, np.ndarray | None] = (None, None)

    def _check_items(self) -> dict[str, dict[str, int]]:
        """The rows of each item, checked: every row names one, no language says one item
        twice, and the rows of one item agree on its translation (per target language)."""
        items: dict[str, dict[str, int]] = {}
        said: dict[tuple[str, str], tuple[int, str]] = {}  # (item, tgt_lang) -> (line, text)
        for lang, rows in self.rows.items():
            for index, (line, row) in enumerate(rows):
                item = row[ITEM].strip()
                if not item:
                    raise ManifestError(
                        f"{self.path}:{line}: field 'item' is empty; a manifest with an item "
                        "column names the item of every row (rows of different languages with "
                        "one item are the same content), or drops the column")
                if lang in items.setdefault(item, {}):
                    first = rows[items[item][lang]][0]
                    raise ManifestError(
                        f"{self.path}:{line}: field 'item': item {item!r} is repeated in "
                        f"{lang} (first at line {first}); an item is said once per language")
                items[item][lang] = index
                key = (item, row["tgt_lang"])
                if key in said and said[key][1] != row["translation"]:
                    first, text = said[key]
                    raise ManifestError(
                        f"{self.path}:{line}: field 'translation': item {item!r} translates as "
                        f"{row['translation']!r} here but as {text!r} at line {first}; the rows "
                        "of one item must agree on its translation")
                said.setdefault(key, (line, row["translation"]))
        return items

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
                       translation=row["translation"], audio=audio,
                       item=row.get(ITEM, "").strip())

    def _rows_of(self, lang: str) -> list[tuple[int, dict]]:
        if lang not in self.rows:
            raise ManifestError(f"{self.path}: no rows with src_lang {lang!r}; it has {self.languages}")
        return self.rows[lang]

    def batch(self, lang: str, split: str, size: int, step: int) -> list[Example]:
        """Batch ``step`` of ``lang``; a manifest is one split. Paired (items): the first ``size``
        items that ``lang`` has in the step's order of all items, the same order for every
        language, so languages that have an item draw it together (without repeats within a
        batch unless the language has fewer than ``size`` items). Otherwise sampled with
        replacement, for each language on its own."""
        rows = self._rows_of(lang)
        if not self.paired:
            rng = np.random.default_rng([self.seed, step, zlib.crc32(lang.encode())])
            return [self.example(*rows[i]) for i in rng.integers(0, len(rows), size=size)]
        have = self.items
        picked = [have[self.item_order[i]][lang] for i in self._step_order(step)
                  if lang in have[self.item_order[i]]][:size]
        picked = (picked * (size // len(picked) + 1))[:size]  # fewer items than the batch
        return [self.example(*rows[i]) for i in picked]

    def _step_order(self, step: int) -> np.ndarray:
        """Step ``step``'s order of all items (indices into ``item_order``): drawn once per step
        for all the languages that ask (the last step's only is kept)."""
        if self._order[0] != step:
            self._order = (step, np.random.default_rng([self.seed, step]).permutation(
                len(self.item_order)))
        return self._order[1]

    def evaluation_set(self, lang: str, split: str, size: int = 0) -> list[Example]:
        """The first ``size`` rows of ``lang`` in file order (all of them for 0); a manifest is
        one split, so ``split`` only names it."""
        return [self.example(*row) for row in self._rows_of(lang)[: size or None]]

    def sizes(self, split: str = "train") -> dict[str, int]:
        """Rows per language."""
        return {lang: len(rows) for lang, rows in self.rows.items()}

    def texts(self, per_language: int = 0) -> list[str]:
        return [r[c] for rows in self.rows.values() for _, r in rows for c in ("transcript", "translation")]
