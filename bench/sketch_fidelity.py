"""Sketch fidelity: what the probe's sketches say about languages against the exact gradients.

One batch per language through the real model (``FlatGradients``, the probe's own capture, bf16
autocast on CUDA), kept whole on the device. Per module and language pair, the cosine between
the two languages' gradients from the sketches against the exact one, and per module and
language ``|sketch|^2`` against the exact squared norm. Modules with at most ``k`` parameters
are stored exactly and left out of the figures (their error is 0).

    python bench/sketch_fidelity.py --model tiny --k 1024                   # CPU check
    python bench/sketch_fidelity.py --model medium-random --k 4096          # the GPU figures

Target on Medium at k = 4096: median cosine error at most 0.012. For a random sign projection
of width ``p`` the estimated cosine of two vectors at cosine ``c`` has a standard deviation of
about ``(1 - c^2) / sqrt(p)`` (0.016 at ``c = 0`` and ``p`` near 4096, less for languages that
agree); the bench prints the errors scaled by it, whose median is 0.67 for a Gaussian error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gradlens.corpus import SpokenNumbers  # noqa: E402
from probes.capture import gradient_sketcher  # noqa: E402
from probes.loop import Batcher, loss_of, pick_device  # noqa: E402
from probes.models import load_model  # noqa: E402
from record import write_json  # noqa: E402


def dot64(a: torch.Tensor, b: torch.Tensor, chunk: int = 1 << 22) -> float:
    """``a . b`` accumulated in float64, a chunk at a time (no float64 copy of a module)."""
    return float(sum(torch.dot(a[i: i + chunk].double(), b[i: i + chunk].double())
                     for i in range(0, a.numel(), chunk)))


def pair_cosines(gram: np.ndarray) -> np.ndarray:
    """``[..., L, L]`` Gram matrices -> the cosines of their ``L (L - 1) / 2`` pairs."""
    L = gram.shape[-1]
    i, j = np.triu_indices(L, 1)
    norms = np.sqrt(np.clip(np.diagonal(gram, axis1=-2, axis2=-1), 1e-300, None))
    return gram[..., i, j] / (norms[..., i] * norms[..., j])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny", help="tiny or medium-random (default: tiny)")
    ap.add_argument("--k", type=int, default=1024, help="sketch size (default: 1024)")
    ap.add_argument("--batch", type=int, default=8, help="utterances per language (default: 8)")
    ap.add_argument("--languages", nargs="+", default=["spa", "deu", "fra", "rus"],
                    help="languages, one batch each (default: spa deu fra rus)")
    ap.add_argument("--task", default="st", help="st or asr (default: st)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()

    device = pick_device(args.device)
    corpus = SpokenNumbers(args.languages, seed=0)
    lm = load_model(args.model, args.languages, corpus.texts(), seed=0)
    lm.model.to(device).eval()
    sketcher = gradient_sketcher(lm.model, args.k, seed=0)
    batcher = Batcher(lm, device)
    batches = []
    for lang in args.languages:
        examples = corpus.batch(lang, "train", args.batch, 0)
        batches.append((batcher.features(examples), batcher.labels(examples, args.task)))
    table = sketcher.modules
    folded = np.flatnonzero(~table.exact)
    L = len(args.languages)
    bar = tqdm(total=L + L * (L + 1) // 2, desc="backward passes", unit="pass")

    def loss(i):
        return loss_of(lm, *batches[i], device)

    sketches, sq_norms = [], []
    for i in range(L):
        sketch, sq = sketcher.capture(loss(i))
        sketches.append(sketch.double().cpu().numpy())
        sq_norms.append(sq.double().cpu().numpy())
        bar.update()
    # the exact Gram matrix of every folded module, holding one language's gradient at a time
    # beside the live one (Medium: 3.3 GB each), so that any number of languages fits: language
    # i's gradient is kept, and every j >= i is recomputed and multiplied with it
    exact_gram = np.zeros((len(table), L, L))
    for i in range(L):
        for p in sketcher.params:  # CUDA's capture leaves its buffer's views attached
            p.grad = None
        loss(i).backward()
        bar.update()
        kept = [sketcher.module_grad(m) for m in folded]
        for j in range(i, L):
            if j > i:
                for p in sketcher.params:
                    p.grad = None
                loss(j).backward()
                bar.update()
            for f, m in enumerate(folded):
                g = sketcher.module_grad(m)
                exact_gram[m, i, j] = exact_gram[m, j, i] = dot64(kept[f], g)
        del kept
        for p in sketcher.params:
            p.grad = None
    bar.close()
    S = np.stack(sketches, 1)                                        # [M, L, k]
    sketch_gram = S @ S.transpose(0, 2, 1)                           # [M, L, L]
    true_cos = pair_cosines(exact_gram[folded])                       # [F, P]
    err = np.abs(pair_cosines(sketch_gram[folded]) - true_cos)
    scaled = err / np.maximum(1 - true_cos ** 2, 1e-12) * np.sqrt(sketcher.fold)
    exact_sq = np.diagonal(exact_gram[folded], axis1=1, axis2=2)     # [F, L]
    norm_ratio = np.diagonal(sketch_gram[folded], axis1=1, axis2=2) / exact_sq
    captured_sq = np.stack(sq_norms, 1)[folded]                      # the probe's exact norms
    sq_rel = np.abs(captured_sq / exact_sq - 1)

    n_params = int(table.n_params.sum())
    print(f"device            {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'})")
    print(f"versions          torch {torch.__version__}, transformers "
          f"{__import__('transformers').__version__}, numpy {np.__version__}")
    print(f"model             {args.model}: {n_params:,} parameters, {len(table)} modules "
          f"({len(folded)} folded, {len(table) - len(folded)} exact), k={args.k}, fold p={sketcher.fold}")
    print(f"batch             {args.batch} utterances of {' '.join(args.languages)}, task "
          f"{args.task}, seed 0; {L * (L - 1) // 2} language pairs per module")
    print(f"cosine error      median {np.median(err):.4f}   p95 {np.percentile(err, 95):.4f}   "
          f"max {err.max():.4f}   (target on medium at k=4096: median <= 0.012)")
    print(f"exact cosines     median {np.median(true_cos):+.3f}, "
          f"from {true_cos.min():+.3f} to {true_cos.max():+.3f}")
    print(f"error / sd        median {np.median(scaled):.3f} (0.674 if the error is Gaussian with "
          f"sd (1 - c^2) / sqrt(p); {1 / np.sqrt(sketcher.fold):.4f} at c = 0)")
    print(f"|sketch|^2/exact  median {np.median(norm_ratio):.4f}   "
          f"p5 {np.percentile(norm_ratio, 5):.4f}   p95 {np.percentile(norm_ratio, 95):.4f}")
    print(f"captured sq norm  max relative error {sq_rel.max():.2e} against the exact gradient")
    within = float(np.mean(scaled <= 2))
    print(f"within 2 sd       {within:.1%} of module pairs (95.4% if Gaussian with that sd)")
    worst = np.argsort(-err.max(1))[:5]
    print("worst modules     " + "; ".join(
        f"{table.name[folded[w]]} {err[w].max():.4f} (exact cos "
        f"{true_cos[w][np.argmax(err[w])]:+.3f})" for w in worst))
    write_json(args.json, {
        "model": args.model, "device": str(device), "k": args.k, "fold": sketcher.fold,
        "languages": args.languages, "batch": args.batch, "task": args.task,
        "modules": len(table), "folded": len(folded), "pairs": int(err.size),
        "cosine_error_median": float(np.median(err)), "cosine_error_p95":
        float(np.percentile(err, 95)), "cosine_error_max": float(err.max()),
        "scaled_error_median": float(np.median(scaled)), "within_2sd": within,
        "norm_ratio_median": float(np.median(norm_ratio)),
        "captured_sq_norm_max_relative_error": float(sq_rel.max()),
        "per_module": {table.name[m]: {"max_error": float(err[f].max()),
                                        "median_error": float(np.median(err[f]))}
                       for f, m in enumerate(folded)}})


if __name__ == "__main__":
    main()
