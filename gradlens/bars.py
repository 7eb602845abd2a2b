"""The command line's progress bars for long work: probe steps and the analysis of a run's
modules (tqdm on the terminal; the app draws its own).

    python -c "from gradlens.bars import step_bar; bar, on_step = step_bar(3, 'demo'); on_step(1, 3, 0.5)"
"""

from __future__ import annotations


def step_bar(total: int, desc: str):
    """A bar over ``total`` steps and the ``on_step(done, total, seconds_per_step)`` callback
    the probe loop and the pre-training call after each step."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="step")

    def on_step(done: int, _total: int, seconds: float) -> None:
        bar.n = done
        bar.set_postfix(steps_per_s=f"{1 / max(seconds, 1e-9):.2f}")
        bar.refresh()

    return bar, on_step


def evidence_with_bar(run, rank: int | None = None, groups: int | None = None):
    """Every module's evidence of ``run`` with a bar over the modules: the kept (cached)
    evidence at the app's settings, computed afresh for another ``rank`` or ``groups``."""
    from tqdm import tqdm

    from gradlens.evidence import cached_run_evidence, run_evidence

    with tqdm(total=len(run.modules), desc="analysing modules", unit="module") as bar:
        def on_module(done: int, _total: int, name: str) -> None:
            bar.set_postfix_str(name[-40:], refresh=False)
            bar.update(done - bar.n)

        if rank is None and groups is None:  # the settings the app uses: share them
            return cached_run_evidence(run, on_module)
        return run_evidence(run, rank, groups, on_module)
