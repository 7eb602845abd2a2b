"""The plan-routed model on the real tiny SeamlessM4T: copies per group, exact when shared."""

import pytest
import torch

from gradlens.corpus import SpokenNumbers
from gradlens.plan import new_plan
from probes.routing import RoutedModel
from probes.loop import Batcher, loss_of
from probes.models import load_model

LANGS = ["spa", "ita", "deu", "rus"]
MODULE = "speech_encoder.encoder.layers.1.ffn2"


@pytest.fixture(scope="module")
def setup():
    corpus = SpokenNumbers(LANGS, seed=0)
    lm = load_model("tiny", LANGS, corpus.texts(), seed=0)
    return lm, corpus, Batcher(lm, torch.device("cpu"))


def plan_with(groups):
    plan = new_plan("tiny", LANGS)
    return plan.with_split(MODULE, groups, edited=True) if groups else plan


def batch(corpus, batcher, lang):
    examples = corpus.batch(lang, "train", 2, 0)
    return batcher.features(examples), batcher.labels(examples, "st")


def test_a_fully_shared_plan_reproduces_the_plain_model_exactly(setup):
    lm, corpus, batcher = setup
    lm.model.eval()
    inputs, labels = batch(corpus, batcher, "deu")
    plain = lm.model(**inputs, labels=labels).logits
    routed = RoutedModel(lm.model, plan_with(None))
    assert torch.equal(routed(**inputs, labels=labels, language="deu").logits, plain)


def test_a_step_on_one_language_moves_only_its_groups_copy(setup):
    import copy

    lm, corpus, batcher = setup
    model = copy.deepcopy(lm.model)
    routed = RoutedModel(model, plan_with([["spa", "ita"], ["deu", "rus"]]))
    before = [{n: p.detach().clone() for n, p in routed.copies(MODULE, g).items()} for g in (0, 1)]
    assert all(torch.equal(before[0][n], before[1][n]) for n in before[0])  # both from shared
    optim = torch.optim.SGD(routed.parameters(), lr=0.1)
    routed.train()
    routed.set_language("deu")
    inputs, labels = batch(corpus, batcher, "deu")
    optim.zero_grad()
    lm_deu = type(lm)(lm.name, routed.model, lm.tokenizer, lm.feature_extractor, lm.config)
    loss_of(lm_deu, inputs, labels, torch.device("cpu")).backward()
    assert all(p.grad is None for p in routed.copies(MODULE, 0).values())
    optim.step()
    after = [routed.copies(MODULE, g) for g in (0, 1)]
    assert all(torch.equal(after[0][n], before[0][n]) for n in before[0])       # spa/ita untouched
    assert any(not torch.equal(after[1][n], before[1][n]) for n in before[1])   # deu/rus moved
    # the model sees the language's copy
    routed.set_language("spa")
    name = next(iter(after[0]))
    assert dict(routed.model.named_parameters())[name] is after[0][name]


def test_a_checkpoint_loads_back_into_the_same_routed_model(setup, tmp_path):
    import copy

    lm, corpus, batcher = setup
    a = RoutedModel(copy.deepcopy(lm.model), plan_with([["spa"], ["ita", "deu", "rus"]]))
    with torch.no_grad():
        for p in a.copies(MODULE, 0).values():
            p.add_(1.0)
    a.save(tmp_path / "ckpt")
    b = RoutedModel(copy.deepcopy(lm.model), plan_with([["spa"], ["ita", "deu", "rus"]]))
    b.load(tmp_path / "ckpt")
    for g in (0, 1):
        for n, p in a.copies(MODULE, g).items():
            assert torch.equal(p, b.copies(MODULE, g)[n])
    b.eval()
    a.eval()
    inputs, labels = batch(corpus, batcher, "spa")
    assert torch.equal(a(**inputs, labels=labels, language="spa").logits,
                       b(**inputs, labels=labels, language="spa").logits)
    other = RoutedModel(copy.deepcopy(lm.model), plan_with([["spa", "ita"], ["deu", "rus"]]))
    with pytest.raises(ValueError, match="another plan"):
        other.load(tmp_path / "ckpt")


def test_a_plan_naming_an_unknown_module_is_refused(setup):
    lm, _, _ = setup
    plan = new_plan("tiny", LANGS, splits={"speech_encoder.encoder.layers.99.ffn2": [LANGS]})
    with pytest.raises(ValueError, match="layers.99.ffn2' is not a module of the model"):
        RoutedModel(lm.model, plan)
