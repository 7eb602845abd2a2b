"""What a probe run contains: ``ProbeConfig`` (no torch, so the CLI's flags and the app read it
cheaply; ``probes.loop`` runs it). Its default languages are the demo's (``gradlens.demo``).

    python -c "from gradlens.probe_config import ProbeConfig; print(ProbeConfig())"
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from gradlens.demo import DEMO_LANGUAGES
from gradlens.errors import ConfigError, check_number

TASKS = ("st", "asr")


@dataclass
class ProbeConfig:
    """Everything that decides what a probe run contains (all but ``out``/``device`` is stored)."""

    model: str = field(default="tiny", metadata={"help": "tiny, medium-random, a local path or a "
                                                         "local Hugging Face cache id"})
    corpus: str = field(default="spoken-numbers", metadata={
        "help": "spoken-numbers; cldr-phrases (rates matched) or cldr-phrases:natural-rates; the "
                "positive control spoken-numbers:reversed=L1,L2; or a manifest TSV (an item "
                "column makes its steps content-paired)"})
    languages: list[str] = field(default_factory=lambda: list(DEMO_LANGUAGES),
                                 metadata={"help": "source languages (ISO 639-3)"})
    tasks: list[str] = field(default_factory=lambda: list(TASKS), metadata={"help": "st and/or asr"})
    steps: int = field(default=20, metadata={"help": "probe steps"})
    batch_size: int = field(default=4, metadata={"help": "utterances per language and step"})
    sketch_dim: int = field(default=1024, metadata={"help": "sketch size k per module"})
    sketch_dtype: str = field(default="float16", metadata={"help": "float16 or float32 on disk"})
    seed: int = field(default=0, metadata={"help": "seed of model init, batches and signs"})
    train_steps_between: int = field(default=0, metadata={
        "help": "training steps on the mixed loss between probe steps; 0 probes one fixed model, "
                "as the divergence test assumes (more: see docs/results.md, section 1b)"})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW rate of those steps"})
    out: str = field(default="", metadata={"help": "run directory (default: runs/<model>-<hash>)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})

    def __post_init__(self):
        import math

        where = "probe config"
        for name in ("steps", "batch_size", "sketch_dim"):
            setattr(self, name, check_number(where, name, getattr(self, name), int,
                                             lambda v: v >= 1, "an integer ≥ 1"))
        for name in ("seed", "train_steps_between"):
            setattr(self, name, check_number(where, name, getattr(self, name), int,
                                             lambda v: v >= 0, "an integer ≥ 0"))
        self.learning_rate = check_number(where, "learning_rate", self.learning_rate, float,
                                          lambda v: math.isfinite(v) and v > 0,
                                          "a finite number > 0")
        if self.sketch_dtype not in ("float16", "float32"):
            raise ConfigError(f"{where}: sketch_dtype must be float16 or float32, got "
                              f"{self.sketch_dtype!r}")
        unknown = [t for t in self.tasks if t not in TASKS]
        if not self.tasks or unknown:
            raise ConfigError(f"{where}: tasks must be some of {list(TASKS)}, got {self.tasks!r}")
        if len(set(self.languages)) != len(self.languages) or len(self.languages) < 1:
            raise ConfigError(f"{where}: languages must be distinct ISO 639-3 codes, got "
                              f"{self.languages!r}")
        if not (self.device in ("auto", "cpu", "cuda") or str(self.device).startswith("cuda:")):
            raise ConfigError(f"{where}: device must be auto, cpu, cuda or cuda:N, got "
                              f"{self.device!r}")

    def stored(self) -> dict:
        """The fields recorded in ``probe_config`` and compared on resume."""
        d = dataclasses.asdict(self)
        d.pop("out"), d.pop("device")
        return d

    def default_out(self, runs_dir: Path) -> Path:
        d = {k: v for k, v in self.stored().items() if k != "steps"}
        digest = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]
        return runs_dir / f"{Path(self.model).name}-{digest}"
