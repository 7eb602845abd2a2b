"""Comparing systems over seeds: corpus scores, t intervals over seeds, and paired tests.

- ``corpus_scores``: sacrebleu's corpus BLEU and chrF (its defaults), per language and ``all``.
- ``seed_interval``: the mean over seeds with a 95 % Student-t interval (seeds are the unit of
  replication: each is a training run). One seed gives no interval.
- ``paired_test``: paired approximate randomisation (two-sided, sacrebleu's trials with a
  count that includes ties), on the two systems' outputs pooled over the seeds both have, each
  hypothesis paired with the other system's hypothesis of the same utterance from the same seed.
  Swapping a pair is what the null (the systems are exchangeable) allows, whatever the seed.
- ``holm``: Holm's step-down adjustment over a family of p-values (the baselines one arm is
  compared with), which controls the family-wise error rate.
- ``seed_test``: the verdict's test, at the level of the independent replicates: a paired t
  test over seeds of the per-seed differences (and the exact sign test beside it).
- ``hierarchical_interval``: a bootstrap interval of the difference that resamples seeds, then
  test utterances within each drawn seed, so it carries both sources of variation.

    python -c "from gradlens.significance import seed_interval; print(seed_interval([30.1, 31.4, 29.8]))"
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

METRICS = ("bleu", "chrf")
AR_TRIALS = 4000  # sacrebleu's default is 10,000; 4,000 resolves p to ±0.007 at p = 0.05
AR_SEED = 12345  # sacrebleu's default seed (SACREBLEU_SEED)


def _metric(name: str):
    import sacrebleu

    return {"bleu": sacrebleu.BLEU, "chrf": sacrebleu.CHRF}[name]()


def corpus_scores(hyps: list[str], refs: list[str]) -> dict[str, float]:
    """Corpus BLEU and chrF of ``hyps`` against one reference each."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    return {m: _metric(m).corpus_score(hyps, [refs]).score for m in METRICS}


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float | None  # None with one seed: no interval
    high: float | None
    n: int

    def as_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def seed_interval(values: list[float], level: float = 0.95) -> Interval:
    """Mean of ``values`` (one per seed) with its Student-t interval at ``level``."""
    from scipy.stats import t

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("no values to average")
    mean = float(x.mean())
    if x.size < 2:
        return Interval(mean, None, None, 1)
    half = float(t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return Interval(mean, mean - half, mean + half, int(x.size))


def _stats(metric, hyps: list[str], refs: list[str]) -> np.ndarray:
    return np.asarray(metric._extract_corpus_statistics(hyps, [refs]), dtype=np.float64)


def paired_test(a: list[str], b: list[str], refs: list[str], trials: int = AR_TRIALS,
                seed: int = AR_SEED) -> dict[str, dict[str, float]]:
    """Two-sided paired approximate randomisation of system ``b`` against baseline ``a``: per
    metric, both corpus scores, their difference and the p-value.

    The trials are sacrebleu's (``sacrebleu.significance._paired_ar_test``: the same seeded
    swaps of the same sufficient statistics), but a trial counts when its difference is at
    least the observed one, ``(#{|d*| >= |d|} + 1) / (trials + 1)``. sacrebleu counts only
    larger differences, which calls two identical systems different at p = 1/(trials+1) and
    is anti-conservative whenever many hypotheses agree, as they do between close arms.
    """
    if not (len(a) == len(b) == len(refs)):
        raise ValueError(f"paired systems need one hypothesis per reference: {len(a)}, {len(b)} "
                         f"and {len(refs)} references")
    rng = np.random.default_rng(seed)
    pos = rng.integers(2, size=(trials, len(refs)), dtype=bool)  # as sacrebleu draws them
    out = {}
    for m in METRICS:
        metric = _metric(m)
        sa, sb = _stats(metric, a, refs), _stats(metric, b, refs)
        score_a = metric._compute_score_from_stats(sa.sum(0)).score
        score_b = metric._compute_score_from_stats(sb.sum(0)).score
        observed = abs(score_b - score_a)
        shuf_a, shuf_b = pos @ sa + ~pos @ sb, ~pos @ sa + pos @ sb
        diffs = np.abs([metric._compute_score_from_stats(x).score
                        - metric._compute_score_from_stats(y).score
                        for x, y in zip(shuf_a, shuf_b)])
        hits = int(np.sum(diffs >= observed - 1e-9))
        out[m] = {"a": score_a, "b": score_b, "delta": score_b - score_a,
                  "p": (hits + 1) / (trials + 1)}
    return out


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values (family-wise error) of a named family."""
    names = sorted(p_values, key=lambda k: p_values[k])
    m, out, running = len(names), {}, 0.0
    for i, name in enumerate(names):
        running = max(running, min(1.0, (m - i) * p_values[name]))
        out[name] = running
    return out


@dataclass(frozen=True)
class SeedTest:
    """Paired tests over seeds of per-seed differences: Student's t (two-sided) and the exact
    sign test; ``None`` where fewer than two seeds give no test."""

    n: int
    mean: float
    t_p: float | None
    sign_p: float | None
    positive: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def seed_test(deltas: list[float]) -> SeedTest:
    """The paired tests of ``deltas`` (one per seed: reference minus baseline) against 0. Seeds
    are the unit of replication (each is a training run), so these are what a verdict rests on;
    seeds that tie (difference 0) count against neither side in the sign test."""
    from scipy.stats import binomtest, ttest_1samp

    x = np.asarray(deltas, dtype=float)
    if x.size < 2:
        return SeedTest(int(x.size), float(x.mean()) if x.size else 0.0, None, None,
                        int((x > 0).sum()))
    if np.allclose(x, x[0]):  # no spread: t is undefined; all ties say nothing, else certain
        t_p = 1.0 if abs(x[0]) < 1e-12 else 0.0
    else:
        t_p = float(ttest_1samp(x, 0.0).pvalue)
    signed = x[np.abs(x) > 1e-12]
    sign_p = float(binomtest(int((signed > 0).sum()), len(signed)).pvalue) if len(signed) else 1.0
    return SeedTest(int(x.size), float(x.mean()), t_p, sign_p, int((x > 0).sum()))


def utterance_interval(hyps: list[str], refs: list[str], metric: str, level: float = 0.95,
                       draws: int = 1000, seed: int = 0) -> Interval:
    """The corpus ``metric`` of one system with a bootstrap interval over its utterances (corpus
    scores recomputed from resampled sufficient statistics, as sacrebleu does): how far the score
    moves with which utterances were scored, not with the training seed."""
    m = _metric(metric)
    stats = _stats(m, hyps, refs)
    rng = np.random.default_rng(seed)
    out = np.array([m._compute_score_from_stats(
        np.bincount(rng.integers(len(stats), size=len(stats)), minlength=len(stats)) @ stats).score
        for _ in range(draws)])
    tail = (1 - level) / 2
    return Interval(m._compute_score_from_stats(stats.sum(0)).score,
                    float(np.quantile(out, tail)), float(np.quantile(out, 1 - tail)), len(hyps))


def hierarchical_interval(reference: list[list[str]], other: list[list[str]],
                          refs: list[list[str]], metric: str, level: float = 0.95,
                          draws: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Bootstrap interval of the mean over seeds of ``metric``(reference) − ``metric``(other):
    each draw resamples the seeds, then within each drawn seed its test utterances (the same
    utterances for both systems: they are paired). ``reference[s]``, ``other[s]`` and ``refs[s]``
    are seed ``s``'s hypotheses and references. Corpus scores are recomputed from summed
    sufficient statistics, as sacrebleu does."""
    m = _metric(metric)
    per_seed = [(_stats(m, a, r), _stats(m, b, r)) for a, b, r in zip(reference, other, refs)]
    rng = np.random.default_rng(seed)
    n_seeds = len(per_seed)
    out = np.empty(draws)
    for d in range(draws):
        deltas = []
        for s in rng.integers(n_seeds, size=n_seeds):
            sa, sb = per_seed[s]
            counts = np.bincount(rng.integers(len(sa), size=len(sa)), minlength=len(sa))
            deltas.append(m._compute_score_from_stats(counts @ sa).score
                          - m._compute_score_from_stats(counts @ sb).score)
        out[d] = np.mean(deltas)
    tail = (1 - level) / 2
    return float(np.quantile(out, tail)), float(np.quantile(out, 1 - tail))
