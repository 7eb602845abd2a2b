"""Probe overhead: plain forward+backward against the probed step (norms + sketches), side by side.

Both arms run in one process on the same model and batch, interleaved, so machine noise hits
both alike; the figure that matters is the ratio. Also prints the storage per
(step, language, task) of a model at a sketch size, from the module layout (meta device, no
weights allocated).

    python bench/probe_overhead.py --model tiny --k 1024                          # CPU
    python bench/probe_overhead.py --model medium-random --k 4096 --seconds 10    # GPU, bf16

``--seconds`` repeats each utterance's audio to that length (the spoken numbers are about a
second long). On CUDA it also prints each arm's peak memory (``torch.cuda.max_memory_allocated``
over one step, after the model and the probe's buffers are in place) and the probe's standing
buffers (the flat gradient buffer, which replaces the grads a plain step allocates, and the
int8 signs).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradlens.corpus import SpokenNumbers  # noqa: E402
from gradlens.modules import module_of  # noqa: E402
from probes.capture import FlatGradients  # noqa: E402
from probes.loop import Batcher, loss_of, pick_device  # noqa: E402
from probes.models import MEDIUM_CONFIG, TINY_CONFIG, load_model  # noqa: E402


def storage_per_unit(config: dict, k: int, bytes_per_value: int = 2) -> tuple[int, int]:
    """(modules, bytes) per (step, language, task): sketch [M, k] + sq_norm [M] + loss."""
    from transformers import SeamlessM4TConfig, SeamlessM4TForSpeechToText

    with torch.device("meta"):
        model = SeamlessM4TForSpeechToText(SeamlessM4TConfig(**config))
    modules = {module_of(n) for n, _ in model.named_parameters()}
    return len(modules), len(modules) * (k * bytes_per_value + 4) + 4


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny", help="tiny or medium-random (default: tiny)")
    ap.add_argument("--k", type=int, default=1024, help="sketch size (default: 1024)")
    ap.add_argument("--batch", type=int, default=8, help="utterances per step (default: 8)")
    ap.add_argument("--reps", type=int, default=20, help="timed repetitions per arm (default: 20)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    ap.add_argument("--seconds", type=float, default=0.0,
                    help="repeat each utterance's audio to this many seconds (default: as is)")
    args = ap.parse_args()

    device = pick_device(args.device)
    langs = ["spa", "deu"]
    corpus = SpokenNumbers(langs, seed=0)
    lm = load_model(args.model, langs, corpus.texts(), seed=0)
    lm.model.to(device).eval()
    flat = FlatGradients(lm.model, args.k, seed=0)
    views = [(p, p.grad) for p in flat.params]
    batcher = Batcher(lm, device)
    examples = corpus.batch("spa", "train", args.batch, 0)
    if args.seconds:
        n = int(args.seconds * 16_000)
        examples = [dataclasses.replace(ex, audio=np.resize(ex.audio, n)) for ex in examples]
    inputs, labels = batcher.features(examples), batcher.labels(examples, "st")

    def plain() -> float:
        for p, _ in views:
            p.grad = None  # what an ordinary training step starts from
        sync(device)
        t0 = time.perf_counter()
        loss_of(lm, inputs, labels, device).backward()
        sync(device)
        return time.perf_counter() - t0

    def probed() -> float:
        for p, view in views:
            p.grad = view
        sync(device)
        t0 = time.perf_counter()
        flat.zero()
        loss_of(lm, inputs, labels, device).backward()
        sketch, sq = flat.capture()
        sketch.cpu(), sq.cpu()  # only M x k numbers leave the device
        sync(device)
        return time.perf_counter() - t0

    for _ in range(3):  # warm-up
        plain(), probed()
    a, b = [], []
    for _ in range(args.reps):
        a.append(plain())
        b.append(probed())
    ma, mb = statistics.median(a), statistics.median(b)
    peaks = {}
    if device.type == "cuda":
        for name, arm in (("plain", plain), ("probed", probed)):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            arm()
            peaks[name] = torch.cuda.max_memory_allocated()
    n_params = sum(p.numel() for p in flat.params)
    print(f"device           {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'})")
    print(f"versions         torch {torch.__version__}, transformers {__import__('transformers').__version__}")
    print(f"model            {args.model}: {n_params:,} parameters, {len(flat.modules)} modules, k={args.k}")
    print(f"plain step       {ma * 1e3:8.1f} ms (median of {args.reps})")
    print(f"probed step      {mb * 1e3:8.1f} ms")
    print(f"overhead ratio   {mb / ma:8.3f}  ({(mb / ma - 1) * 100:+.1f} %)")
    seconds = max(len(ex.audio) for ex in examples) / 16_000
    print(f"batch            {args.batch} utterances of up to {seconds:.1f} s")
    if peaks:
        mib = 2 ** 20
        flat_bytes = flat.flat.numel() * flat.flat.element_size()
        sign_bytes = flat.signs.numel() * flat.signs.element_size()
        # the plain arm ran beside the probe's standing buffers, which a training step without
        # gradlens does not have: its peak as training runs it leaves them out
        plain_peak = peaks["plain"] - flat_bytes - sign_bytes
        print(f"peak memory      plain step {plain_peak / mib:,.0f} MiB (its own grads, no probe "
              f"buffers), probed step {peaks['probed'] / mib:,.0f} MiB: "
              f"{(peaks['probed'] - plain_peak) / mib:+,.0f} MiB "
              f"({peaks['probed'] / plain_peak - 1:+.2%})")
        print(f"probe buffers    flat gradient buffer {flat_bytes / mib:,.0f} MiB (in place of "
              f"the grads a plain step allocates), signs {sign_bytes / mib:,.0f} MiB; capture "
              f"temporaries bounded by probes.capture.CAPTURE_CHUNK")
    for name, cfg in (("tiny", TINY_CONFIG), ("medium-random", MEDIUM_CONFIG)):
        cfg = {**cfg, "vocab_size": cfg.get("vocab_size", 1216)}
        m, size = storage_per_unit(cfg, 4096)
        print(f"storage {name:13s} {m} modules at k=4096, float16: {size / 1e6:.3f} MB per (step, language, task)")


if __name__ == "__main__":
    main()
