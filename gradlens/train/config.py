"""What a training job trains: ``TrainConfig`` and the spec files the entry point reads.

A spec directory holds ``train.json`` (the config) and ``plan.json`` (the sharing plan); the
job backends write it into the job directory (and Ray ships it as the job's working directory).
Nothing here needs torch, so the app and the job registry import it cheaply.

    python -c "from gradlens.train.config import TrainConfig; print(TrainConfig())"
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from gradlens.errors import ConfigError, check_number
from gradlens.paths import LOG, PLAN_FILE as PLAN, TRAIN_CONFIG as CONFIG
from gradlens.plan import SharingPlan, load_plan, save_plan


@dataclass
class TrainConfig:
    """How to train a plan (the plan itself gives the model and the languages)."""

    steps: int = field(default=400, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=8, metadata={"help": "utterances per step (one language)"})
    learning_rate: float = field(default=2e-3, metadata={"help": "AdamW peak learning rate (suits the tiny model; ~1e-4 for a pretrained Medium)"})
    warmup_steps: int = field(default=40, metadata={"help": "linear warm-up, then linear decay"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    clip_norm: float = field(default=1.0, metadata={"help": "gradient norm clipping"})
    temperature: float = field(default=5.0, metadata={"help": "language sampling p ∝ n^(1/T)"})
    aux_weight: float = field(default=0.3, metadata={"help": "λ of the auxiliary ASR loss (0: ST only)"})
    mgcm: bool = field(default=True, metadata={"help": "project conflicting ASR gradients per module"})
    eval_every: int = field(default=100, metadata={"help": "evaluate every this many steps"})
    eval_at_start: bool = field(default=True, metadata={
        "help": "evaluate the starting model at step 0: the baseline every later score is read "
                "against (never chosen as a job's result)"})
    eval_size: int = field(default=16, metadata={"help": "utterances per language and split "
                                                          "(0: the whole split)"})
    eval_batch_size: int = field(default=32, metadata={"help": "utterances per generate call"})
    translate_eval: bool = field(default=True, metadata={
        "help": "translate the dev and test sets at each evaluation and score BLEU/chrF (off: "
                "a validation job, which reads only the dev loss)"})
    dev_loss_size: int = field(default=0, metadata={
        "help": "utterances per language of the dev split whose teacher-forced ST loss each "
                "evaluation records (0: none)"})
    max_new_tokens: int = field(default=24, metadata={"help": "longest generated translation"})
    checkpoint_every: int = field(default=100, metadata={"help": "checkpoint every this many steps"})
    log_every: int = field(default=10, metadata={"help": "write a log line every this many "
                                                         "steps (metrics.jsonl gets every step)"})
    corpus: str = field(default="spoken-numbers", metadata={"help": "spoken-numbers, the positive "
                                                                    "control spoken-numbers:reversed=L1,L2 or a training manifest TSV"})
    dev: str = field(default="", metadata={"help": "dev manifest (with a manifest corpus)"})
    test: str = field(default="", metadata={"help": "test manifest (with a manifest corpus)"})
    seed: int = field(default=0, metadata={"help": "seed of model init and batches"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})

    def __post_init__(self):
        import math

        def number(name: str, kind: type, ok, expected: str):
            setattr(self, name, check_number("training config", name, getattr(self, name), kind,
                                             ok, expected))

        for name in ("steps", "batch_size", "eval_every", "eval_batch_size", "checkpoint_every",
                     "log_every"):
            number(name, int, lambda v: v >= 1, "an integer ≥ 1")
        for name in ("warmup_steps", "eval_size", "max_new_tokens", "seed", "dev_loss_size"):
            number(name, int, lambda v: v >= 0, "an integer ≥ 0")
        for name in ("learning_rate", "temperature"):
            number(name, float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")
        for name in ("weight_decay", "clip_norm", "aux_weight"):
            number(name, float, lambda v: math.isfinite(v) and v >= 0, "a finite number ≥ 0")
        # one rule wherever a job is made (CLI, app, experiments): the warm-up fits in the run
        self.warmup_steps = min(self.warmup_steps, self.steps)
        for name in ("mgcm", "eval_at_start", "translate_eval"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"training config: {name} must be true or false, got "
                                  f"{getattr(self, name)!r}")
        for name in ("corpus", "dev", "test", "device"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"training config: {name} must be a string, got "
                                  f"{getattr(self, name)!r}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"training config: device must be auto, cpu, cuda or cuda:N, got "
                              f"{self.device!r}")

    @classmethod
    def from_dict(cls, d: dict, source: str = "training config") -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"{source}: unknown field(s) {unknown}; known: {sorted(names)}")
        return cls(**d)


# fields added after jobs and experiments were first recorded, with their defaults: a recorded
# config without one had it at its default, so it names, compares and resumes as before
LATER_FIELDS = {"translate_eval": True, "dev_loss_size": 0}


def comparable(config: dict) -> dict:
    """A config as jobs and experiments are named and compared by: ``LATER_FIELDS`` at their
    default left out, so a job or experiment recorded before they existed still resumes."""
    return {k: v for k, v in config.items()
            if not (k in LATER_FIELDS and v == LATER_FIELDS[k])}


# -- the entry point --------------------------------------------------------------------------
def write_spec(directory: Path, cfg: TrainConfig, plan: SharingPlan) -> None:
    """What the entry point reads: ``train.json`` and ``plan.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG).write_text(json.dumps(dataclasses.asdict(cfg), indent=2), encoding="utf-8")
    save_plan(plan, directory / PLAN)


def read_spec(directory: Path) -> tuple[TrainConfig, SharingPlan]:
    path = directory / CONFIG
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; a job directory holds {CONFIG} and {PLAN}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    return TrainConfig.from_dict(d, str(path)), load_plan(directory / PLAN)
