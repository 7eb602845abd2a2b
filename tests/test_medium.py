"""SeamlessM4T-Medium's architecture (821 M parameters, random weights) through the real probe on
the CPU, one step: the stored layout and norms are what the model's gradient says.

Integration (it starts a probe); about 1.5 minutes and 9 GB on 2 cores. The whole Medium path,
timed, is ``bench/medium_cpu.py``.
"""

import numpy as np
import pytest
import torch

from gradlens import sketch as ref
from gradlens.corpus import SpokenNumbers
from gradlens.modules import module_of
from gradlens.probe_config import ProbeConfig
from gradlens.store import Run
from probes.loop import Batcher, loss_of, probe
from probes.models import load_model

pytestmark = pytest.mark.integration
LANGS = ["spa"]


def test_one_medium_probe_step_stores_every_module_folded_with_exact_norms(tmp_path):
    cfg = ProbeConfig(model="medium-random", languages=LANGS, tasks=["st"], steps=1,
                      batch_size=1, sketch_dim=4096, device="cpu", out=str(tmp_path / "run"))
    probe(cfg)
    with Run(tmp_path / "run") as run:
        names, exact_kept = list(run.modules.name), run.modules.exact
        fold, n_params = run.sketch_fold, run.modules.n_params
        sketch = np.stack([run.sketch(m)[0, 0, 0] for m in range(len(names))]).astype(np.float64)
        stored_sq = run.sq_norm()[0, 0, 0]

    # the same model (seeded) and batch, a plain backward: the exact gradient of each module
    corpus = SpokenNumbers(LANGS, seed=0)
    lm = load_model("medium-random", LANGS, corpus.texts(), seed=0)
    lm.model.eval()
    examples = corpus.batch("spa", "train", 1, 0)
    batcher = Batcher(lm, torch.device("cpu"))
    loss_of(lm, batcher.features(examples), batcher.labels(examples, "st"),
            torch.device("cpu")).backward()
    exact_sq, dims = {}, set()
    for name, param in lm.model.named_parameters():
        dims.update(param.shape)
        g = param.grad.double()
        exact_sq[module_of(name)] = exact_sq.get(module_of(name), 0.0) + float((g * g).sum())

    assert len(names) == 103 and sorted(names) == sorted(exact_sq)
    assert "speech_encoder.encoder.layers.11.ffn1" in names
    assert int(n_params.sum()) == 821_351_744
    assert fold == ref.fold_width(4096, dims) and 4096 - 20 < fold < 4096
    assert all(d % fold for d in dims if d > 1)
    np.testing.assert_allclose(stored_sq, [exact_sq[n] for n in names], rtol=1e-3)
    folded = ~exact_kept
    assert folded.sum() > 80 and not sketch[folded, fold:].any()   # the rest of each row is zero
    ratio = (sketch[folded] ** 2).sum(1) / stored_sq[folded]          # |sketch|^2 estimates it
    assert 0.95 < np.median(ratio) < 1.05 and ratio.min() > 0.5 and ratio.max() < 2
