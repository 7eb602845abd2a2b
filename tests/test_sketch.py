"""The sketch on real captured gradients: torch matches the numpy reference; unbiased; bounded."""

import numpy as np
import pytest
import torch

from gradlens import sketch as ref
from gradlens.corpus import SpokenNumbers
from probes.capture import FlatSketcher, HookSketcher, gradient_sketcher, torch_signs
from probes.loop import Batcher, loss_of
from probes.models import load_model

K = 128  # small (norms, 128 parameters, stay exact), so that the sketch really compresses the tiny model's modules


CAPTURES = (HookSketcher, FlatSketcher)


@pytest.fixture(scope="module")
def captured():
    """Exact per-module gradients (a plain backward) and each capture's torch sketches (the same
    loss through ``capture``) of ST and ASR on one real batch."""
    langs = ["spa", "deu"]
    corpus = SpokenNumbers(langs, seed=0)
    lm = load_model("tiny", langs, corpus.texts(), seed=0)
    lm.model.eval()
    sketchers = {cls: cls(lm.model, K, seed=11) for cls in CAPTURES}  # both on one model
    batcher = Batcher(lm, torch.device("cpu"))
    examples = corpus.batch("deu", "train", 2, step=0)
    inputs = batcher.features(examples)
    out = {cls: {} for cls in CAPTURES}
    for task in ("st", "asr"):
        labels = batcher.labels(examples, task)
        loss_of(lm, inputs, labels, torch.device("cpu")).backward()
        exact = sketchers[HookSketcher].module_grads()
        for cls, sketcher in sketchers.items():
            sketch, sq = sketcher.capture(loss_of(lm, inputs, labels, torch.device("cpu")))
            out[cls][task] = (exact, sketch.numpy(), sq.numpy())
    return sketchers[HookSketcher], out[HookSketcher], sketchers, out


def loss_with_gradients(params, grads) -> torch.Tensor:
    """A loss whose gradient is exactly ``grads`` (one tensor per parameter)."""
    return sum((p * g.to(p.device)).sum() for p, g in zip(params, grads))


def random_gradients(sketcher, seed: int) -> list[torch.Tensor]:
    rng = np.random.default_rng(seed)
    return [torch.as_tensor(rng.normal(size=tuple(p.shape)), dtype=torch.float32)
            for p in sketcher.params]


def by_module(sketcher, grads) -> list[np.ndarray]:
    """Per-parameter tensors -> each module's flattened gradient, float64."""
    bounds = np.cumsum([0] + [len(ps) for ps in sketcher.by_module])
    return [np.concatenate([g.double().numpy().ravel() for g in grads[lo:hi]])
            for lo, hi in zip(bounds[:-1], bounds[1:])]


def test_torch_signs_equal_numpy_signs():
    for seed, start, n in [(0, 0, 1000), (12345, 10_000_019, 5000), (2**31 + 5, 7, 3)]:
        assert np.array_equal(torch_signs(seed, start, n, "cpu").numpy(), ref.signs(seed, start, n))
    s = ref.signs(1, 0, 100_000)
    assert abs(s.mean()) < 0.02  # balanced


@pytest.mark.parametrize("cls", CAPTURES, ids=lambda c: c.__name__)
def test_capture_matches_reference_and_norms_are_exact(captured, cls):
    *_, sketchers, out = captured
    sketcher = sketchers[cls]
    P = sketcher.fold
    assert P == 127  # the largest prime <= 128 dividing no dimension of the tiny model
    starts = ref.offsets(sketcher.modules.n_params, K, P)
    grads, sketch, sq = out[cls]["st"]
    for m, (g, start) in enumerate(zip(grads, starts)):
        expected = ref.sketch_module(g, K, seed=11, offset=int(start), fold=P)
        np.testing.assert_allclose(sketch[m], expected, rtol=1e-4, atol=1e-6 * np.abs(g).max())
        np.testing.assert_allclose(sq[m], (g**2).sum(), rtol=1e-4)
        if g.size <= K:  # identity storage, zero-padded
            np.testing.assert_allclose(sketch[m][: g.size], g, rtol=1e-5)
            assert not sketch[m][g.size:].any()
        else:
            assert not sketch[m][P:].any()
    assert sketcher.modules.exact.any() and not sketcher.modules.exact.all()


