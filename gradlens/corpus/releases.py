"""Corpus folders as they are released, into manifests: FLEURS (n-way parallel, with items) and
CoVoST 2 (X→English, no items).

**FLEURS** (``ROOT/<lang>/{train,dev,test}.tsv`` and ``ROOT/<lang>/audio/<split>/*.wav``, the
archives extracted, as the public loading script reads them). Each TSV row has 7 tab-separated
fields: the FLoRes sentence id, the audio file name, the raw and the normalised transcription,
a character spelling, the sample count and the speaker's gender. A manifest row takes ``item``
= the sentence id, ``transcript`` = the raw transcription and ``translation`` = the English
(``en_us``) raw transcription of the same id; rows whose id has no English recording are counted
and left out. FLEURS records a sentence by up to three speakers: the first recording of an id in
a language is kept and the others counted (a manifest says an item once per language); the same
audio file twice is an error. FLEURS codes map to the ISO 639-3 codes SeamlessM4T uses
(``FLEURS_CODES``); a language SeamlessM4T does not know is named and skipped. The manifest is
written in ``ROOT`` (``gradlens-<split>.tsv``), since a manifest's audio stays inside its folder.

**CoVoST 2** (``ROOT/covost_v2.<src>_en.<split>.tsv`` with the columns ``path, sentence,
translation, client_id`` beside the Common Voice ``ROOT/clips/`` folder). The clips are decoded
to 16 kHz mono WAV in ``OUT/audio/<src>/`` and the manifest written as ``OUT/<split>.tsv``.

Every input fault is named by file and line; a manifest appears whole or not at all.

    python -m gradlens manifest fleurs ~/data/fleurs --languages fr_fr ga_ie et_ee --max 200
    python -m gradlens manifest covost ~/data/covost --languages fr et --out ~/data/covost/gradlens
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from gradlens.atomic import write_text
from gradlens.corpus.base import SAMPLE_RATE, SPLITS
from gradlens.corpus.manifest import ITEM, MANIFEST_COLUMNS, ManifestError

# FLEURS language folder -> SeamlessM4T's ISO 639-3 code (None: SeamlessM4T does not know it)
FLEURS_CODES: dict[str, str | None] = {
    "af_za": "afr", "am_et": "amh", "ar_eg": "arb", "as_in": "asm", "ast_es": "ast",
    "az_az": "azj", "be_by": "bel", "bg_bg": "bul", "bn_in": "ben", "bs_ba": "bos",
    "ca_es": "cat", "ceb_ph": "ceb", "ckb_iq": "ckb", "cmn_hans_cn": "cmn", "cs_cz": "ces",
    "cy_gb": "cym", "da_dk": "dan", "de_de": "deu", "el_gr": "ell", "en_us": "eng",
    "es_419": "spa", "et_ee": "est", "fa_ir": "pes", "ff_sn": None, "fi_fi": "fin",
    "fil_ph": "tgl", "fr_fr": "fra", "ga_ie": "gle", "gl_es": "glg", "gu_in": "guj",
    "ha_ng": "hau", "he_il": "heb", "hi_in": "hin", "hr_hr": "hrv", "hu_hu": "hun",
    "hy_am": "hye", "id_id": "ind", "ig_ng": "ibo", "is_is": "isl", "it_it": "ita",
    "ja_jp": "jpn", "jv_id": "jav", "ka_ge": "kat", "kam_ke": "kam", "kea_cv": "kea",
    "kk_kz": "kaz", "km_kh": "khm", "kn_in": "kan", "ko_kr": "kor", "ky_kg": "kir",
    "lb_lu": "ltz", "lg_ug": "lug", "ln_cd": None, "lo_la": "lao", "lt_lt": "lit",
    "luo_ke": "luo", "lv_lv": "lvs", "mi_nz": None, "mk_mk": "mkd", "ml_in": "mal",
    "mn_mn": "khk", "mr_in": "mar", "ms_my": "zsm", "mt_mt": "mlt", "my_mm": "mya",
    "nb_no": "nob", "ne_np": "npi", "nl_nl": "nld", "nso_za": None, "ny_mw": "nya",
    "oc_fr": "oci", "om_et": "gaz", "or_in": "ory", "pa_in": "pan", "pl_pl": "pol",
    "ps_af": "pbt", "pt_br": "por", "ro_ro": "ron", "ru_ru": "rus", "sd_in": "snd",
    "sk_sk": "slk", "sl_si": "slv", "sn_zw": "sna", "so_so": "som", "sr_rs": "srp",
    "sv_se": "swe", "sw_ke": "swh", "ta_in": "tam", "te_in": "tel", "tg_tj": "tgk",
    "th_th": "tha", "tr_tr": "tur", "uk_ua": "ukr", "umb_ao": None, "ur_pk": "urd",
    "uz_uz": "uzn", "vi_vn": "vie", "wo_sn": None, "xh_za": "xho", "yo_ng": "yor",
    "yue_hant_hk": "yue", "zu_za": "zul"}
ENGLISH = "en_us"
FLEURS_FIELDS = 7
COVOST_COLUMNS = ("path", "sentence", "translation", "client_id")
# CoVoST 2's source languages (Common Voice codes) -> SeamlessM4T's codes
COVOST_CODES: dict[str, str | None] = {
    "fr": "fra", "de": "deu", "es": "spa", "ca": "cat", "it": "ita", "ru": "rus", "zh-CN": "cmn",
    "pt": "por", "fa": "pes", "et": "est", "mn": "khk", "nl": "nld", "tr": "tur", "ar": "arb",
    "sv-SE": "swe", "lv": "lvs", "sl": "slv", "ta": "tam", "ja": "jpn", "id": "ind", "cy": "cym"}


@dataclass
class Summary:
    """What a manifest command wrote and left out, per split."""

    rows: dict[str, Counter] = field(default_factory=dict)  # split -> language -> rows written
    shared_items: dict[str, int] = field(default_factory=dict)  # split -> items in every language
    no_english: Counter = field(default_factory=Counter)  # language -> rows without an English id
    extra_recordings: Counter = field(default_factory=Counter)  # language -> recordings left out
    bad_audio: Counter = field(default_factory=Counter)  # language -> audio missing or unreadable
    skipped_languages: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for split, per in self.rows.items():
            langs = ", ".join(f"{k} {v}" for k, v in sorted(per.items()))
            shared = (f"; {self.shared_items[split]} items in every language"
                      if split in self.shared_items else "")
            out.append(f"{split}: {sum(per.values())} rows ({langs}){shared}")
        for what, counts in (("rows whose id has no English recording, left out", self.no_english),
                             ("further recordings of an id, left out", self.extra_recordings),
                             ("audio missing or unreadable, left out", self.bad_audio)):
            out.append(f"{what}: {sum(counts.values())}"
                       + (f" ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})"
                          if counts else ""))
        if self.skipped_languages:
            out.append("skipped (SeamlessM4T does not know them): "
                       + ", ".join(self.skipped_languages))
        out += [f"wrote {p}" for p in self.written]
        return out


def _tsv_rows(path: Path, fields: int | None = None, header: tuple[str, ...] | None = None):
    """``(line, fields)`` of a TSV file, each row checked for its field count (FLEURS: no
    header, ``fields`` fields; CoVoST: a header holding ``header``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    start = 1
    if header is not None:
        names = next(reader, [])
        missing = [c for c in header if c not in names]
        if missing:
            raise ManifestError(f"{path}:1: missing column(s) {missing}; the header has {names}, "
                                f"expected {list(header)}")
        fields, start, index = len(names), 2, [names.index(c) for c in header]
    for line, row in enumerate(reader, start=start):
        if not row:
            continue
        if len(row) != fields:
            raise ManifestError(f"{path}:{line}: expected {fields} tab-separated fields, found "
                                f"{len(row)}")
        yield line, ([row[i] for i in index] if header is not None else row)


def _audio_fault(path: Path) -> str | None:
    """Why ``path`` is no usable audio file, or None."""
    if not path.is_file():
        return f"audio file {path} not found"
    if path.stat().st_size == 0:
        return f"audio file {path} is empty"
    return None


def _language_codes(asked: list[str] | None, known: dict[str, str | None], found: list[str],
                    corpus: str) -> tuple[list[str], list[str]]:
    """The folders (or codes) to read, and those SeamlessM4T does not know (named, skipped).
    ``asked`` may give the corpus's codes or SeamlessM4T's."""
    by_iso = {v: k for k, v in known.items() if v}
    picked = []
    for code in asked or found:
        name = code if code in known or code in found else by_iso.get(code)
        if name is None or name not in found:
            raise ManifestError(f"{corpus}: no language {code!r} here; it has {sorted(found)}")
        picked.append(name)
    skipped = [c for c in picked if known.get(c) is None]
    return [c for c in picked if c not in skipped], skipped


def fleurs_manifests(root: Path, languages: list[str] | None = None,
                     splits: tuple[str, ...] = SPLITS, limit: int = 0,
                     skip_bad_audio: bool = False,
                     progress: Callable[[int, int, str], None] | None = None) -> Summary:
    """Write ``ROOT/gradlens-<split>.tsv`` for each of ``splits`` from a FLEURS folder (the
    module's description); ``limit`` caps the rows per language and split (0: all)."""
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{root}: not a folder; expected the FLEURS release's folder of "
                            "language folders (fr_fr/, en_us/, ...)")
    found = sorted(p.name for p in root.iterdir() if (p / "train.tsv").exists()
                   or (p / "dev.tsv").exists() or (p / "test.tsv").exists())
    if ENGLISH not in found:
        raise ManifestError(f"{root}: expected {ENGLISH}/ with its split TSVs (the English "
                            "transcriptions are the translations); found language folders "
                            f"{found or 'none'}")
    langs, skipped = _language_codes(languages, FLEURS_CODES, found, str(root))
    langs = [x for x in langs if x != ENGLISH]
    if not langs:
        raise ManifestError(f"{root}: no source language to write (asked {languages}); English "
                            "is the target")
    summary = Summary(skipped_languages=skipped)
    english = {}
    for split in SPLITS:  # a FLoRes id is in one split; read English from all of them
        tsv = root / ENGLISH / f"{split}.tsv"
        if tsv.exists():
            for _line, row in _tsv_rows(tsv, FLEURS_FIELDS):
                english.setdefault(row[0], row[2])
    total, done, texts = len(langs) * len(splits), 0, {}
    for split in splits:
        lines = ["\t".join([*MANIFEST_COLUMNS, ITEM])]
        per = Counter()
        items_of: dict[str, set[str]] = {}
        for lang in langs:
            tsv = root / lang / f"{split}.tsv"
            if not tsv.exists():
                raise ManifestError(f"{tsv}: not found; expected {lang}/{split}.tsv beside "
                                    f"{lang}/audio/{split}/ (the FLEURS layout)")
            iso, seen, files = FLEURS_CODES[lang], set(), {}
            for line, row in _tsv_rows(tsv, FLEURS_FIELDS):
                sid, name, raw = row[0], row[1], row[2]
                if name in files:
                    raise ManifestError(f"{tsv}:{line}: audio file {name} repeated (first at "
                                        f"line {files[name]}); a recording is listed once")
                files[name] = line
                if sid in seen:
                    summary.extra_recordings[iso] += 1
                    continue
                if sid not in english:
                    summary.no_english[iso] += 1
                    continue
                if limit and per[iso] >= limit:
                    continue
                audio = root / lang / "audio" / split / name
                fault = _audio_fault(audio)
                if fault:
                    if not skip_bad_audio:
                        raise ManifestError(f"{tsv}:{line}: {fault} (expected the {split} archive "
                                            f"extracted into {lang}/audio/{split}/)")
                    summary.bad_audio[iso] += 1
                    continue
                seen.add(sid)
                per[iso] += 1
                items_of.setdefault(iso, set()).add(sid)
                lines.append("\t".join([audio.relative_to(root).as_posix(), iso, "eng",
                                        _clean(raw), _clean(english[sid]), sid]))
            done += 1
            if progress:
                progress(done, total, f"{split} {lang}")
        texts[root / f"gradlens-{split}.tsv"] = "\n".join(lines) + "\n"
        summary.rows[split] = per
        summary.shared_items[split] = len(set.intersection(*items_of.values())) if items_of else 0
    return _write_all(texts, summary)


