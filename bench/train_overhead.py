"""Training overhead: a plan-routed step against a fully shared one, and MGCM's extra peak
memory against a flat PCGrad-style projection, side by side in one run.

1. **Routing**: the training loop's own step (``probes.training.train_step``: ST + λ·ASR
   backward, clipping, AdamW; MGCM off) at the same batch on a fully shared plan and on a plan
   that splits every speech-encoder FFN into two groups, the language alternating every step (so copies are swapped in each time). Arms
   interleave, medians compared. Target: routed / shared ≤ 1.10.
2. **Memory**: peak tensor memory of one ST + ASR backward with (a) plain accumulation, (b)
   MGCM's module-by-module projection, (c) flat PCGrad, which keeps a full flattened copy of
   each task's gradient. The extra of (b) and (c) over (a) is compared. Target: MGCM's extra
   ≤ 5 % of the flat one's. On CUDA the figures are ``torch.cuda.max_memory_allocated``; on
   CPU every tensor storage is counted as it is allocated and freed (a dispatch mode), so the
   two are exact byte counts of live tensors, not process RSS.

   ``--arm`` runs one memory arm alone in the process, so that a parent can set the peak
   resident memory of three processes side by side (``bench/medium_cpu.py`` does).

    python bench/train_overhead.py --model tiny                   # CPU
    python bench/train_overhead.py --model medium-random          # on a GPU, bf16 autocast
    python bench/train_overhead.py --model medium-random --batch 1 --memory-only   # CPU, ~14 GB
    python bench/train_overhead.py --model DIR --batch 2 --budget 0.1 --optimizer sgd   # Medium, CPU

``--budget`` splits the Conformer FFNs from the top layer down (layer 11's first, the GDPS
paper's) up to that share of the parameters. On a 24 GiB machine Medium's two arms fit only with
``--optimizer sgd``: AdamW's two moment buffers per arm would add about 13 GB.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import weakref
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gradlens.corpus import SpokenNumbers  # noqa: E402
from gradlens.modules import module_of  # noqa: E402
from gradlens.plan import SharingPlan, new_plan  # noqa: E402
from probes.mgcm import MGCM  # noqa: E402
from gradlens.train.config import TrainConfig  # noqa: E402
from probes.training import train_step  # noqa: E402
from probes.routing import RoutedModel  # noqa: E402
from probes.loop import Batcher, loss_of, pick_device  # noqa: E402
from probes.models import load_model  # noqa: E402
from record import write_json  # noqa: E402

LANGS = ["spa", "deu"]
LAMBDA = 0.3


class LiveBytes(TorchDispatchMode):
    """Bytes of live tensor storages allocated under the mode, and their peak (CPU)."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self._sizes: dict[int, int] = {}

    def _free(self, key: int) -> None:
        self.live -= self._sizes.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key and key not in self._sizes:
                    self._sizes[key] = storage.nbytes()
                    self.live += storage.nbytes()
                    weakref.finalize(storage, self._free, key)
        self.peak = max(self.peak, self.live)
        return out


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def split_plan(model, budget: float | None = None) -> SharingPlan:
    """Every speech-encoder FFN split in two; or, with ``budget``, the Conformer FFNs from the
    top layer down (layer 11's on Medium, the module the GDPS paper made language-specific)
    until their parameters reach ``budget`` of the model's."""
    sizes: dict[str, int] = {}
    for n, x in model.named_parameters():
        if ".ffn1" in n or ".ffn2" in n:
            sizes[module_of(n)] = sizes.get(module_of(n), 0) + x.numel()
    ffns = sorted(sizes, key=lambda k: (-int(k.split(".layers.")[1].split(".")[0]), k))
    if budget is not None:
        total, chosen = sum(x.numel() for x in model.parameters()), []
        for key in ffns:
            if sum(sizes[k] for k in chosen) + sizes[key] > budget * total and chosen:
                break
            chosen.append(key)
        ffns = chosen
    return new_plan("bench", LANGS, splits={k: [["spa"], ["deu"]] for k in sorted(ffns)})


