"""A synthetic run at real scale, with planted structure, for the benchmarks.

91 modules named and sized like SeamlessM4T-Medium's (its 103 sub-modules less the last four
decoder layers), 32 built-in languages, 2 tasks, 100 steps, k = 1024: about 1.2 GB of float16
sketches, written with the real ``RunWriter``. Planted: every module has a shared direction, a
direction per language family (stronger in later encoder layers) and noise; the encoder's layer
11 ``ffn2`` gets a direction per language (the module Sun & Nakamura made language-specific);
the ASR gradient is half the ST one plus its own part, opposed in the decoder.

    python bench/synthetic.py --out runs/bench-synthetic
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradlens.languages import LANGUAGES  # noqa: E402
from gradlens.modules import kind_of  # noqa: E402
from gradlens.store import ModuleTable, Run, RunError, RunWriter  # noqa: E402

D, F = 1024, 4096  # Medium's model and feed-forward widths
PLANTED = "speech_encoder.encoder.layers.11.ffn2"  # the language-specific module


def medium_modules(count: int = 91) -> tuple[list[str], list[int]]:
    """Names and approximate sizes of Medium's sub-modules, in model order, first ``count``."""
    out = [("shared", 256_206 * D), ("speech_encoder.feature_projection", 160 * D + 2 * 160)]
    for i in range(12):
        p = f"speech_encoder.encoder.layers.{i}"
        out += [(f"{p}.ffn1", 2 * D * F + F + D + 2 * D), (f"{p}.self_attn", 4 * D * D + 2 * D),
                (f"{p}.conv_module", 2 * D * D + 31 * D + D * D + 6 * D),
                (f"{p}.ffn2", 2 * D * F + F + D + 2 * D), (f"{p}.final_layer_norm", 2 * D)]
    out += [("speech_encoder.encoder.layer_norm", 2 * D),
            ("speech_encoder.intermediate_ffn", 2 * D * F + F + D),
            ("speech_encoder.adapter.layers.0", 12 * D * D),
            ("speech_encoder.inner_layer_norm", 2 * D)]
    for i in range(12):
        p = f"text_decoder.layers.{i}"
        out += [(f"{p}.self_attn", 4 * D * D + 2 * D), (f"{p}.cross_attention", 4 * D * D + 2 * D),
                (f"{p}.ffn", 2 * D * F + F + D + 2 * D)]
    out.append(("text_decoder.layer_norm", 2 * D))
    out = out[:count]
    return [n for n, _ in out], [s for _, s in out]


def build(out: Path, modules: int = 91, languages: int = 32, steps: int = 100, k: int = 1024,
          seed: int = 0) -> Path:
    """Write the synthetic run to ``out`` (kept if already complete); return its path."""
    try:
        with Run(out) as run:
            if len(run.done_steps) >= steps and run.sketch_dim == k and len(run.modules) == modules:
                return out
    except RunError:
        pass
    names, sizes = medium_modules(modules)
    langs = list(LANGUAGES)[:languages]
    families = sorted({LANGUAGES[x].family for x in langs})
    fam = np.array([families.index(LANGUAGES[x].family) for x in langs])
    rng = np.random.default_rng(seed)
    M, L = len(names), len(langs)
    shared = rng.normal(size=(M, k)).astype(np.float32)
    by_family = rng.normal(size=(M, len(families), k)).astype(np.float32)
    by_language = rng.normal(size=(M, L, k)).astype(np.float32)
    depth = np.array([int(n.split(".")[3]) / 11 if n.startswith("speech_encoder.encoder.layers.")
                      else 0.3 for n in names], dtype=np.float32)
    own = np.array([n == PLANTED for n in names], dtype=np.float32)
    opposed = np.array([-1.0 if n.startswith("text_decoder") else 1.0 for n in names], np.float32)
    mean = (shared[:, None] + (0.5 + depth)[:, None, None] * by_family[:, fam]
            + 3.0 * own[:, None, None] * by_language)                     # [M, L, k]
    mean = mean.transpose(1, 0, 2)                                         # [L, M, k]
    table = ModuleTable(names, np.array(sizes, dtype=np.int64), [kind_of(n) for n in names],
                        np.zeros(M, dtype=bool))
    cfg = {"model": "synthetic-medium", "languages": langs, "tasks": ["st", "asr"],
           "steps": steps, "sketch_dim": k, "seed": seed}
    with RunWriter(out, languages=langs, tasks=["st", "asr"], modules=table, sketch_dim=k,
                   sketch_seed=seed, model="synthetic-medium", model_config={},
                   probe_config=cfg) as w:
        for step in range(w.first_undone(), steps):
            st = mean + 2.0 * rng.normal(size=mean.shape).astype(np.float32)
            asr = (0.5 * opposed[None, :, None] * st
                   + 1.5 * rng.normal(size=mean.shape).astype(np.float32))
            sketch = np.stack([st, asr], axis=1)                           # [L, T, M, k]
            sq = (sketch.astype(np.float64) ** 2).sum(-1).astype(np.float32)
            w.append(step, sketch.astype(np.float16), sq,
                     np.full((L, 2), 2.0, dtype=np.float32))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench-synthetic", help="run directory")
    parser.add_argument("--steps", type=int, default=100, help="steps (default: 100)")
    args = parser.parse_args()
    t = time.perf_counter()
    path = build(Path(args.out), steps=args.steps)
    print(f"{path} ready in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
