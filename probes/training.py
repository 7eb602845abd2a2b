"""Training a plan-routed SeamlessM4T on ST + λ·ASR, with MGCM, BLEU/chrF evaluation and resume.

Each step trains on one language (language-homogeneous batches, the language drawn with
probability ``∝ n_l^(1/T)``, deterministically from the seed and the step), so the batch runs
through its group's copies of every split module. The loss is ``ST + λ·ASR``; with ``mgcm`` the
auxiliary gradient is projected module by module during its backward pass
(``probes.mgcm``). AdamW, linear warm-up then linear decay, gradient clipping, bf16
autocast on CUDA. At step 0 (the starting model, the baseline), every ``eval_every`` steps and at
the end, ``generate`` translates the dev and test sets and sacrebleu scores BLEU and chrF per
language (``translate_eval``), and with ``dev_loss_size`` each language's teacher-forced ST loss
on fixed dev utterances is recorded (what ``gradlens validate`` reads).

A job directory holds ``metrics.jsonl`` (one JSON object per logged step or evaluation),
``log.txt``, ``hyps/<split>-<step>.jsonl`` (what was scored) and ``checkpoint/`` (the routed
model's safetensors, the plan, the optimizer). Run the same command after a kill and training
goes on from the last checkpoint, on the same batches it would have seen.

With ``torchrun`` (``WORLD_SIZE > 1``) every rank trains its own language batch and the
gradients are averaged; rank 0 evaluates, logs and checkpoints.

    python -m probes.training runs/<job>        # the entry point the job backends run
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gradlens.errors import ConfigError
from gradlens.metrics import METRICS, Metrics
from gradlens.plan import SharingPlan
from gradlens.train.config import LOG, TrainConfig, read_spec
from probes.mgcm import MGCM
from probes.routing import RoutedModel

CHECKPOINT = "checkpoint"
TRAINER_STATE = "trainer.pt"
SPLITS = ("dev", "test")


# -- pure parts -------------------------------------------------------------------------------
def sampling_probabilities(sizes: dict[str, int], temperature: float) -> dict[str, float]:
    """``p_l ∝ n_l^(1/T)``: T = 1 follows the data, large T tends to uniform."""
    weights = {lang: float(n) ** (1.0 / temperature) for lang, n in sizes.items()}
    total = sum(weights.values())
    return {lang: w / total for lang, w in weights.items()}


def language_at(step: int, probs: dict[str, float], seed: int, rank: int = 0) -> str:
    """The language of training step ``step`` on ``rank``: a deterministic draw."""
    langs = list(probs)
    rng = np.random.default_rng([seed, step, rank, 11])
    return langs[int(rng.choice(len(langs), p=np.array([probs[x] for x in langs])))]


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over ``warmup`` steps, then linear decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def scores(hyps: list[str], refs: list[str]) -> dict[str, float]:
    """Corpus BLEU and chrF (sacrebleu defaults)."""
    import sacrebleu

    return {"bleu": sacrebleu.corpus_bleu(hyps, [refs]).score,
            "chrf": sacrebleu.corpus_chrf(hyps, [refs]).score}


# -- files ------------------------------------------------------------------------------------
class Log:
    """Lines to stdout and ``log.txt`` with the time."""

    def __init__(self, path: Path | None):
        self.path = path

    def __call__(self, message: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        print(line, flush=True)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")


# -- distributed ------------------------------------------------------------------------------
@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_world() -> World:
    """The torchrun world from its environment (a world of one without it)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    import torch.distributed as dist

    if not dist.is_initialized():
        # rank 0 evaluates while the others wait at a barrier: allow long evaluations
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo",
                                timeout=datetime.timedelta(hours=2))
    return World(dist.get_rank(), size, int(os.environ.get("LOCAL_RANK", "0")))


def average_gradients(params: list[torch.nn.Parameter], world: World) -> None:
    """Mean of every gradient over the ranks; a parameter none of them touched stays untouched."""
    if world.size == 1:
        return
    import torch.distributed as dist

    has = torch.tensor([p.grad is not None for p in params], dtype=torch.int32,
                       device=params[0].device)
    dist.all_reduce(has, op=dist.ReduceOp.MAX)
    for p, h in zip(params, has.tolist()):
        if h and p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p, h in zip(params, has.tolist()) if h]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world.size
    offset = 0
    for g in grads:
        g.copy_(flat[offset: offset + g.numel()].view_as(g))
        offset += g.numel()


