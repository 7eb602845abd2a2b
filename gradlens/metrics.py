"""A training job's ``metrics.jsonl``, read and shaped for curves and comparisons (no torch).

Records are ``{"kind": "train", "step", "loss", "loss_st", "loss_asr", "lr", ...}`` per logged
step and ``{"kind": "eval", "step", "split", "language", "bleu", "chrf", "n"}`` per language
(and ``"all"``) and split at each evaluation; with a dev loss asked for,
``{"kind": "dev_loss", "step", "language", "n", "loss_st"}`` per language at each evaluation.

    python -c "from gradlens.metrics import read_metrics, final_scores; print(final_scores(read_metrics('runs/<job>/metrics.jsonl')))"
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from gradlens.errors import ConfigError
from gradlens.paths import METRICS

LOSSES = ("loss", "loss_st", "loss_asr")
SCORES = ("bleu", "chrf")


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a ``metrics.jsonl`` (an unfinished last line is skipped)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


class Metrics:
    """``metrics.jsonl``: appended and flushed line by line; readers skip a torn last line."""

    def __init__(self, path: Path):
        self.path = path

    def keep_until(self, step: int) -> None:
        """Drop records after ``step`` (written after the checkpoint a resume starts from)."""
        kept = [r for r in read_metrics(self.path) if r["step"] <= step]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        tmp.replace(self.path)

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def last_step(records: list[dict]) -> int:
    """The last training step logged (0 before the first)."""
    return max((r["step"] for r in records if r["kind"] == "train"), default=0)


def pace(records: list[dict], total: int, last: int = 20) -> tuple[float, float] | None:
    """Steps per second over the ``last`` logged training steps, and the seconds left at that
    pace to ``total`` (evaluations not counted); None before a step is logged."""
    seconds = [r["seconds"] for r in records if r["kind"] == "train" and "seconds" in r][-last:]
    if not seconds or sum(seconds) <= 0:
        return None
    rate = len(seconds) / sum(seconds)
    return rate, max(0, total - last_step(records)) / rate


def loss_curves(records: list[dict]) -> tuple[list[int], dict[str, list[float]]]:
    """Steps and the total, ST and ASR losses at each logged step."""
    train = [r for r in records if r["kind"] == "train"]
    return [r["step"] for r in train], {k: [r[k] for r in train] for k in LOSSES}


def score_curves(records: list[dict], split: str, metric: str) -> tuple[list[int], dict[str, list[float]]]:
    """Evaluation steps and ``metric`` per language (and ``all``) on ``split``."""
    if metric not in SCORES:
        raise ConfigError(f"metric must be one of {SCORES}, got {metric!r}")
    evals = [r for r in records if r["kind"] == "eval" and r["split"] == split]
    steps = sorted({r["step"] for r in evals})
    languages = list(dict.fromkeys(r["language"] for r in evals))
    at = {(r["step"], r["language"]): r[metric] for r in evals}
    return steps, {lang: [at.get((s, lang)) for s in steps] for lang in languages}


def final_step(records: list[dict], split: str = "test") -> int | None:
    """The step of the last evaluation of ``split`` after training began (None before one:
    step 0, the starting model, is never a job's result)."""
    return max((r["step"] for r in records if r["kind"] == "eval" and r["split"] == split
                and r["step"] > 0), default=None)


def final_scores(records: list[dict], split: str = "test") -> dict[str, dict[str, float]]:
    """BLEU, chrF and the utterance count ``n`` per language at ``final_step`` (empty before
    one)."""
    last = final_step(records, split)
    return {r["language"]: {m: r[m] for m in (*SCORES, "n") if m in r} for r in records
            if r["kind"] == "eval" and r["split"] == split and r["step"] == last}


def start_scores(records: list[dict], split: str = "test") -> dict[str, dict[str, float]]:
    """The starting model's BLEU, chrF and ``n`` per language (the step-0 evaluation; empty if
    the job did not make one)."""
    return {r["language"]: {m: r[m] for m in (*SCORES, "n") if m in r} for r in records
            if r["kind"] == "eval" and r["split"] == split and r["step"] == 0}


def final_dev_losses(records: list[dict]) -> tuple[int, dict[str, float]] | None:
    """The step of the last dev-loss evaluation after training began and each language's ST
    loss there; None before one."""
    last = max((r["step"] for r in records if r["kind"] == "dev_loss" and r["step"] > 0),
               default=None)
    if last is None:
        return None
    return last, {r["language"]: r["loss_st"] for r in records
                  if r["kind"] == "dev_loss" and r["step"] == last}


FAR_BELOW = 5.0  # chrF points over all languages: "the training made the model worse"


def fell_below_start(records: list[dict], split: str = "test") -> tuple[float, float] | None:
    """(start, latest) chrF over all languages when the latest evaluation is more than
    ``FAR_BELOW`` points under the starting model's; else None."""
    start = start_scores(records, split).get("all")
    latest = final_scores(records, split).get("all")
    if start and latest and latest["chrf"] < start["chrf"] - FAR_BELOW:
        return start["chrf"], latest["chrf"]
    return None


def compare(finals: dict[str, dict[str, dict[str, float]]], metric: str) -> pd.DataFrame:
    """Languages × jobs table of ``metric`` from each job's ``final_scores`` (``all`` last)."""
    languages = list(dict.fromkeys(lang for f in finals.values() for lang in f if lang != "all"))
    rows = [*languages, "all"] if any("all" in f for f in finals.values()) else languages
    return pd.DataFrame({job: [f.get(lang, {}).get(metric) for lang in rows]
                         for job, f in finals.items()}, index=pd.Index(rows, name="language"))
