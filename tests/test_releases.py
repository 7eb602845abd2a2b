"""FLEURS and CoVoST 2 folders, laid out exactly as released and made here (audio spoken by
espeak-ng), into manifests: items, English translations, language codes, and named faults."""

import numpy as np
import pytest
import soundfile

from gradlens.corpus import Manifest, ManifestError
from gradlens.corpus.phrases import CldrPhrases, phrase
from gradlens.corpus.releases import covost_manifests, fleurs_manifests

FLEURS = {"fr_fr": "fra", "ga_ie": "gle", "et_ee": "est"}
LOCALE = {"fr_fr": "fr", "ga_ie": "ga", "et_ee": "et", "en_us": "en"}


def _speak(lang: str, item: int) -> np.ndarray:
    iso = {"en_us": "swh"}.get(lang) or FLEURS[lang]  # English audio is never read
    return CldrPhrases([iso], matched_rates=False).example(iso, item).audio


def make_fleurs(root, sentences=((101, "train"), (102, "train"), (103, "train"), (201, "dev")),
                english_missing=(), repeats=()):
    """``root/<lang>/{split}.tsv`` (7 fields, no header) and ``root/<lang>/audio/<split>/*.wav``
    for three languages and en_us; ``repeats``: (lang, id) recorded by a second speaker."""
    for lang in [*FLEURS, "en_us"]:
        for split in ("train", "dev", "test"):
            (root / lang / "audio" / split).mkdir(parents=True, exist_ok=True)
            rows = []
            for sid, sp in sentences:
                if sp != split or (lang == "en_us" and sid in english_missing):
                    continue
                for take in range(1 + ((lang, sid) in repeats)):
                    name = f"{lang}{sid}{take}.wav"
                    audio = _speak(lang, sid) if lang != "en_us" else np.zeros(1600, np.float32)
                    soundfile.write(str(root / lang / "audio" / split / name), audio, 16_000)
                    raw = phrase(sid, LOCALE[lang])
                    rows.append("\t".join([str(sid), name, raw, raw.lower(), "|".join(raw),
                                           str(len(audio)), "FEMALE"]))
            (root / lang / f"{split}.tsv").write_text("".join(r + "\n" for r in rows))
    return root


def test_a_fleurs_folder_becomes_content_paired_manifests_with_english_translations(tmp_path):
    root = make_fleurs(tmp_path / "fleurs", english_missing=(103,), repeats=(("ga_ie", 102),))
    summary = fleurs_manifests(root, splits=("train", "dev"))
    train = Manifest(root / "gradlens-train.tsv")
    assert train.paired and train.languages == ["est", "fra", "gle"]
    assert train.item_order == ["101", "102"]  # 103 has no English recording
    for lang in train.languages:
        rows = [r for _, r in train.rows[lang]]
        assert [r["translation"] for r in rows] == [phrase(101, "en"), phrase(102, "en")]
        assert rows[0]["transcript"] == phrase(101, {"fra": "fr", "gle": "ga", "est": "et"}[lang])
    assert summary.rows["train"] == {"fra": 2, "gle": 2, "est": 2}
    assert summary.shared_items == {"train": 2, "dev": 1}
    assert summary.no_english == {"fra": 1, "gle": 1, "est": 1}
    assert summary.extra_recordings == {"gle": 1}  # a second speaker of 102: kept once
    gle, est = train.batch("gle", "train", 2, 0), train.batch("est", "train", 2, 0)
    assert [e.item for e in gle] == [e.item for e in est]
    assert Manifest(root / "gradlens-dev.tsv").sizes() == {"est": 1, "fra": 1, "gle": 1}
    assert any("no English recording" in line for line in summary.lines())


def test_languages_are_chosen_by_either_code_capped_and_unknown_ones_named(tmp_path):
    root = make_fleurs(tmp_path / "fleurs")
    (root / "ln_cd").mkdir()
    (root / "ln_cd" / "train.tsv").write_text("")
    summary = fleurs_manifests(root, ["fra", "ga_ie", "ln_cd"], ("train",), limit=1)
    assert summary.rows["train"] == {"fra": 1, "gle": 1}
    assert summary.skipped_languages == ["ln_cd"]
    with pytest.raises(ManifestError, match=r"no language 'xx_yy' here; it has \['en_us', 'et_ee'"):
        fleurs_manifests(root, ["xx_yy"])


