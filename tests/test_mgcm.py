"""MGCM's projection on real tiny-model gradients equals the explicit formula, module by module."""

import pytest
import torch

from gradlens.corpus import SpokenNumbers
from gradlens.modules import module_of
from probes.mgcm import MGCM
from probes.loop import Batcher, loss_of
from probes.models import load_model

LANGS = ["spa", "deu"]


@pytest.fixture(scope="module")
def setup():
    corpus = SpokenNumbers(LANGS, seed=0)
    lm = load_model("tiny", LANGS, corpus.texts(), seed=0)
    lm.model.eval()  # no dropout: the two passes see the same function
    examples = corpus.batch("deu", "train", 3, 0)
    batcher = Batcher(lm, torch.device("cpu"))
    return lm, batcher.features(examples), batcher.labels(examples, "st"), batcher.labels(examples, "asr")


def grads_of(lm, inputs, labels) -> dict[str, torch.Tensor]:
    lm.model.zero_grad(set_to_none=True)
    loss_of(lm, inputs, labels, torch.device("cpu")).backward()
    return {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
            for n, p in lm.model.named_parameters()}


def test_projection_equals_the_explicit_formula(setup):
    lm, inputs, st, asr = setup
    g_st, g_aux = grads_of(lm, inputs, st), grads_of(lm, inputs, asr)
    expected, conflicting = {}, set()
    for module in {module_of(n) for n in g_st}:
        names = [n for n in g_st if module_of(n) == module]
        dot = sum((g_aux[n] * g_st[n]).sum() for n in names)
        norm = sum((g_st[n] ** 2).sum() for n in names)
        for n in names:
            aux = g_aux[n] - dot / norm * g_st[n] if dot < 0 else g_aux[n]
            expected[n] = g_st[n] + aux
        if dot < 0:
            conflicting.add(module)
    assert conflicting and len(conflicting) < len({module_of(n) for n in g_st})  # both kinds

    lm.model.zero_grad(set_to_none=True)
    loss_of(lm, inputs, st, torch.device("cpu")).backward()
    with MGCM(lm.model) as mgcm:
        loss_of(lm, inputs, asr, torch.device("cpu")).backward()
    assert set(mgcm.conflicts) == conflicting
    for n, p in lm.model.named_parameters():
        assert torch.allclose(p.grad, expected[n], atol=1e-6, rtol=1e-4), n
    for module in conflicting:  # projected: no longer against the primary
        names = [n for n in g_st if module_of(n) == module]
        aux = {n: dict(lm.model.named_parameters())[n].grad - g_st[n] for n in names}
        assert abs(float(sum((aux[n] * g_st[n]).sum() for n in names))) < 1e-5


def test_without_conflict_nothing_changes(setup):
    lm, inputs, st, _ = setup
    g_st = grads_of(lm, inputs, st)
    lm.model.zero_grad(set_to_none=True)
    loss_of(lm, inputs, st, torch.device("cpu")).backward()
    with MGCM(lm.model) as mgcm:  # the auxiliary gradient is the primary one: never conflicting
        (0.5 * loss_of(lm, inputs, st, torch.device("cpu"))).backward()
    assert mgcm.conflicts == []
    for n, p in lm.model.named_parameters():
        assert torch.allclose(p.grad, 1.5 * g_st[n], atol=1e-6, rtol=1e-5), n