def test_the_hook_capture_drops_every_gradient_and_leaves_training_alone(captured):
    """After ``capture`` no ``.grad`` is left (a probed step holds no gradient memory); outside
    it, gradients accumulate as in any training step."""
    sketcher, *_ = captured
    sketcher.capture(loss_with_gradients(sketcher.params, random_gradients(sketcher, 1)))
    assert all(p.grad is None for p in sketcher.params)
    ones = [torch.ones(p.shape) for p in sketcher.params]
    loss_with_gradients(sketcher.params, ones).backward()
    loss_with_gradients(sketcher.params, ones).backward()
    assert all(torch.equal(p.grad, 2 * torch.ones(p.shape)) for p in sketcher.params)
    for p in sketcher.params:
        p.grad = None


@pytest.mark.parametrize("cls", CAPTURES, ids=lambda c: c.__name__)
def test_the_capture_in_chunks_that_split_parameters_gives_the_same_sketch(captured, cls,
                                                                          monkeypatch):
    """Each capture folds ``chunk`` values per call (its temporaries bounded): chunks that end
    inside parameters and modules, and one chunk, give the same sketch and norms."""
    *_, sketchers, _ = captured
    sketcher = sketchers[cls]
    grads = random_gradients(sketcher, 3)
    whole = sketcher.capture(loss_with_gradients(sketcher.params, grads))
    monkeypatch.setattr(sketcher, "chunk", 7 * sketcher.fold + 3)   # 7 rows a chunk
    assert max(p.numel() for p in sketcher.params) > 20 * sketcher.chunk
    chunked = sketcher.capture(loss_with_gradients(sketcher.params, grads))
    for a, b in zip(whole, chunked):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)  # sums in another order
    starts = ref.offsets(sketcher.modules.n_params, K, sketcher.fold)
    for m, (g, start) in enumerate(zip(by_module(sketcher, grads), starts)):
        expected = ref.sketch_module(g, K, seed=11, offset=int(start), fold=sketcher.fold)
        np.testing.assert_allclose(chunked[0][m].numpy(), expected, rtol=1e-4, atol=1e-4)
    for p in sketcher.params:
        p.grad = None


def test_the_model_and_its_device_pick_the_capture(monkeypatch):
    import probes.capture as capture

    model = torch.nn.Linear(300, 2)                      # 602 values: calls cost more
    assert type(gradient_sketcher(model, 128, seed=0)) is FlatSketcher
    monkeypatch.setattr(capture, "HOOKS_FROM", 600)      # as if large: memory passes cost more
    assert type(gradient_sketcher(model, 128, seed=0)) is HookSketcher


def test_the_fold_width_is_a_prime_dividing_no_dimension():
    assert ref.fold_width(1024, {1024, 4096, 160, 31}) == 1021
    assert ref.fold_width(1024, {1021 * 2}) == 1019
    assert ref.fold_width(128, {64, 128}) == 127


def _outlier_gradient(rng, out: int, width: int, outliers: int = 4) -> np.ndarray:
    """A weight gradient ``[out, width]`` flattened row by row, whose few outlier input
    features (columns) are 20x the rest, as in trained transformers."""
    g = rng.normal(size=(out, width))
    g[:, rng.choice(width, outliers, replace=False)] *= 20
    return g.ravel()


@pytest.mark.parametrize("width", [256, 512, 1024])
def test_outlier_columns_stay_within_twice_the_stated_variance(width):
    """Rows whose length is a multiple of k (Medium: 1024 and 4096 against k = 1024 or 4096, here
    k = 256): folding by k itself piles each column into one bucket; the prime fold does not.
    Two gradients sharing their outlier columns, cosine error over 300 sign seeds."""
    rng = np.random.default_rng(width)
    k = 256
    p = ref.fold_width(k, {64, width})
    a = _outlier_gradient(rng, 64, width)
    b = 0.5 * a + _outlier_gradient(rng, 64, width)
    exact = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    bound_var = 2 / k                          # the stated bound on the cosine error's variance

    def error_var(fold):
        err = []
        for s in range(300):
            sa = ref.sketch_module(a, k, s, 0, fold)
            sb = ref.sketch_module(b, k, s, 0, fold)
            err.append(sa @ sb / np.linalg.norm(sa) / np.linalg.norm(sb) - exact)
        return float(np.mean(np.square(err)))

    assert error_var(p) < 2 * bound_var
    if width == k:  # rows exactly k long: the aligned fold breaks the bound, the prime holds it
        assert error_var(k) > 2 * bound_var


