"""The probe loop: per step, every language and task, forward + backward, capture, append.

At probe step ``s`` every language gets one batch (the spoken-numbers corpus pairs them: the same
numbers in every language) and every task (``st``: speech to English; ``asr``: speech to the
source transcript) a forward and backward pass on it, at the same parameters. The sketches,
exact squared norms and losses go to ``grads.h5``. With ``train_steps_between > 0`` the model
trains on the mixed ST + ASR loss between probe steps, and a checkpoint after each segment
makes a resumed run identical to an uninterrupted one.

    python -m gradlens probe --languages spa deu fin --steps 10
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gradlens.corpus import SAMPLE_RATE, open_corpus
from gradlens.errors import ConfigError
from gradlens.probe_config import TASKS, ProbeConfig
from gradlens.store import RunWriter
from probes.capture import ModuleLayout, gradient_sketcher
from probes.models import LoadedModel, load_model

STATE_FILE = "probe_state.pt"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Batcher:
    """Turns corpus examples into model inputs; features are computed once per batch."""

    def __init__(self, lm: LoadedModel, device: torch.device):
        self.lm, self.device = lm, device

    def features(self, examples) -> dict[str, torch.Tensor]:
        fe = self.lm.feature_extractor(
            [ex.audio for ex in examples], sampling_rate=16_000, return_tensors="pt", padding=True)
        return {"input_features": fe["input_features"].to(self.device),
                "attention_mask": fe["attention_mask"].to(self.device)}

    def labels(self, examples, task: str) -> torch.Tensor:
        """``[B, n]``: ``__lang__ text </s>``, padded with -100; the model shifts in ``</s>``."""
        tok = self.lm.tokenizer
        if task == "st":
            texts, langs = [ex.translation for ex in examples], [ex.tgt_lang for ex in examples]
        elif task == "asr":
            texts, langs = [ex.transcript for ex in examples], [ex.src_lang for ex in examples]
        else:
            raise ConfigError(f"unknown task {task!r}; tasks are {TASKS}")
        ids = tok(texts, add_special_tokens=False)["input_ids"]
        rows = [[self.lm.lang_token_id(lang)] + row + [tok.eos_token_id] for lang, row in zip(langs, ids)]
        width = max(map(len, rows))
        out = torch.full((len(rows), width), -100, dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.tensor(row)
        return out.to(self.device)


def loss_of(lm: LoadedModel, inputs: dict, labels: torch.Tensor, device: torch.device) -> torch.Tensor:
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        return lm.model(**inputs, labels=labels).loss


def train_segment(lm, batcher, corpus, cfg: ProbeConfig, grads: ModuleLayout, optim, step: int,
                  device) -> None:
    """``cfg.train_steps_between`` AdamW steps on ST + ASR, deterministic for ``(seed, step)``."""
    lm.model.train()
    rng = np.random.default_rng([cfg.seed, step, 7])
    torch.manual_seed(cfg.seed * 1_000_003 + step)
    for j in range(cfg.train_steps_between):
        lang = cfg.languages[int(rng.integers(len(cfg.languages)))]
        examples = corpus.batch(lang, "train", cfg.batch_size, 1_000_000 + step * 1000 + j)
        inputs = batcher.features(examples)
        optim.zero_grad(set_to_none=True)
        loss = sum(loss_of(lm, inputs, batcher.labels(examples, t), device) for t in cfg.tasks)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(grads.params, 1.0)
        optim.step()
    lm.model.eval()


def probe(cfg: ProbeConfig, runs_dir: Path = Path("runs"),
          on_step: Callable[[int, int, float], None] | None = None) -> Path:
    """Run (or resume) the probe described by ``cfg``; return the run directory.

    ``on_step(done, total, seconds_per_step)`` is called after every probe step.
    """
    out = Path(cfg.out) if cfg.out else cfg.default_out(runs_dir)
    sys.audit("gradlens.probe", str(out))  # heard by the tests' tier guard (tests/conftest.py)
    unknown = [t for t in cfg.tasks if t not in TASKS]
    if unknown:
        raise ConfigError(f"unknown task(s) {unknown}; tasks are {list(TASKS)}")
    device = pick_device(cfg.device)
    corpus = open_corpus(cfg.corpus, cfg.languages, cfg.seed)
    lm = load_model(cfg.model, cfg.languages, corpus.texts(), seed=cfg.seed)
    lm.model.to(device).eval()
    grads = gradient_sketcher(lm.model, cfg.sketch_dim, cfg.seed)
    batcher = Batcher(lm, device)
    optim = torch.optim.AdamW(grads.params, lr=cfg.learning_rate) if cfg.train_steps_between else None

    writer = RunWriter(out, languages=cfg.languages, tasks=cfg.tasks, modules=grads.modules,
                       sketch_dim=cfg.sketch_dim, sketch_seed=cfg.seed, model=cfg.model,
                       model_config=lm.config, dtype=cfg.sketch_dtype,
                       probe_config={**cfg.stored(), "content_paired": bool(corpus.paired)},
                       sketch_fold=grads.fold)
    state_path = out / STATE_FILE
    try:
        start = 0
        if optim is not None and state_path.exists():
            state = torch.load(state_path, map_location=device, weights_only=True)
            lm.model.load_state_dict(state["model"])
            optim.load_state_dict(state["optim"])
            start = int(state["step"])
        done = writer.done
        L, T, M, k = len(cfg.languages), len(cfg.tasks), len(grads.modules), cfg.sketch_dim
        for step in range(start, cfg.steps):
            t0 = time.perf_counter()
            if not (step < done.size and done[step]):
                sketch = np.zeros((L, T, M, k), np.float32)
                sq = np.zeros((L, T, M), np.float32)
                losses = np.zeros((L, T), np.float32)
                seconds = np.zeros(L, np.float32)
                for li, lang in enumerate(cfg.languages):
                    examples = corpus.batch(lang, "train", cfg.batch_size, step)
                    seconds[li] = np.mean([len(ex.audio) for ex in examples]) / SAMPLE_RATE
                    inputs = batcher.features(examples)
                    for ti, task in enumerate(cfg.tasks):
                        loss = loss_of(lm, inputs, batcher.labels(examples, task), device)
                        s, q = grads.capture(loss)
                        sketch[li, ti], sq[li, ti] = s.cpu().numpy(), q.cpu().numpy()
                        losses[li, ti] = float(loss.detach())
                writer.append(step, sketch, sq, losses, seconds)
            if optim is not None:
                train_segment(lm, batcher, corpus, cfg, grads, optim, step, device)
                tmp = state_path.with_suffix(".tmp")
                torch.save({"step": step + 1, "model": lm.model.state_dict(),
                            "optim": optim.state_dict()}, tmp)
                os.replace(tmp, state_path)
            if on_step:
                on_step(step + 1, cfg.steps, time.perf_counter() - t0)
    finally:
        writer.close()
    return out