def flat_pcgrad(lm, inputs, st, asr, device) -> int:
    """PCGrad the model-level way: full flattened copies of both tasks' gradients."""
    params = [p for p in lm.model.parameters() if p.requires_grad]
    loss_of(lm, inputs, st, device).backward()
    g_st = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                      for p in params])
    for p in params:
        p.grad = None
    (LAMBDA * loss_of(lm, inputs, asr, device)).backward()
    g_aux = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                       for p in params])
    dot = torch.dot(g_aux, g_st)
    if dot < 0:
        g_aux -= dot / torch.dot(g_st, g_st) * g_st
    g_aux += g_st
    offset = 0
    for p in params:
        p.grad = g_aux[offset: offset + p.numel()].view_as(p).clone()
        offset += p.numel()
    return g_st.nbytes + g_aux.nbytes  # the copies it holds besides .grad


def plain_backward(lm, inputs, st, asr, device) -> int:
    """ST, then λ·ASR, accumulated as they come; holds nothing besides ``.grad``."""
    loss_of(lm, inputs, st, device).backward()
    (LAMBDA * loss_of(lm, inputs, asr, device)).backward()
    return 0


def mgcm_backward(lm, inputs, st, asr, device) -> int:
    """ST, then λ·ASR projected module by module (MGCM); the bytes it held at its most."""
    loss_of(lm, inputs, st, device).backward()
    with MGCM(lm.model) as m:
        (LAMBDA * loss_of(lm, inputs, asr, device)).backward()
    return m.peak_held_bytes


# each arm runs one ST + λ·ASR backward and returns the gradient bytes it holds besides .grad
MEMORY_ARMS = {"plain": plain_backward, "mgcm": mgcm_backward, "flat": flat_pcgrad}


def peak_extra(lm, inputs, st, asr, device) -> dict[str, int]:
    """Peak bytes of one ST + ASR backward per arm, minus the plain arm's; and the gradient
    bytes each projection holds besides ``.grad`` at its most."""
    held, peaks = {}, {}
    for name, arm in MEMORY_ARMS.items():
        lm.model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            sync(device)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            held[name] = arm(lm, inputs, st, asr, device)
            sync(device)
            peaks[name] = torch.cuda.max_memory_allocated(device) - base
        else:
            with LiveBytes() as live:
                held[name] = arm(lm, inputs, st, asr, device)
            peaks[name] = live.peak
    lm.model.zero_grad(set_to_none=True)
    return {"mgcm": peaks["mgcm"] - peaks["plain"], "flat": peaks["flat"] - peaks["plain"],
            "plain": peaks["plain"], "mgcm_held": held["mgcm"], "flat_held": held["flat"]}


