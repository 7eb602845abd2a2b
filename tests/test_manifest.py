import numpy as np
import pytest
import soundfile

from gradlens.corpus import SAMPLE_RATE, Manifest, ManifestError

HEADER = "audio\tsrc_lang\ttgt_lang\ttranscript\ttranslation\n"


def _wav(path, seconds=0.5, rate=22050):
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(str(path), 0.3 * np.sin(2 * np.pi * 220 * t), rate)
    return path


def test_reads_rows_and_resamples(tmp_path):
    _wav(tmp_path / "a.wav")
    (tmp_path / "m.tsv").write_text(HEADER + "a.wav\tgle\teng\tdia duit\thello\n")
    manifest = Manifest(tmp_path / "m.tsv")
    assert manifest.languages == ["gle"]
    ex = manifest.batch("gle", "train", 2, 0)[0]
    assert ex.transcript == "dia duit" and ex.translation == "hello"
    assert abs(ex.audio.size - SAMPLE_RATE // 2) <= 1


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        Manifest(tmp_path / "nope.tsv")


def test_missing_column_names_it(tmp_path):
    (tmp_path / "m.tsv").write_text("audio\tsrc_lang\ttranscript\ttranslation\nx\ty\tz\tw\n")
    with pytest.raises(ManifestError, match=r"m\.tsv:1: missing column\(s\) \['tgt_lang'\]"):
        Manifest(tmp_path / "m.tsv")


def test_missing_audio_names_file_line_and_field(tmp_path):
    _wav(tmp_path / "a.wav")
    (tmp_path / "m.tsv").write_text(HEADER + "a.wav\tgle\teng\ta\tb\nmissing.wav\tgle\teng\ta\tb\n")
    with pytest.raises(ManifestError, match=r"m\.tsv:3: field 'audio': file .*missing\.wav not found"):
        Manifest(tmp_path / "m.tsv")


def test_unreadable_audio_names_file_line_and_field(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"this is not audio")
    (tmp_path / "m.tsv").write_text(HEADER + "bad.wav\tbem\teng\ta\tb\n")
    manifest = Manifest(tmp_path / "m.tsv")
    with pytest.raises(ManifestError, match=r"m\.tsv:2: field 'audio': cannot read .*bad\.wav"):
        manifest.batch("bem", "train", 1, 0)


def test_empty_field_and_wrong_field_count(tmp_path):
    _wav(tmp_path / "a.wav")
    (tmp_path / "m.tsv").write_text(HEADER + "a.wav\tgle\teng\t\tb\n")
    with pytest.raises(ManifestError, match=r"m\.tsv:2: field 'transcript' is empty"):
        Manifest(tmp_path / "m.tsv")
    (tmp_path / "n.tsv").write_text(HEADER + "a.wav\tgle\teng\tb\n")
    with pytest.raises(ManifestError, match=r"n\.tsv:2: expected 5 tab-separated fields"):
        Manifest(tmp_path / "n.tsv")


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir(), "is a directory, not a manifest"),
    (lambda p: p.write_bytes(b"audio\tsrc_lang\n\xff\xfe\n"), "not UTF-8 text (byte 15)"),
])
def test_a_manifest_that_is_no_text_file_is_named(tmp_path, make, message):
    from gradlens.corpus import Manifest, ManifestError

    path = tmp_path / "m.tsv"
    make(path)
    with pytest.raises(ManifestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Manifest(path)


def test_an_empty_wav_is_named_as_empty(tmp_path):
    _wav(tmp_path / "e.wav", seconds=0)
    (tmp_path / "m.tsv").write_text(HEADER + "e.wav\tbem\teng\ta\tb\n")
    with pytest.raises(ManifestError, match=r"m\.tsv:2: field 'audio': cannot read .*e\.wav "
                                            r"\(the file holds no samples\)"):
        Manifest(tmp_path / "m.tsv").batch("bem", "train", 1, 0)


@pytest.mark.parametrize("where", ["../outside.wav", "ABSOLUTE", "sub/../../outside.wav"])
def test_audio_outside_the_manifests_folder_is_refused(tmp_path, where):
    folder = tmp_path / "corpus"
    folder.mkdir()
    outside = _wav(tmp_path / "outside.wav")
    where = str(outside) if where == "ABSOLUTE" else where
    (folder / "m.tsv").write_text(HEADER + f"{where}\tgle\teng\ta\tb\n")
    with pytest.raises(ManifestError, match=r"m\.tsv:2: field 'audio': .* lies outside the "
                                            r"manifest's folder"):
        Manifest(folder / "m.tsv")


ITEM_HEADER = "audio\tsrc_lang\ttgt_lang\ttranscript\ttranslation\titem\n"


def _items_manifest(tmp_path, rows: list[str]):
    _wav(tmp_path / "a.wav")
    (tmp_path / "m.tsv").write_text(ITEM_HEADER + "".join(r + "\n" for r in rows))
    return tmp_path / "m.tsv"


def test_with_items_each_step_draws_the_same_items_for_every_language_that_has_them(tmp_path):
    rows = [f"a.wav\t{lang}\teng\t{lang} {i}\tsentence {i}\ts{i}"
            for lang in ("gle", "est") for i in range(12)]
    rows += [f"a.wav\tswh\teng\tswh {i}\tsentence {i}\ts{i}" for i in range(0, 12, 2)]
    manifest = Manifest(_items_manifest(tmp_path, rows))
    assert manifest.paired
    for step in range(5):
        gle, est, swh = (manifest.batch(x, "train", 4, step) for x in ("gle", "est", "swh"))
        assert [e.item for e in gle] == [e.item for e in est]
        assert len({e.item for e in gle}) == 4  # no repeats within a batch
        # swh has every other item: those of the step's items it has, it draws first
        swh_has = {f"s{i}" for i in range(0, 12, 2)}
        shared = [e.item for e in gle if e.item in swh_has]
        assert {e.item for e in swh} <= swh_has
        assert [e.item for e in swh][: len(shared)] == shared
    assert {e.translation for e in gle} == {f"sentence {e.item[1:]}" for e in gle}


def test_without_items_languages_are_sampled_each_on_its_own(tmp_path):
    _wav(tmp_path / "a.wav")
    rows = [f"a.wav\t{lang}\teng\t{lang} {i}\tsentence {i}\n" for lang in ("gle", "est")
            for i in range(50)]
    (tmp_path / "m.tsv").write_text(HEADER + "".join(rows))
    manifest = Manifest(tmp_path / "m.tsv")
    assert not manifest.paired
    gle, est = manifest.batch("gle", "train", 8, 0), manifest.batch("est", "train", 8, 0)
    assert [e.translation for e in gle] != [e.translation for e in est]
    assert all(e.item == "" for e in gle)


@pytest.mark.parametrize("rows, message", [
    (["a.wav\tgle\teng\ta\thello\ts1", "a.wav\test\teng\tb\tgoodbye\ts1"],
     r"m\.tsv:3: field 'translation': item 's1' translates as 'goodbye' here but as 'hello' at "
     r"line 2"),
    (["a.wav\tgle\teng\ta\thello\ts1", "a.wav\tgle\teng\tb\thello\ts1"],
     r"m\.tsv:3: field 'item': item 's1' is repeated in gle \(first at line 2\)"),
    (["a.wav\tgle\teng\ta\thello\ts1", "a.wav\test\teng\tb\thello\t"],
     r"m\.tsv:3: field 'item' is empty; a manifest with an item column names the item of every "
     r"row"),
])
def test_a_bad_item_column_is_named_by_line(tmp_path, rows, message):
    with pytest.raises(ManifestError, match=message):
        Manifest(_items_manifest(tmp_path, rows))
