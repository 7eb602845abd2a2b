"""What a probe run contains: ``ProbeConfig`` and the demo's languages (no torch, so the CLI's
flags and the app read it cheaply; ``probes.loop`` runs it).

    python -c "from gradlens.probe_config import ProbeConfig; print(ProbeConfig())"
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

TASKS = ("st", "asr")
# 14 languages of 6 families that all write cardinals, ordinals and years (a run draws only the
# kinds all its languages write)
DEMO_LANGUAGES = ["spa", "ita", "por", "fra", "deu", "nld", "dan", "pol", "rus", "ukr", "fin",
                  "hun", "tur", "arb"]


@dataclass
class ProbeConfig:
    """Everything that decides what a probe run contains (all but ``out``/``device`` is stored)."""

    model: str = field(default="tiny", metadata={"help": "tiny, medium-random, a local path or a "
                                                         "local Hugging Face cache id"})
    corpus: str = field(default="spoken-numbers", metadata={"help": "spoken-numbers, the positive control spoken-numbers:reversed=L1,L2 or a manifest TSV"})
    languages: list[str] = field(default_factory=lambda: list(DEMO_LANGUAGES),
                                 metadata={"help": "source languages (ISO 639-3)"})
    tasks: list[str] = field(default_factory=lambda: list(TASKS), metadata={"help": "st and/or asr"})
    steps: int = field(default=20, metadata={"help": "probe steps"})
    batch_size: int = field(default=4, metadata={"help": "utterances per language and step"})
    sketch_dim: int = field(default=1024, metadata={"help": "sketch size k per module"})
    sketch_dtype: str = field(default="float16", metadata={"help": "float16 or float32 on disk"})
    seed: int = field(default=0, metadata={"help": "seed of model init, batches and signs"})
    train_steps_between: int = field(default=0, metadata={"help": "training steps on the mixed "
                                                                  "loss between probe steps"})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW rate of those steps"})
    out: str = field(default="", metadata={"help": "run directory (default: runs/<model>-<hash>)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})

    def stored(self) -> dict:
        """The fields recorded in ``probe_config`` and compared on resume."""
        d = dataclasses.asdict(self)
        d.pop("out"), d.pop("device")
        return d

    def default_out(self, runs_dir: Path) -> Path:
        d = {k: v for k, v in self.stored().items() if k != "steps"}
        digest = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]
        return runs_dir / f"{Path(self.model).name}-{digest}"