# -- the loop ---------------------------------------------------------------------------------
def corpora(cfg: TrainConfig, languages: list[str]):
    """The training corpus and the corpus of each evaluation split (None: not evaluated)."""
    from gradlens.corpus import Manifest, is_embedded, open_corpus

    corpus = open_corpus(cfg.corpus, languages, cfg.seed)
    if is_embedded(cfg.corpus):
        return corpus, {split: corpus for split in SPLITS}
    return corpus, {split: Manifest(getattr(cfg, split), seed=cfg.seed) if getattr(cfg, split)
                    else None for split in SPLITS}


def _checkpoint_dir(out: Path) -> Path | None:
    """The last complete checkpoint (a kill between the two renames leaves the old one)."""
    for name in (CHECKPOINT, CHECKPOINT + ".old"):
        if (out / name / TRAINER_STATE).exists():
            return out / name
    return None


def _claim(out: Path):
    """An exclusive ``flock`` on ``out/train.lock``: two trainers never write one job directory
    (their metrics and checkpoints would interleave). Raises when another holds it."""
    from gradlens.store import try_lock

    lock = try_lock(out / "train.lock")
    if lock is None:
        raise RuntimeError(f"{out}: another trainer is writing this job directory")
    return lock


def save_checkpoint(out: Path, routed: RoutedModel, optim, sched, step: int) -> None:
    new, cur, old = out / (CHECKPOINT + ".new"), out / CHECKPOINT, out / (CHECKPOINT + ".old")
    shutil.rmtree(new, ignore_errors=True)
    routed.save(new)
    torch.save({"step": step, "optim": optim.state_dict(), "sched": sched.state_dict()},
               new / TRAINER_STATE)
    shutil.rmtree(old, ignore_errors=True)
    if cur.exists():
        cur.rename(old)
    new.rename(cur)
    shutil.rmtree(old, ignore_errors=True)


def translate(lm, batcher, examples, cfg: TrainConfig, device: torch.device) -> list[str]:
    """Greedy translations of ``examples`` into their target languages, in their order."""
    out = [""] * len(examples)
    for tgt in dict.fromkeys(ex.tgt_lang for ex in examples):  # one target per generate call
        where = [i for i, ex in enumerate(examples) if ex.tgt_lang == tgt]
        for lo in range(0, len(where), cfg.eval_batch_size):
            chunk = where[lo: lo + cfg.eval_batch_size]
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16,
                                                 enabled=device.type == "cuda"):
                ids = lm.model.generate(**batcher.features([examples[i] for i in chunk]),
                                        tgt_lang=tgt, max_new_tokens=cfg.max_new_tokens,
                                        num_beams=1, do_sample=False)
            for i, hyp in zip(chunk, lm.tokenizer.batch_decode(ids, skip_special_tokens=True)):
                out[i] = hyp.strip()
    return out