def test_unbiased_with_the_stated_variance_on_real_gradients(captured):
    sketcher, out, *_ = captured
    st, asr = out["st"][0], out["asr"][0]
    big = [m for m, g in enumerate(st) if g.size > 20 * K][:4]
    seeds = range(400)
    P = sketcher.fold
    for m in big:
        a, b = st[m], asr[m]
        est = np.array([ref.sketch_module(a, K, s, 0, P) @ ref.sketch_module(b, K, s, 0, P)
                        for s in seeds])
        var = ref.inner_product_variance(a, b, P)
        exact = a @ b
        assert abs(est.mean() - exact) < 4 * np.sqrt(var / len(seeds)) + 1e-12
        assert 0.7 < est.var() / var < 1.4


def test_cosine_error_within_the_stated_bound(captured):
    """|cos estimate - cos| stays within 4 sqrt(2/k) for every module, task pair and seed."""
    sketcher, out, *_ = captured
    st, asr = out["st"][0], out["asr"][0]
    bound = 4 * np.sqrt(2 / K)
    P = sketcher.fold
    errors = []
    for m in range(len(st)):
        a, b = st[m], asr[m]
        if a.size <= K or not a.any() or not b.any():
            continue
        exact = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
        for s in range(20):
            sa, sb = ref.sketch_module(a, K, s, 0, P), ref.sketch_module(b, K, s, 0, P)
            errors.append(abs(sa @ sb / np.linalg.norm(sa) / np.linalg.norm(sb) - exact))
    errors = np.array(errors)
    assert errors.size > 100
    assert errors.max() < bound, f"max error {errors.max():.3f} above {bound:.3f}"
    assert np.sqrt((errors**2).mean()) < np.sqrt(2 / K)  # the rms is inside one standard deviation


def test_the_medium_layout_never_lines_up_with_its_rows():
    """SeamlessM4T-Medium's parameter shapes (built on the meta device: no memory, no weights):
    for every k a user may pick, the fold divides no dimension, and outlier columns on its
    1024- and 4096-wide rows stay within twice the bound."""
    from transformers import SeamlessM4TConfig, SeamlessM4TForSpeechToText

    from probes.models import MEDIUM_CONFIG

    with torch.device("meta"):
        model = SeamlessM4TForSpeechToText(SeamlessM4TConfig(**MEDIUM_CONFIG))
    dims = {d for p in model.parameters() for d in p.shape}
    assert {1024, 4096} <= dims
    for k in (256, 512, 1000, 1024, 2048, 4096):
        p = ref.fold_width(k, dims)
        assert k - 20 < p <= k and all(d % p for d in dims if d > 1)
    rng = np.random.default_rng(0)
    k, p = 1024, ref.fold_width(1024, dims)
    for width in (1024, 4096):
        a = _outlier_gradient(rng, 16, width)
        b = 0.5 * a + _outlier_gradient(rng, 16, width)
        exact = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
        err = [ref.sketch_module(a, k, s, 0, p) @ ref.sketch_module(b, k, s, 0, p)
               / np.linalg.norm(ref.sketch_module(a, k, s, 0, p))
               / np.linalg.norm(ref.sketch_module(b, k, s, 0, p)) - exact for s in range(100)]
        assert np.mean(np.square(err)) < 2 * (2 / k)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_capture_on_cuda_equals_the_capture_on_cpu(captured):
    """The same gradients in a CUDA copy of the model: the CUDA capture (the flat buffer) gives
    the same signs (bitwise), sketch and norms as the CPU's (the hooks), in chunks as at once."""
    sketcher, *_ = captured
    langs = ["spa", "deu"]
    model = load_model("tiny", langs, SpokenNumbers(langs, seed=0).texts(), seed=0).model
    gpu = gradient_sketcher(model.cuda(), K, seed=11)
    assert type(gpu) is FlatSketcher
    assert gpu.fold == sketcher.fold and torch.equal(gpu.signs.cpu(), sketcher.signs)
    grads = random_gradients(sketcher, 5)
    on_cpu = sketcher.capture(loss_with_gradients(sketcher.params, grads))
    for chunk in (gpu.chunk, 5 * sketcher.fold):
        gpu.chunk = chunk
        on_gpu = gpu.capture(loss_with_gradients(gpu.params, grads))
        for a, b in zip(on_cpu, on_gpu):
            torch.testing.assert_close(b.cpu(), a, rtol=1e-5, atol=1e-4)
