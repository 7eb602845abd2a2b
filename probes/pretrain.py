"""The embedded default's model that already does the task: tiny SeamlessM4T trained on spoken numbers.

Real use probes a pretrained SeamlessM4T, whose gradients carry what it learnt about each
language; a randomly initialised model's gradients mostly carry its initialisation. So the demo
first trains the tiny model on the spoken-numbers corpus of its languages with gradlens' own
training loop (a fully shared plan, ST + λ·ASR with MGCM), then probes it. The trained model
is kept as a ``save_pretrained`` directory in the user's cache (never in git), keyed on the
recipe, the languages and the seed, and loads like any local SeamlessM4T snapshot. A killed
training resumes from its last checkpoint.

    python -c "from probes.pretrain import pretrained_tiny; print(pretrained_tiny(['spa', 'deu']))"
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable

from gradlens.plan import new_plan
from gradlens.paths import cache_dir
from gradlens.paths import METRICS
from gradlens.demo import RECIPE
from gradlens.train.config import LOG, TrainConfig

RECIPE_VERSION = 1  # bump when the recipe changes: trained models are keyed on it
# fields added since that only change how evaluation runs, not the trained weights: left out of
# the key, so models already trained stay found
_EVAL_ONLY = ("eval_batch_size", "translate_eval", "dev_loss_size")


def model_dir(languages: list[str], seed: int = 0, cfg: TrainConfig = RECIPE) -> Path:
    """Where the trained model of ``languages`` lives in the cache."""
    fields = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _EVAL_ONLY}
    recipe = json.dumps([RECIPE_VERSION, sorted(languages), seed, fields], sort_keys=True)
    return cache_dir() / "models" / f"tiny-trained-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def pretrained_tiny(languages: list[str], seed: int = 0, cfg: TrainConfig = RECIPE,
                    on_step: Callable[[int, int, dict], None] | None = None) -> Path:
    """The tiny model trained on ``languages``' spoken numbers: its directory, trained first if
    the cache lacks it (``on_step(done, total, record)`` after every step)."""
    from gradlens.corpus import open_corpus
    from probes.training import CHECKPOINT, train
    from probes.routing import RoutedModel
    from probes.models import load_model

    final = model_dir(languages, seed, cfg)
    if (final / "config.json").exists():
        return final
    cfg = dataclasses.replace(cfg, seed=seed)
    plan = new_plan("tiny", languages)
    work = final.with_name(final.name + ".training")
    train(cfg, plan, work, on_step)
    lm = load_model("tiny", languages, open_corpus(cfg.corpus, languages, seed).texts(), seed=seed)
    RoutedModel(lm.model, plan).load(work / CHECKPOINT)
    tmp = final.with_name(f"{final.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    lm.model.save_pretrained(str(tmp))
    lm.tokenizer.save_pretrained(str(tmp))
    lm.feature_extractor.save_pretrained(str(tmp))
    (tmp / "training").mkdir()
    for name in (METRICS, LOG):  # how it learnt, kept with it
        if (work / name).exists():
            shutil.copy(work / name, tmp / "training" / name)
    try:
        tmp.rename(final)
    except OSError:  # another process finished first; theirs is the same recipe
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return final