@pytest.mark.parametrize("damage, message", [
    (lambda r: (r / "en_us" / "train.tsv").unlink() or (r / "en_us" / "dev.tsv").unlink()
     or (r / "en_us" / "test.tsv").unlink() or (r / "en_us").rename(r / "english"),
     r"expected en_us/ with its split TSVs"),
    (lambda r: (r / "ga_ie" / "train.tsv").write_text("101\tx.wav\ttoo few\n"),
     r"ga_ie/train\.tsv:1: expected 7 tab-separated fields, found 3"),
    (lambda r: (r / "ga_ie" / "audio" / "train" / "ga_ie1020.wav").unlink(),
     r"ga_ie/train\.tsv:2: audio file .*ga_ie1020\.wav not found \(expected the train archive "
     r"extracted into ga_ie/audio/train/\)"),
    (lambda r: (r / "et_ee" / "audio" / "train" / "et_ee1010.wav").write_bytes(b""),
     r"et_ee/train\.tsv:1: audio file .*et_ee1010\.wav is empty"),
    (lambda r: (r / "fr_fr" / "train.tsv").write_text(
        (r / "fr_fr" / "train.tsv").read_text().splitlines()[0] + "\n"
        + (r / "fr_fr" / "train.tsv").read_text()),
     r"fr_fr/train\.tsv:2: audio file fr_fr1010\.wav repeated \(first at line 1\)"),
    (lambda r: (r / "et_ee" / "dev.tsv").unlink(),
     r"et_ee/dev\.tsv: not found; expected et_ee/dev\.tsv beside et_ee/audio/dev/"),
])
def test_a_fleurs_folder_not_as_released_is_named_and_nothing_is_written(tmp_path, damage,
                                                                        message):
    root = make_fleurs(tmp_path / "fleurs")
    (root / "gradlens-train.tsv").write_text("an earlier manifest\n")
    damage(root)
    with pytest.raises(ManifestError, match=message):
        fleurs_manifests(root, splits=("train", "dev"))
    assert (root / "gradlens-train.tsv").read_text() == "an earlier manifest\n"
    assert not (root / "gradlens-dev.tsv").exists()


def test_bad_audio_can_be_left_out_and_counted(tmp_path):
    root = make_fleurs(tmp_path / "fleurs")
    (root / "ga_ie" / "audio" / "train" / "ga_ie1020.wav").unlink()
    summary = fleurs_manifests(root, splits=("train",), skip_bad_audio=True)
    assert summary.bad_audio == {"gle": 1} and summary.rows["train"]["gle"] == 2
    assert summary.shared_items["train"] == 2  # 101 and 103


def make_covost(root, rows=(("fr", "train", "c1.mp3", "bonjour", "hello"),
                            ("fr", "train", "c2.mp3", "merci", "thank you"),
                            ("et", "train", "c3.mp3", "tere", "hello"))):
    (root / "clips").mkdir(parents=True)
    tables = {}
    for lang, split, clip, sentence, translation in rows:
        t = np.arange(24_000) / 48_000
        soundfile.write(str(root / "clips" / clip), 0.3 * np.sin(2 * np.pi * 220 * t), 48_000,
                        format="MP3")
        tables.setdefault((lang, split), []).append(f"{clip}\t{sentence}\t{translation}\tspk1")
    for (lang, split), lines in tables.items():
        (root / f"covost_v2.{lang}_en.{split}.tsv").write_text(
            "path\tsentence\ttranslation\tclient_id\n" + "".join(x + "\n" for x in lines))
    return root


def test_a_covost_folder_becomes_a_manifest_of_decoded_16k_clips(tmp_path):
    root = make_covost(tmp_path / "covost")
    summary = covost_manifests(root, tmp_path / "out", splits=("train",))
    manifest = Manifest(tmp_path / "out" / "train.tsv")
    assert not manifest.paired and manifest.languages == ["est", "fra"]
    assert summary.rows["train"] == {"fra": 2, "est": 1}
    ex = manifest.batch("fra", "train", 1, 0)[0]
    assert ex.translation in ("hello", "thank you") and abs(ex.audio.size - 8_000) < 1_200
    info = soundfile.info(str(tmp_path / "out" / "audio" / "fra" / "c1.wav"))
    assert info.samplerate == 16_000 and info.channels == 1


def test_a_covost_folder_not_as_released_is_named(tmp_path):
    with pytest.raises(ManifestError, match=r"expected covost_v2\.<src>_en\.<split>\.tsv files "
                                            r"beside the Common Voice clips/ folder"):
        covost_manifests(tmp_path, tmp_path / "out")
    root = make_covost(tmp_path / "covost")
    (root / "clips" / "c2.mp3").unlink()
    with pytest.raises(ManifestError, match=r"covost_v2\.fr_en\.train\.tsv:3: audio file "
                                            r".*c2\.mp3 not found"):
        covost_manifests(root, tmp_path / "out", splits=("train",))
    assert not (tmp_path / "out" / "train.tsv").exists()
    (root / "covost_v2.fr_en.train.tsv").write_text("path\tsentence\nc1.mp3\tbonjour\n")
    with pytest.raises(ManifestError, match=r"covost_v2\.fr_en\.train\.tsv:1: missing column\(s\) "
                                            r"\['translation', 'client_id'\]"):
        covost_manifests(root, tmp_path / "out", ["fr"], ("train",))


@pytest.mark.integration
def test_a_fleurs_manifest_probes_end_to_end_content_paired(tmp_path):
    from gradlens.probe_config import ProbeConfig
    from gradlens.store import Run
    from probes.loop import probe

    root = make_fleurs(tmp_path / "fleurs")
    fleurs_manifests(root, splits=("train",))
    out = probe(ProbeConfig(corpus=str(root / "gradlens-train.tsv"), languages=["fra", "gle", "est"],
                            steps=2, batch_size=2, sketch_dim=64, out=str(tmp_path / "run")))
    with Run(out) as run:
        assert run.content_paired and len(run.done_steps) == 2
