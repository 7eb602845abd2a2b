"""Training on the real tiny SeamlessM4T and the spoken-numbers corpus: the loss goes down, the
scores are sacrebleu's, and a run killed mid-way resumes to exactly the uninterrupted result."""

import itertools
import json
import signal
import subprocess
import sys
import time

import pytest
import sacrebleu
import torch
from safetensors.torch import load_file

from gradlens.plan import new_plan
from gradlens.metrics import read_metrics
from gradlens.train.config import TrainConfig, read_spec, write_spec
from probes.training import language_at, lr_factor, sampling_probabilities, train

LANGS = ["spa", "deu"]
MODULE = "speech_encoder.encoder.layers.1.ffn2"


def split_plan():
    return new_plan("tiny", LANGS).with_split(MODULE, [["spa"], ["deu"]], edited=True)


def test_sampling_follows_the_temperature():
    sizes = {"a": 900, "b": 100}
    assert sampling_probabilities(sizes, 1.0) == pytest.approx({"a": 0.9, "b": 0.1})
    assert sampling_probabilities(sizes, 1e9)["a"] == pytest.approx(0.5, abs=1e-6)
    probs = sampling_probabilities(sizes, 2.0)  # sqrt: 30 vs 10
    assert probs["a"] == pytest.approx(0.75)
    drawn = [language_at(s, probs, seed=0) for s in range(4000)]
    assert drawn.count("a") / len(drawn) == pytest.approx(0.75, abs=0.03)
    assert drawn[:50] == [language_at(s, probs, seed=0) for s in range(50)]  # deterministic


def test_learning_rate_warms_up_then_decays():
    assert [lr_factor(s, 4, 10) for s in (0, 3, 4, 7, 10)] == pytest.approx([0.25, 1, 1, 0.5, 0])


def test_a_config_with_an_unknown_field_is_refused(tmp_path):
    write_spec(tmp_path, TrainConfig(), split_plan())
    spec = json.loads((tmp_path / "train.json").read_text())
    (tmp_path / "train.json").write_text(json.dumps({**spec, "stepz": 3}))
    with pytest.raises(ValueError, match=r"train.json: unknown field\(s\) \['stepz'\]"):
        read_spec(tmp_path)
    with pytest.raises(ValueError, match="steps must be an integer ≥ 1"):
        TrainConfig(steps=0)


@pytest.mark.integration
def test_training_lowers_the_loss_and_writes_sacrebleu_scores(tmp_path):
    cfg = TrainConfig(steps=100, batch_size=4, learning_rate=3e-3, warmup_steps=5, eval_every=100,
                      eval_size=4, checkpoint_every=100, log_every=5)
    train(cfg, split_plan(), tmp_path)
    records = read_metrics(tmp_path / "metrics.jsonl")
    losses = [r["loss_st"] for r in records if r["kind"] == "train"]
    # every step in metrics.jsonl (the pages follow it); a log line every log_every steps
    assert [r["step"] for r in records if r["kind"] == "train"] == list(range(1, 101))
    assert sum(losses[-3:]) / 3 < losses[0] - 2.0
    assert (tmp_path / "log.txt").read_text().count("/100 ") == 21  # steps 1, 5, 10, ..., 100
    evals = [r for r in records if r["kind"] == "eval"]
    # the starting model (step 0, the baseline) and the trained one, each split and language
    assert sorted((r["step"], r["split"], r["language"]) for r in evals) == sorted(
        (step, s, x) for step in (0, 100) for s in ("dev", "test") for x in [*LANGS, "all"])
    for step, split in itertools.product((0, 100), ("dev", "test")):
        rows = [json.loads(x) for x in (tmp_path / "hyps" / f"{split}-{step:06d}.jsonl").open()]
        assert len(rows) == 8
        for lang in [*LANGS, "all"]:
            mine = [r for r in rows if lang in ("all", r["language"])]
            hyps, refs = [r["hyp"] for r in mine], [[r["ref"] for r in mine]]
            (rec,) = [r for r in evals if (r["step"], r["split"], r["language"]) == (step, split, lang)]
            assert rec["bleu"] == sacrebleu.corpus_bleu(hyps, refs).score
            assert rec["chrf"] == sacrebleu.corpus_chrf(hyps, refs).score
    assert any(r["chrf"] > 0 for r in evals if r["step"] == 100)
    assert "eval step 0 (the starting model)" in (tmp_path / "log.txt").read_text()


def entry(spec, out):
    return [sys.executable, "-m", "probes.training", str(spec), "--out", str(out)]


def checkpoint_step(out) -> int:
    try:
        return int(torch.load(out / "checkpoint" / "trainer.pt", weights_only=True)["step"])
    except Exception:  # not written yet, or being replaced
        return 0


