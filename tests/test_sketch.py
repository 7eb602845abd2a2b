"""The sketch on real captured gradients: torch matches the numpy reference; unbiased; bounded."""

import numpy as np
import pytest
import torch

from gradlens import sketch as ref
from gradlens.corpus import SpokenNumbers
from probes.capture import FlatGradients, torch_signs
from probes.loop import Batcher, loss_of
from probes.models import load_model

K = 128  # small (norms, 128 parameters, stay exact), so that the sketch really compresses the tiny model's modules


@pytest.fixture(scope="module")
def captured():
    """Exact per-module gradients and torch sketches of ST and ASR on one real batch."""
    langs = ["spa", "deu"]
    corpus = SpokenNumbers(langs, seed=0)
    lm = load_model("tiny", langs, corpus.texts(), seed=0)
    lm.model.eval()
    flat = FlatGradients(lm.model, K, seed=11)
    batcher = Batcher(lm, torch.device("cpu"))
    examples = corpus.batch("deu", "train", 2, step=0)
    inputs = batcher.features(examples)
    out = {}
    for task in ("st", "asr"):
        flat.zero()
        loss_of(lm, inputs, batcher.labels(examples, task), torch.device("cpu")).backward()
        flat.check_views()
        sketch, sq = flat.capture()
        out[task] = (flat.module_grads(), sketch.numpy(), sq.numpy())
    return flat, out


def test_torch_signs_equal_numpy_signs():
    for seed, start, n in [(0, 0, 1000), (12345, 10_000_019, 5000), (2**31 + 5, 7, 3)]:
        assert np.array_equal(torch_signs(seed, start, n, "cpu").numpy(), ref.signs(seed, start, n))
    s = ref.signs(1, 0, 100_000)
    assert abs(s.mean()) < 0.02  # balanced


def test_capture_matches_reference_and_norms_are_exact(captured):
    flat, out = captured
    starts = ref.offsets(flat.modules.n_params, K)
    grads, sketch, sq = out["st"]
    for m, (g, start) in enumerate(zip(grads, starts)):
        expected = ref.sketch_module(g, K, seed=11, offset=int(start))
        np.testing.assert_allclose(sketch[m], expected, rtol=1e-4, atol=1e-6 * np.abs(g).max())
        np.testing.assert_allclose(sq[m], (g**2).sum(), rtol=1e-4)
        if g.size <= K:  # identity storage, zero-padded
            np.testing.assert_allclose(sketch[m][: g.size], g, rtol=1e-5)
            assert not sketch[m][g.size:].any()
    assert flat.modules.exact.any() and not flat.modules.exact.all()


def test_unbiased_with_the_stated_variance_on_real_gradients(captured):
    flat, out = captured
    st, asr = out["st"][0], out["asr"][0]
    big = [m for m, g in enumerate(st) if g.size > 20 * K][:4]
    seeds = range(400)
    for m in big:
        a, b = st[m], asr[m]
        est = np.array([ref.sketch_module(a, K, s, 0) @ ref.sketch_module(b, K, s, 0) for s in seeds])
        var = ref.inner_product_variance(a, b, K)
        exact = a @ b
        assert abs(est.mean() - exact) < 4 * np.sqrt(var / len(seeds)) + 1e-12
        assert 0.7 < est.var() / var < 1.4


def test_cosine_error_within_the_stated_bound(captured):
    """|cos estimate - cos| stays within 4 sqrt(2/k) for every module, task pair and seed."""
    flat, out = captured
    st, asr = out["st"][0], out["asr"][0]
    bound = 4 * np.sqrt(2 / K)
    errors = []
    for m in range(len(st)):
        a, b = st[m], asr[m]
        if a.size <= K or not a.any() or not b.any():
            continue
        exact = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
        for s in range(20):
            sa, sb = ref.sketch_module(a, K, s, 0), ref.sketch_module(b, K, s, 0)
            errors.append(abs(sa @ sb / np.linalg.norm(sa) / np.linalg.norm(sb) - exact))
    errors = np.array(errors)
    assert errors.size > 100
    assert errors.max() < bound, f"max error {errors.max():.3f} above {bound:.3f}"
    assert np.sqrt((errors**2).mean()) < np.sqrt(2 / K)  # the rms is inside one standard deviation
