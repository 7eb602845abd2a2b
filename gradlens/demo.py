"""The embedded default, defined once: the demo run and the positive control, what they probe,
the recipe that trains their model, and making them.

- The demo (``runs/demo``): the tiny SeamlessM4T trained on the spoken numbers of 14 languages
  of 6 families (``RECIPE``, cached by ``probes.pretrain``), then probed at that one state for
  ``DEMO_STEPS`` steps: a model that already does the task, as in real use.
- The positive control (``runs/control``, ``gradlens demo --control``): the same model probed
  on a corpus where 7 of the 14 languages (``CONTROL_GROUP``) have their English targets in
  reversed word order, a conflict planted by construction.

Making them runs a model, so it lives at the command line's edge (``gradlens.cli.ensure_demo``,
the one place ``gradlens`` reaches ``probes``); ``gradlens app`` starts that in the background
(``launch.start_demo``).

    python -m gradlens demo [--control]
"""

from __future__ import annotations

from pathlib import Path

from gradlens.corpus.numbers import CONTROL
from gradlens.paths import runs_dir
from gradlens.train.config import TrainConfig

# 14 languages of 6 families that all write cardinals, ordinals and years (a run draws only the
# kinds all its languages write)
DEMO_LANGUAGES = ["spa", "ita", "por", "fra", "deu", "nld", "dan", "pol", "rus", "ukr", "fin",
                  "hun", "tur", "arb"]
DEMO_NAME = "demo"
DEMO_STEPS = 24
# The positive control: the demo's 14 languages (so its model is the demo's, which knows the
# ordinary numbers), half of them reversed, the planted group cut across the six families (two
# of four Romance, one of three Germanic, two of three Slavic, one of two Uralic, the Turkic one),
# so neither typology nor the languages' own differences can stand in for the planted conflict,
# and a random split of a module into two groups of 7 almost never comes near it
# (docs/results/positive-control.md, 4c).
CONTROL_NAME = "control"
CONTROL_LANGUAGES = list(DEMO_LANGUAGES)
CONTROL_GROUP = ["spa", "fra", "nld", "pol", "ukr", "fin", "tur"]
CONTROL_CORPUS = CONTROL + ",".join(CONTROL_GROUP)
# the control's conflict is new to its model: at 24 steps the decoder modules group as planted but
# the divergence test lacks the power to call them (docs/results/positive-control.md), at 72 it does
CONTROL_STEPS = 72
# how the demo's model is trained (a fully shared plan on the ordinary spoken numbers)
RECIPE = TrainConfig(steps=400, batch_size=8, learning_rate=2e-3, warmup_steps=40,
                     eval_every=400, eval_size=16, checkpoint_every=50, log_every=10,
                     device="cpu")


def demo_config(model: str = "tiny", control: bool = False):
    """The demo probe: ``model`` is the trained tiny model's directory (``ensure_demo``); steps
    probe it at one parameter state, so they are exchangeable, as the divergence null assumes.
    ``control``: the positive control's languages and corpus, into ``runs/control``."""
    from gradlens.probe_config import ProbeConfig

    return ProbeConfig(model=model, steps=CONTROL_STEPS if control else DEMO_STEPS,
                       train_steps_between=0, sketch_dim=512,
                       languages=list(CONTROL_LANGUAGES if control else DEMO_LANGUAGES),
                       corpus=CONTROL_CORPUS if control else "spoken-numbers",
                       out=str(runs_dir() / (CONTROL_NAME if control else DEMO_NAME)))


def demo_done(control: bool = False) -> bool:
    """Whether the demo (or the control) run has all its steps."""
    from gradlens.store import Run, RunError

    try:
        with Run(runs_dir() / (CONTROL_NAME if control else DEMO_NAME)) as run:
            return len(run.done_steps) >= (CONTROL_STEPS if control else DEMO_STEPS)
    except RunError:
        return False