@pytest.mark.integration
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    cfg = TrainConfig(steps=12, batch_size=2, warmup_steps=2, eval_every=100, eval_size=2,
                      checkpoint_every=4, log_every=1)
    spec = tmp_path / "spec"
    write_spec(spec, cfg, split_plan())
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    subprocess.run(entry(spec, whole), check=True, capture_output=True)

    proc = subprocess.Popen(entry(spec, cut), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while checkpoint_step(cut) < 4 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = checkpoint_step(cut)
    assert 4 <= stopped_at < 12
    subprocess.run(entry(spec, cut), check=True, capture_output=True)  # the same command

    a = load_file(str(whole / "checkpoint" / "model.safetensors"))
    b = load_file(str(cut / "checkpoint" / "model.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("route::") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = [r["step"] for r in read_metrics(cut / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == list(range(1, 13))  # nothing logged twice, nothing lost
    assert f"resuming from checkpoint at step {stopped_at}" in (cut / "log.txt").read_text()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda_in_bf16_autocast_lowers_the_loss(tmp_path):
    cfg = TrainConfig(steps=30, batch_size=4, learning_rate=3e-3, warmup_steps=3, eval_every=30,
                      eval_size=2, checkpoint_every=30, log_every=1, device="cuda")
    train(cfg, split_plan(), tmp_path)
    losses = [r["loss_st"] for r in read_metrics(tmp_path / "metrics.jsonl") if r["kind"] == "train"]
    assert all(x == x for x in losses) and losses[-1] < losses[0]
    assert "on cuda" in (tmp_path / "log.txt").read_text()


@pytest.mark.integration
def test_training_on_manifests_scores_the_whole_dev_manifest(tmp_path):
    import soundfile

    from gradlens.corpus import SAMPLE_RATE, SpokenNumbers

    corpus = SpokenNumbers(LANGS, seed=0)
    header = "audio\tsrc_lang\ttgt_lang\ttranscript\ttranslation\n"
    for split, size in (("train", 30), ("dev", 3)):
        lines = []
        for lang in LANGS:
            for ex in corpus.batch(lang, split, size, 0):
                wav = tmp_path / f"{split}-{len(lines)}.wav"
                soundfile.write(str(wav), ex.audio, SAMPLE_RATE)
                lines.append(f"{wav.name}\t{lang}\teng\t{ex.transcript}\t{ex.translation}\n")
        (tmp_path / f"{split}.tsv").write_text(header + "".join(lines))
    cfg = TrainConfig(steps=4, batch_size=2, eval_every=4, eval_size=0, checkpoint_every=4,
                      log_every=1, corpus=str(tmp_path / "train.tsv"), dev=str(tmp_path / "dev.tsv"))
    out = tmp_path / "job"
    train(cfg, split_plan(), out)
    evals = [r for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "eval"]
    assert {r["split"] for r in evals} == {"dev"}
    assert {(r["language"], r["n"]) for r in evals} == {("spa", 3), ("deu", 3), ("all", 6)}
    assert "no test manifest given: test not evaluated" in (out / "log.txt").read_text()


@pytest.mark.integration
def test_the_demo_model_is_trained_by_gradlens_cached_and_loads_as_a_snapshot(tmp_path,
                                                                              monkeypatch):
    """The embedded default probes a model that already does the task: gradlens' own loop
    trains the tiny model (a few steps here), keeps it in the cache and loads it offline."""
    import dataclasses

    from gradlens.demo import RECIPE
    from probes.pretrain import model_dir, pretrained_tiny
    from probes.models import load_model

    monkeypatch.setenv("GRADLENS_CACHE", str(tmp_path / "cache"))
    cfg = dataclasses.replace(RECIPE, steps=3, eval_every=3, eval_size=1, checkpoint_every=3,
                              log_every=1)
    seen = []
    path = pretrained_tiny(["spa", "deu"], cfg=cfg, on_step=lambda d, t, r: seen.append(d))
    assert path == model_dir(["spa", "deu"], 0, cfg) and seen == [1, 2, 3]
    assert (path / "training" / "metrics.jsonl").exists() and not path.with_name(
        path.name + ".training").exists()
    lm = load_model(str(path), ["spa", "deu"])
    assert lm.lang_token_id("spa") != lm.lang_token_id("deu")
    from gradlens.corpus import SpokenNumbers

    fresh = load_model("tiny", ["spa", "deu"], SpokenNumbers(["spa", "deu"]).texts())
    name = "text_decoder.layers.0.ffn.fc1.weight"
    assert not torch.equal(dict(lm.model.named_parameters())[name],
                           dict(fresh.model.named_parameters())[name])  # it trained
    again = pretrained_tiny(["spa", "deu"], cfg=cfg, on_step=lambda d, t, r: seen.append(d))
    assert again == path and seen == [1, 2, 3]  # read from the cache, not trained again
