"""Probe overhead: plain forward+backward against the probed step (norms + sketches), side by side.

Both arms run in one process on the same model and batch, interleaved, so machine noise hits
both alike; the figure that matters is the ratio. Also prints the storage per
(step, language, task) of a model at a sketch size, from the module layout (meta device, no
weights allocated).

    python bench/probe_overhead.py --model tiny --k 1024                          # CPU
    python bench/probe_overhead.py --model medium-random --k 4096 --seconds 10    # GPU, bf16

``--seconds`` repeats each utterance's audio to that length (the spoken numbers are about a
second long). It also prints each arm's peak memory over one step, with the model and the
probe's signs in place: on CUDA ``torch.cuda.max_memory_allocated``, on the CPU the process's
peak resident set. The plain arm keeps every gradient, as training does; the probed arm folds
each and drops it.

    python bench/probe_overhead.py --model medium-random --k 4096 --batch 2 --seconds 1.4 --reps 4 --device cpu
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gradlens.corpus import SpokenNumbers  # noqa: E402
from gradlens.modules import module_of  # noqa: E402
from probes.capture import gradient_sketcher  # noqa: E402
from probes.loop import Batcher, loss_of, pick_device  # noqa: E402
from probes.models import MEDIUM_CONFIG, TINY_CONFIG, load_model  # noqa: E402
from record import write_json  # noqa: E402


def storage_per_unit(config: dict, k: int, bytes_per_value: int = 2) -> tuple[int, int]:
    """(modules, bytes) per (step, language, task): sketch [M, k] + sq_norm [M] + loss."""
    from transformers import SeamlessM4TConfig, SeamlessM4TForSpeechToText

    with torch.device("meta"):
        model = SeamlessM4TForSpeechToText(SeamlessM4TConfig(**config))
    modules = {module_of(n) for n, _ in model.named_parameters()}
    return len(modules), len(modules) * (k * bytes_per_value + 4) + 4


def peak_memory(arm, params, device) -> int:
    """Peak bytes while ``arm()`` runs: CUDA's allocator peak, or on the CPU the process's peak
    resident set (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``)."""
    for p in params:
        p.grad = None  # the other arm's gradients are not this arm's memory
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        arm()
        return torch.cuda.max_memory_allocated()
    Path("/proc/self/clear_refs").write_text("5")
    arm()
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny", help="tiny or medium-random (default: tiny)")
    ap.add_argument("--k", type=int, default=1024, help="sketch size (default: 1024)")
    ap.add_argument("--batch", type=int, default=8, help="utterances per step (default: 8)")
    ap.add_argument("--reps", type=int, default=20, help="timed repetitions per arm (default: 20)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per arm first (default: 3)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--seconds", type=float, default=0.0,
                    help="repeat each utterance's audio to this many seconds (default: as is)")
    args = ap.parse_args()

    device = pick_device(args.device)
    langs = ["spa", "deu"]
    corpus = SpokenNumbers(langs, seed=0)
    lm = load_model(args.model, langs, corpus.texts(), seed=0)
    lm.model.to(device).eval()
    sketcher = gradient_sketcher(lm.model, args.k, seed=0)
    batcher = Batcher(lm, device)
    examples = corpus.batch("spa", "train", args.batch, 0)
    if args.seconds:
        n = int(args.seconds * 16_000)
        examples = [dataclasses.replace(ex, audio=np.resize(ex.audio, n)) for ex in examples]
    inputs, labels = batcher.features(examples), batcher.labels(examples, "st")

    def plain() -> float:
        for p in sketcher.params:  # a plain step starts with no grads (CUDA's capture leaves
            p.grad = None          # its buffer's views attached; dropping them frees nothing)
        sync(device)
        t0 = time.perf_counter()
        loss_of(lm, inputs, labels, device).backward()
        for p in sketcher.params:  # zero_grad(set_to_none=True), once a step in training; the
            p.grad = None          # probed arm frees its own gradients at the end of capture
        sync(device)
        return time.perf_counter() - t0

    folding = []  # the CPU capture's own time inside each probed step

    def probed() -> float:
        sync(device)
        t0 = time.perf_counter()
        sketch, sq = sketcher.capture(loss_of(lm, inputs, labels, device))
        sketch.cpu(), sq.cpu()  # only M x k numbers leave the device
        sync(device)
        folding.append(getattr(sketcher, "fold_seconds", float("nan")))
        return time.perf_counter() - t0

    for _ in range(args.warmup):
        plain(), probed()
    a, b = [], []
    for _ in range(args.reps):
        a.append(plain())
        b.append(probed())
    ma, mb = statistics.median(a), statistics.median(b)
    fold = statistics.median(folding[-args.reps:]) if folding else float("nan")
    peaks = {name: peak_memory(arm, sketcher.params, device) for name, arm in (("plain", plain), ("probed", probed))}
    n_params = sum(p.numel() for p in sketcher.params)
    print(f"device           {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'})")
    print(f"versions         torch {torch.__version__}, transformers {__import__('transformers').__version__}")
    print(f"model            {args.model}: {n_params:,} parameters, {len(sketcher.modules)} modules, k={args.k}")
    print(f"plain step       {ma * 1e3:8.1f} ms (median of {args.reps})")
    print(f"probed step      {mb * 1e3:8.1f} ms")
    print(f"overhead ratio   {mb / ma:8.3f}  ({(mb / ma - 1) * 100:+.1f} %)")
    if fold == fold:
        print(f"capture's own    {fold * 1e3:8.1f} ms inside the probed step (median): "
              f"{fold / ma:.1%} of the plain step, the part of the ratio that is the capture's")
    seconds = max(len(ex.audio) for ex in examples) / 16_000
    print(f"batch            {args.batch} utterances of up to {seconds:.1f} s")
    mib = 2 ** 20
    buffers = sketcher.buffers()
    standing = sum(buffers.values())
    # the plain arm ran beside the probe's standing buffers, which a training step without
    # gradlens does not have: its peak as training runs it leaves them out
    plain_peak = peaks["plain"] - standing
    kind = "allocated (torch.cuda.max_memory_allocated)" if device.type == "cuda" else "resident (VmHWM)"
    print(f"peak memory      {kind}: plain step {plain_peak / mib:,.0f} MiB (weights, its own "
          f"grads, activations), probed step {peaks['probed'] / mib:,.0f} MiB: "
          f"{peaks['probed'] / plain_peak:.3f}x")
    print(f"probe buffers    {type(sketcher).__name__}: " + ", ".join(
        f"{name} {size / mib:,.0f} MiB" for name, size in buffers.items()))
    storage = {}
    for name, cfg in (("tiny", TINY_CONFIG), ("medium-random", MEDIUM_CONFIG)):
        cfg = {**cfg, "vocab_size": cfg.get("vocab_size", 1216)}
        m, storage[name] = storage_per_unit(cfg, 4096)
        print(f"storage {name:13s} {m} modules at k=4096, float16: {storage[name] / 1e6:.3f} MB per (step, language, task)")
    write_json(args.json, {
        "model": args.model, "device": str(device), "k": args.k, "batch": args.batch,
        "audio_seconds": seconds, "reps": args.reps, "parameters": n_params,
        "modules": len(sketcher.modules), "plain_s": a, "probed_s": b, "plain_median_s": ma,
        "probed_median_s": mb, "ratio": mb / ma,
        "fold_median_s": fold, "fold_share_of_plain": fold / ma,
        "ratios_per_rep": [y / x for x, y in zip(a, b)],
        "peak_kind": kind, "plain_peak_bytes": plain_peak, "probed_peak_bytes": peaks["probed"],
        "peak_ratio": peaks["probed"] / plain_peak, "buffers": buffers,
        "capture": type(sketcher).__name__,
        "storage_bytes_per_unit_k4096_float16": storage})


if __name__ == "__main__":
    main()
