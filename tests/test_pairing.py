"""Content pairing: a run records whether its steps drew the same content for every language,
and only such runs get the paired similarity and the paired CCA evidence."""

import numpy as np
import pytest

from conftest import random_run
from gradlens.analysis.evidence import (SIMILARITIES, default_similarity, module_evidence,
                                        offered_similarities)
from gradlens.store import Run

LANGS = ["a", "b", "c", "d", "e", "f"]


def test_unpaired_steps_get_no_paired_similarity_and_no_alignment():
    x = np.random.default_rng(0).normal(size=(24, len(LANGS), 2, 128))
    paired = module_evidence(x, LANGS, ["st", "asr"], "m", 128)
    alone = module_evidence(x, LANGS, ["st", "asr"], "m", 128, content_paired=False)
    assert paired.paired is not None and paired.alignment is not None
    assert alone.paired is None and alone.paired_boot is None and alone.alignment is None
    # the mean-based evidence does not depend on the pairing
    assert alone.divergence.p_value == paired.divergence.p_value
    assert alone.held_out_gain == paired.held_out_gain


def test_the_paired_similarity_is_offered_and_opened_only_on_paired_runs():
    assert offered_similarities(True) == SIMILARITIES
    assert list(offered_similarities(False)) == ["mean"]
    assert default_similarity(14, True) == "paired"
    assert default_similarity(14, False) == "mean"


@pytest.mark.parametrize("probe_config, paired", [
    ({"content_paired": True, "corpus": "x.tsv"}, True),
    ({"content_paired": False, "corpus": "spoken-numbers"}, False),
    ({"corpus": "spoken-numbers"}, True),  # runs made before the probe recorded it
    ({"corpus": "spoken-numbers:reversed=spa"}, True),
    ({"corpus": "/data/train.tsv"}, False),
])
def test_a_run_says_whether_its_steps_are_content_paired(tmp_path, probe_config, paired):
    random_run(tmp_path / "r", probe_config=probe_config)
    with Run(tmp_path / "r") as run:
        assert run.content_paired is paired


def _manifest(directory, items: bool):
    """A manifest of the spoken numbers in two languages (real speech), with or without items."""
    import soundfile

    from gradlens.corpus import SAMPLE_RATE, SpokenNumbers

    corpus = SpokenNumbers(["spa", "deu"], seed=0)
    lines = []
    for lang in corpus.languages:
        for ex in corpus.batch(lang, "train", 6, 0):
            wav = directory / f"{lang}-{len(lines)}.wav"
            soundfile.write(str(wav), ex.audio, SAMPLE_RATE)
            lines.append("\t".join([wav.name, lang, "eng", ex.transcript, ex.translation]
                                   + ([ex.item] if items else [])) + "\n")
    header = "audio\tsrc_lang\ttgt_lang\ttranscript\ttranslation" + ("\titem" if items else "")
    (directory / "m.tsv").write_text(header + "\n" + "".join(dict.fromkeys(lines)))
    return directory / "m.tsv"


@pytest.mark.integration
@pytest.mark.parametrize("items", [True, False])
def test_a_probe_of_a_manifest_records_whether_it_names_items(tmp_path, items):
    from gradlens.probe_config import ProbeConfig
    from probes.loop import probe

    manifest = _manifest(tmp_path, items)
    out = probe(ProbeConfig(corpus=str(manifest), languages=["spa", "deu"], steps=2,
                            batch_size=2, sketch_dim=64, out=str(tmp_path / "run")))
    with Run(out) as run:
        assert run.content_paired is items
        assert len(run.done_steps) == 2
    # run again with the same settings: resumed, not refused as another configuration
    probe(ProbeConfig(corpus=str(manifest), languages=["spa", "deu"], steps=2,
                      batch_size=2, sketch_dim=64, out=str(out)))
