import numpy as np
import pytest
import torch

from gradlens.corpus import SpokenNumbers
from probes.loop import Batcher, loss_of
from gradlens.errors import ModelNotFound
from probes.models import MEDIUM_CONFIG, load_model, load_pretrained

LANGS = ["spa", "fin", "rus"]


@pytest.fixture(scope="module")
def tiny():
    corpus = SpokenNumbers(LANGS, seed=0)
    return load_model("tiny", LANGS, corpus.texts(), seed=0), corpus


def test_tiny_is_the_real_class_with_language_tokens(tiny):
    from transformers import SeamlessM4TForSpeechToText, SeamlessM4TTokenizer

    lm, _ = tiny
    assert isinstance(lm.model, SeamlessM4TForSpeechToText)
    assert isinstance(lm.tokenizer, SeamlessM4TTokenizer)
    ids = {lang: lm.lang_token_id(lang) for lang in LANGS + ["eng"]}
    assert len(set(ids.values())) == 4 and max(ids.values()) < lm.model.config.vocab_size
    assert lm.model.generation_config.text_decoder_lang_to_code_id["fin"] == ids["fin"]
    assert lm.tokenizer.unk_token_id not in lm.tokenizer("kolmekymmentä", add_special_tokens=False).input_ids
    assert lm.model.lm_head.weight is lm.model.shared.weight


@pytest.mark.parametrize("task", ["st", "asr"])
def test_forward_and_backward_on_real_batches(tiny, task):
    lm, corpus = tiny
    batcher = Batcher(lm, torch.device("cpu"))
    examples = corpus.batch("fin", "train", 3, step=0)
    inputs = batcher.features(examples)
    assert inputs["input_features"].shape[0] == 3 and inputs["input_features"].shape[2] == 160
    labels = batcher.labels(examples, task)
    first = lm.lang_token_id("eng" if task == "st" else "fin")
    assert (labels[:, 0] == first).all()
    lm.model.zero_grad()
    loss = loss_of(lm, inputs, labels, torch.device("cpu"))
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    grads = [p.grad for p in lm.model.parameters() if p.grad is not None]
    assert len(grads) > 50 and all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.norm()) for g in grads) > 0


def test_saved_model_loads_from_a_local_path(tiny, tmp_path):
    lm, corpus = tiny
    lm.model.save_pretrained(tmp_path)
    lm.tokenizer.save_pretrained(tmp_path)
    lm.feature_extractor.save_pretrained(tmp_path)
    again = load_pretrained(str(tmp_path))
    lm.model.eval(), again.model.eval()  # layerdrop is active in train mode
    batcher = Batcher(again, torch.device("cpu"))
    examples = corpus.batch("spa", "train", 2, step=1)
    inputs, labels = batcher.features(examples), batcher.labels(examples, "st")
    with torch.no_grad():
        a = lm.model(**inputs, labels=labels).loss
        b = again.model(**inputs, labels=labels).loss
    assert torch.allclose(a, b)
    assert again.lang_token_id("spa") == lm.lang_token_id("spa")


def test_missing_model_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelNotFound) as err:
        load_pretrained("facebook/hf-seamless-m4t-medium")
    msg = str(err.value)
    assert str(tmp_path / "hub") in msg and "models--facebook--hf-seamless-m4t-medium" in msg


def test_a_directory_that_is_no_snapshot_is_named_as_such(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFound, match="not a SeamlessM4T snapshot that loads offline"):
        load_pretrained(str(tmp_path))


def test_medium_config_is_the_medium_architecture():
    from transformers import SeamlessM4TConfig

    cfg = SeamlessM4TConfig(**MEDIUM_CONFIG)
    assert (cfg.hidden_size, cfg.speech_encoder_layers, cfg.decoder_layers) == (1024, 12, 12)
    assert (cfg.decoder_ffn_dim, cfg.vocab_size) == (4096, 256206)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_medium_random_probe_step_on_gpu(tmp_path):
    from gradlens.probe_config import ProbeConfig
    from probes.loop import probe
    from gradlens.store import Run

    out = probe(ProbeConfig(model="medium-random", languages=["spa", "deu"], steps=1,
                            batch_size=2, sketch_dim=4096, out=str(tmp_path / "m")))
    with Run(out) as run:
        assert run.done_steps.tolist() == [0] and np.isfinite(run.loss()).all()