def evaluate(routed: RoutedModel, lm, batcher, sets: dict, cfg: TrainConfig, step: int,
             out: Path, device: torch.device, log: Callable[[str], None] | None = None) -> list[dict]:
    """Translate each split's evaluation set, write the hypotheses, return the score records;
    ``log`` hears after each language how far the evaluation is."""
    routed.eval()
    records = []
    for split, corpus in sets.items():
        if corpus is None:
            continue
        rows = []
        for i, lang in enumerate(routed.languages):
            if log:
                log(f"evaluating at step {step}: {split}, {lang} ({i + 1} of "
                    f"{len(routed.languages)} languages)")
            examples = corpus.evaluation_set(lang, split, cfg.eval_size)
            routed.set_language(lang)
            hyps = translate(lm, batcher, examples, cfg, device)
            rows += [{"language": lang, "id": ex.id, "ref": ex.translation, "hyp": h}
                     for ex, h in zip(examples, hyps)]
        (out / "hyps").mkdir(exist_ok=True)
        with open(out / "hyps" / f"{split}-{step:06d}.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        for lang in [*routed.languages, "all"]:
            mine = [r for r in rows if lang in ("all", r["language"])]
            records.append({"kind": "eval", "step": step, "split": split, "language": lang,
                            "n": len(mine), **scores([r["hyp"] for r in mine],
                                                     [r["ref"] for r in mine])})
    routed.train()
    return records


def dev_losses(routed: RoutedModel, lm, batcher, examples: dict[str, list], cfg: TrainConfig,
               step: int, device: torch.device) -> list[dict]:
    """The teacher-forced ST loss of each language on its fixed dev utterances ``examples``
    (the mean over utterances of each batch's token-mean loss): what a validation job reads,
    far less noisy per utterance than a translation's score."""
    from probes.loop import loss_of

    routed.eval()
    records = []
    with torch.no_grad():
        for lang, mine in examples.items():
            routed.set_language(lang)
            total = 0.0
            for lo in range(0, len(mine), cfg.eval_batch_size):
                chunk = mine[lo: lo + cfg.eval_batch_size]
                loss = loss_of(lm, batcher.features(chunk), batcher.labels(chunk, "st"), device)
                total += float(loss) * len(chunk)
            records.append({"kind": "dev_loss", "step": step, "language": lang, "n": len(mine),
                            "loss_st": total / len(mine)})
    routed.train()
    return records


def train_step(lm, routed: RoutedModel, batcher, optim, params: list, lang: str, examples,
               cfg: TrainConfig, device: torch.device, world: World = World()) -> dict:
    """One optimizer step on one language's batch: ST, then λ·ASR (through MGCM when asked),
    gradients averaged over the ranks, clipped, AdamW. Returns the losses, the gradient norm
    and the number of modules MGCM projected."""
    from probes.loop import loss_of

    routed.set_language(lang)
    inputs = batcher.features(examples)
    optim.zero_grad(set_to_none=True)
    loss_st = loss_of(lm, inputs, batcher.labels(examples, "st"), device)
    loss_st.backward()
    conflicts, loss_asr = 0, torch.zeros(())
    if cfg.aux_weight > 0:
        loss_asr = loss_of(lm, inputs, batcher.labels(examples, "asr"), device)
        if cfg.mgcm:
            with MGCM(lm.model) as mgcm:
                (cfg.aux_weight * loss_asr).backward()
            conflicts = len(mgcm.conflicts)
        else:
            (cfg.aux_weight * loss_asr).backward()
    average_gradients(params, world)
    norm = torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], cfg.clip_norm)
    optim.step()
    return {"loss": loss_st.item() + cfg.aux_weight * loss_asr.item(), "loss_st": loss_st.item(),
            "loss_asr": loss_asr.item(), "grad_norm": float(norm), "conflicts": conflicts}