def covost_manifests(root: Path, out: Path, languages: list[str] | None = None,
                     splits: tuple[str, ...] = SPLITS, limit: int = 0,
                     skip_bad_audio: bool = False,
                     progress: Callable[[int, int, str], None] | None = None) -> Summary:
    """Write ``OUT/<split>.tsv`` for each of ``splits`` from a CoVoST 2 folder, the clips
    decoded to 16 kHz mono WAV under ``OUT/audio/`` (the module's description)."""
    import numpy as np
    import soundfile

    from gradlens.corpus.manifest import read_audio

    root, out = Path(root), Path(out)
    clips = root / "clips"
    tsvs = sorted(root.glob("covost_v2.*_en.*.tsv"))
    found = sorted({p.name.split(".")[1].removesuffix("_en") for p in tsvs})
    if not tsvs or not clips.is_dir():
        raise ManifestError(f"{root}: expected covost_v2.<src>_en.<split>.tsv files beside the "
                            f"Common Voice clips/ folder; found {len(tsvs)} such TSV(s) and "
                            f"{'a' if clips.is_dir() else 'no'} clips/ folder")
    langs, skipped = _language_codes(languages, COVOST_CODES, found, str(root))
    summary = Summary(skipped_languages=skipped)
    total, done, texts = len(langs) * len(splits), 0, {}
    for split in splits:
        lines = ["\t".join(MANIFEST_COLUMNS)]
        per = Counter()
        for lang in langs:
            tsv = root / f"covost_v2.{lang}_en.{split}.tsv"
            if not tsv.exists():
                raise ManifestError(f"{tsv}: not found; expected one TSV per source language and "
                                    "split (covost_v2.<src>_en.<split>.tsv)")
            iso, seen = COVOST_CODES[lang], {}
            for line, (path, sentence, translation, _client) in _tsv_rows(tsv, header=COVOST_COLUMNS):
                if path in seen:
                    raise ManifestError(f"{tsv}:{line}: clip {path} repeated (first at line "
                                        f"{seen[path]})")
                seen[path] = line
                if limit and per[iso] >= limit:
                    continue
                clip = clips / path
                fault = _audio_fault(clip)
                wav = out / "audio" / iso / (Path(path).stem + ".wav")
                if fault is None and not wav.exists():
                    try:
                        audio = read_audio(clip)
                    except (RuntimeError, TypeError, ValueError, OSError) as exc:
                        fault = (f"cannot decode {clip} ({exc}); soundfile reads MP3 from "
                                 "libsndfile 1.1 on (pip install 'soundfile>=0.12')")
                    else:
                        wav.parent.mkdir(parents=True, exist_ok=True)
                        tmp = wav.with_suffix(".tmp.wav")
                        soundfile.write(str(tmp), np.asarray(audio), SAMPLE_RATE, subtype="PCM_16")
                        tmp.replace(wav)
                if fault:
                    if not skip_bad_audio:
                        raise ManifestError(f"{tsv}:{line}: {fault}")
                    summary.bad_audio[iso] += 1
                    continue
                per[iso] += 1
                lines.append("\t".join([wav.relative_to(out).as_posix(), iso, "eng",
                                        _clean(sentence), _clean(translation)]))
            done += 1
            if progress:
                progress(done, total, f"{split} {lang}")
        summary.rows[split] = per
        texts[out / f"{split}.tsv"] = "\n".join(lines) + "\n"
    return _write_all(texts, summary)


def _write_all(texts: dict[Path, str], summary: Summary) -> Summary:
    """Every split's manifest, written once all of them were read without a fault: an error in
    one split leaves the others as they were."""
    for path, text in texts.items():
        summary.written.append(write_text(path, text))
    return summary


def _clean(text: str) -> str:
    """One line of text: tabs and line breaks would break the manifest's rows."""
    return " ".join(text.replace("\t", " ").split())