def one_arm(lm, inputs, st, asr, device, name: str) -> dict:
    """Only arm ``name`` of ``peak_extra``, once, in this process: its peak resident memory is
    then the process's (``ru_maxrss``), which a parent compares across three processes."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    MEMORY_ARMS[name](lm, inputs, st, asr, device)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"arm": name, "peak_rss_before_bytes": before, "peak_rss_bytes": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny", help="tiny or medium-random (default: tiny)")
    ap.add_argument("--batch", type=int, default=8, help="utterances per step (default: 8)")
    ap.add_argument("--reps", type=int, default=20, help="timed steps per arm (default: 20)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    ap.add_argument("--budget", type=float, default=None, help="split the Conformer FFNs from "
                    "the top layer down up to this share of the parameters (default: every "
                    "speech-encoder FFN)")
    ap.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw",
                    help="the step's optimiser (default: adamw; sgd keeps no state, for Medium "
                    "on a 24 GiB machine)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--arm", choices=list(MEMORY_ARMS), default=None,
                    help="run only this memory arm, once, and report the process's peak "
                    "resident memory (a parent compares three such processes)")
    ap.add_argument("--memory-only", action="store_true",
                    help="skip the step timing (which needs a second model and two optimizers)")
    args = ap.parse_args()

    device = pick_device(args.device)
    corpus = SpokenNumbers(LANGS, seed=0)
    lm = load_model(args.model, LANGS, corpus.texts(), seed=0)
    lm.model.to(device).train()
    batcher = Batcher(lm, device)
    data = {}
    for lang in LANGS:
        ex = corpus.batch(lang, "train", args.batch, 0)
        data[lang] = (batcher.features(ex), batcher.labels(ex, "st"), batcher.labels(ex, "asr"))
    n_params = sum(p.numel() for p in lm.model.parameters())
    print(f"model {args.model} ({n_params:,} parameters) on {device}, batch {args.batch}")

    # 2. memory first, before the routed copy and optimizer states take room
    inputs, st, asr = data["deu"]
    if args.arm:
        figures = one_arm(lm, inputs, st, asr, device, args.arm)
        print(f"arm {args.arm}: peak resident {figures['peak_rss_bytes'] / 2**20:,.0f} MiB "
              f"(before the arm {figures['peak_rss_before_bytes'] / 2**20:,.0f} MiB)")
        write_json(args.json, {"model": args.model, "batch": args.batch, **figures})
        return
    extra = peak_extra(lm, inputs, st, asr, device)
    grad_bytes = sum(p.numel() * p.element_size() for p in lm.model.parameters())
    largest = max({module_of(n): 0 for n, _ in lm.model.named_parameters()}.keys(),
                  key=lambda m: sum(p.numel() for n, p in lm.model.named_parameters()
                                    if module_of(n) == m))
    kind = "CUDA allocator" if device.type == "cuda" else "live tensor bytes"
    print(f"\nmemory of one ST + ASR backward; one full gradient is {grad_bytes / 2**20:.1f} MiB")
    print(f"  peak ({kind}) over plain accumulation ({extra['plain'] / 2**20:.1f} MiB):")
    print(f"    MGCM extra                  {extra['mgcm'] / 2**20:10.2f} MiB")
    print(f"    flat PCGrad extra           {extra['flat'] / 2**20:10.2f} MiB")
    ratio = extra["mgcm"] / max(extra["flat"], 1)
    print(f"    MGCM / flat                 {ratio:10.2%}   (target <= 5%)")
    print("  gradient kept besides .grad, at its most (activations aside):")
    print(f"    MGCM, modules in flight     {extra['mgcm_held'] / 2**20:10.2f} MiB")
    print(f"    flat PCGrad, both copies    {extra['flat_held'] / 2**20:10.2f} MiB")
    print(f"    MGCM / flat                 {extra['mgcm_held'] / max(extra['flat_held'], 1):10.2%}"
          f"   (largest module: {largest})")
    figures = {"model": args.model, "device": str(device), "batch": args.batch,
               "parameters": n_params, "memory": extra, "largest_module": largest}

    if args.memory_only:
        write_json(args.json, figures)
        return
    # 1. routed vs shared step time: the training loop's own step, MGCM off to time routing alone
    cfg = TrainConfig(aux_weight=LAMBDA, mgcm=False)
    examples = {lang: corpus.batch(lang, "train", args.batch, 0) for lang in LANGS}
    routed_lm = copy.copy(lm)
    routed_lm.model = copy.deepcopy(lm.model)
    arms = {}
    for name, this_lm in (("shared", lm), ("routed", routed_lm)):
        plan = (split_plan(this_lm.model, args.budget) if name == "routed"
                else new_plan("bench", LANGS))
        routed = RoutedModel(this_lm.model, plan).to(device)
        params = [p for p in routed.parameters() if p.requires_grad]
        optim = (torch.optim.AdamW(params, lr=1e-4) if args.optimizer == "adamw"
                 else torch.optim.SGD(params, lr=1e-4))
        arms[name] = (this_lm, routed, optim, params)
    extra_params = sum(p.numel() for p in arms["routed"][1].parameters()) - n_params
    times = {name: [] for name in arms}
    for rep in range(args.reps + 2):
        lang = LANGS[rep % 2]
        for name, (this_lm, routed, optim, params) in arms.items():
            sync(device)
            t0 = time.perf_counter()
            train_step(this_lm, routed, batcher, optim, params, lang, examples[lang], cfg, device)
            sync(device)
            if rep >= 2:  # warm-up steps are not timed
                times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(v) for name, v in times.items()}
    print(f"\ntraining step (ST + λ·ASR, clip, {args.optimizer}), median of {args.reps}, "
          "languages alternating:")
    print(f"  shared                   {med['shared'] * 1e3:10.1f} ms")
    print(f"  routed                   {med['routed'] * 1e3:10.1f} ms   "
          f"({len(arms['routed'][1].routes)} modules split in 2, +{extra_params:,} parameters)")
    print(f"  routed / shared          {med['routed'] / med['shared']:10.3f}   (target <= 1.10)")
    write_json(args.json, {**figures, "optimizer": args.optimizer, "reps": args.reps,
                           "split": sorted(arms["routed"][1].routes.keys()),
                           "extra_parameters": extra_params, "shared_s": times["shared"],
                           "routed_s": times["routed"], "shared_median_s": med["shared"],
                           "routed_median_s": med["routed"],
                           "ratio": med["routed"] / med["shared"]})


if __name__ == "__main__":
    main()