def train(cfg: TrainConfig, plan: SharingPlan, out: str | Path,
          on_step: Callable[[int, int, dict], None] | None = None) -> list[dict]:
    """Train (or resume) ``plan`` into ``out``; return the last evaluation's records."""
    from probes.loop import Batcher, pick_device
    from probes.models import load_model

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    world = init_world()
    lock = _claim(out) if world.main else None  # held while this trainer writes ``out``
    log = Log(out / LOG if world.main else None)
    device = pick_device(cfg.device)
    if device.type == "cuda" and world.size > 1:
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    languages = list(plan.languages)
    corpus, eval_sets = corpora(cfg, languages)
    lm = load_model(plan.model, languages, corpus.texts(), seed=cfg.seed)
    routed = RoutedModel(lm.model, plan).to(device)
    routed.train()
    batcher = Batcher(lm, device)
    params = [p for p in routed.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: lr_factor(s, cfg.warmup_steps, cfg.steps))
    metrics = Metrics(out / METRICS)

    start, last_eval = 0, []
    ckpt = _checkpoint_dir(out)
    if ckpt is not None:
        routed.load(ckpt)
        state = torch.load(ckpt / TRAINER_STATE, map_location=device, weights_only=True)
        optim.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        start = int(state["step"])
        if world.main:
            metrics.keep_until(start)
            log(f"resuming from {ckpt.name} at step {start} of {cfg.steps}")
    elif world.main:
        metrics.keep_until(-1)
        n_extra = sum((len(c) - 1) * sum(p.numel() for p in c[0].parameters())
                      for c in routed.routes.values())
        log(f"training {plan.model} on {' '.join(languages)}: {len(plan.modules)} split "
            f"module(s), {n_extra:,} extra parameters, {cfg.steps} steps on {device}"
            + (f" × {world.size} ranks" if world.size > 1 else ""))

    if world.main and start == 0:
        missing = [split for split, c in eval_sets.items() if c is None]
        if missing:
            log(f"no {' or '.join(missing)} manifest given: {', '.join(missing)} not evaluated")
    if cfg.dev_loss_size and eval_sets["dev"] is None:
        raise ConfigError("dev_loss_size: the dev loss needs a dev split; give a dev manifest")
    dev_set = ({lang: eval_sets["dev"].evaluation_set(lang, "dev", cfg.dev_loss_size)
                for lang in languages} if cfg.dev_loss_size and world.main else {})

    def evaluation(step: int) -> list[dict]:
        """Every record an evaluation at ``step`` makes (translations and the dev loss, as
        configured), each written to the metrics as it is made."""
        made = evaluate(routed, lm, batcher, eval_sets, cfg, step, out, device, log) \
            if cfg.translate_eval else []
        if dev_set:
            log(f"dev loss at step {step}: {len(dev_set)} languages × "
                f"{cfg.dev_loss_size} utterances")
            made += dev_losses(routed, lm, batcher, dev_set, cfg, step, device)
        for r in made:
            metrics.write(r)
        return made

    if world.main and start == 0 and cfg.eval_at_start:
        for r in evaluation(0):
            if r["kind"] == "eval" and r["language"] == "all":
                log(f"eval step 0 (the starting model): {r['split']} BLEU {r['bleu']:.1f} "
                    f"chrF {r['chrf']:.1f} on {r['n']} utterances")
    probs = sampling_probabilities({x: corpus.sizes()[x] for x in languages}, cfg.temperature)
    def batch(step: int):
        lang = language_at(step, probs, cfg.seed, world.rank)
        return lang, corpus.batch(lang, "train", cfg.batch_size, step * world.size + world.rank)

    with ThreadPoolExecutor(1) as pool:  # speaks the next batch while this one trains
        upcoming = pool.submit(batch, start) if start < cfg.steps else None
        for step in range(start, cfg.steps):
            t0 = time.perf_counter()
            lang, examples = upcoming.result()
            upcoming = pool.submit(batch, step + 1) if step + 1 < cfg.steps else None
            torch.manual_seed(cfg.seed * 1_000_003 + step)
            stats = train_step(lm, routed, batcher, optim, params, lang, examples, cfg, device,
                               world)
            sched.step()
            done = step + 1
            record = {"kind": "train", "step": done, "language": lang, **stats,
                      "lr": sched.get_last_lr()[0], "seconds": time.perf_counter() - t0}
            if world.main:  # every step: the CLI's bar and the pages follow it
                metrics.write(record)
            if world.main and (done % cfg.log_every == 0 or done == 1 or done == cfg.steps):
                log(f"step {done}/{cfg.steps} {lang} loss {record['loss']:.3f} "
                    f"(st {record['loss_st']:.3f}, asr {record['loss_asr']:.3f}) "
                    f"lr {record['lr']:.2e} conflicts {record['conflicts']}")
            if world.main and (done % cfg.eval_every == 0 or done == cfg.steps):
                last_eval = evaluation(done)
                said = [f"{r['split']} BLEU {r['bleu']:.1f} chrF {r['chrf']:.1f}"
                        for r in last_eval if r["kind"] == "eval" and r["language"] == "all"]
                losses = [r["loss_st"] for r in last_eval if r["kind"] == "dev_loss"]
                if losses:
                    said.append(f"dev ST loss {np.mean(losses):.4f} (mean over languages)")
                log(f"eval step {done}: " + ", ".join(said))
            if world.main and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
                save_checkpoint(out, routed, optim, sched, done)
            if world.size > 1:
                torch.distributed.barrier()
            if on_step:
                on_step(done, cfg.steps, record)
    if world.main:
        if start >= cfg.steps:
            log(f"already finished: step {start} of {cfg.steps}")
        else:
            log("finished")
        lock.close()
    return last_eval


# -- the entry point ------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m probes.training",
                                     description="train a job: SPEC holds train.json and plan.json")
    parser.add_argument("spec", help="directory with train.json and plan.json")
    parser.add_argument("--out", default=None, help="job directory to write (default: SPEC)")
    args = parser.parse_args(argv)
    spec = Path(args.spec)
    out = Path(args.out) if args.out else spec
    try:
        cfg, plan = read_spec(spec)
        train(cfg, plan, out)
    except BaseException as exc:
        if not isinstance(exc, SystemExit):
            out.mkdir(parents=True, exist_ok=True)
            with open(out / LOG, "a", encoding="utf-8") as fh:
                fh.write(traceback.format_exc())
        raise
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
