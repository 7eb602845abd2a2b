"""How well plans proposed from separate probes of one model agree: the modules they split and
the groups they draw.

Pairwise, over the plans: the Jaccard index of their sets of split modules (two plans that
split nothing agree fully: 1.0), and for each module both split, the adjusted Rand index of
their groups over the languages (1: the same partition, about 0: as alike as chance).

    python -m gradlens plan runs/a --against runs/b runs/c
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from sklearn.metrics import adjusted_rand_score


@dataclass(frozen=True)
class PairAgreement:
    first: int
    second: int
    jaccard: float          # of the two sets of split modules
    both: list[str]         # modules split in both
    ari: dict[str, float]   # per module split in both: the adjusted Rand index of the groups


@dataclass(frozen=True)
class PlanAgreement:
    splits: list[list[str]]  # each plan's split modules
    pairs: list[PairAgreement]

    @property
    def mean_jaccard(self) -> float:
        return float(np.mean([p.jaccard for p in self.pairs]))

    @property
    def mean_ari(self) -> float | None:
        """Mean ARI over every module split in both plans of a pair; None when no module was."""
        values = [v for p in self.pairs for v in p.ari.values()]
        return float(np.mean(values)) if values else None

    def summary(self) -> str:
        return agreement_text(self.as_dict())

    def as_dict(self) -> dict:
        return {"splits": self.splits, "mean_jaccard": self.mean_jaccard,
                "mean_ari": self.mean_ari,
                "pairs": [{"first": p.first, "second": p.second, "jaccard": p.jaccard,
                           "both": p.both, "ari": p.ari} for p in self.pairs]}


def agreement_text(agreement: dict) -> str:
    """One sentence of a ``PlanAgreement.as_dict()`` (or the file the CLI saves of it)."""
    splits, ari = agreement["splits"], agreement["mean_ari"]
    return (f"{len(splits)} plans split " + ", ".join(str(len(s)) for s in splits)
            + f" module(s); split modules agree by Jaccard {agreement['mean_jaccard']:.2f} "
            f"(1: the same modules; mean over {len(splits) * (len(splits) - 1) // 2} pair(s))"
            + ("; no module is split in two plans, so their groups cannot be compared"
               if ari is None else f"; groups of modules split in both, adjusted Rand index "
               f"{ari:.2f} (1: the same groups, 0: as alike as chance)"))


def _labels(groups: list[list[str]], languages: list[str]) -> list[int]:
    where = {lang: g for g, group in enumerate(groups) for lang in group}
    return [where[lang] for lang in languages]


def plan_agreement(plans) -> PlanAgreement:
    """Agreement of two or more ``SharingPlan`` of the same languages."""
    if len(plans) < 2:
        raise ValueError(f"agreement needs at least two plans, got {len(plans)}")
    languages = sorted(plans[0].languages)
    for i, plan in enumerate(plans[1:], 1):
        if sorted(plan.languages) != languages:
            raise ValueError(f"plan {i + 1} covers {' '.join(sorted(plan.languages))}, plan 1 "
                             f"{' '.join(languages)}: plans of other languages do not compare")
    splits = [sorted(k for k, e in p.modules.items() if len(e.groups) > 1) for p in plans]
    pairs = []
    for a, b in combinations(range(len(plans)), 2):
        sa, sb = set(splits[a]), set(splits[b])
        union = sa | sb
        both = sorted(sa & sb)
        ari = {m: float(adjusted_rand_score(_labels(plans[a].modules[m].groups, languages),
                                            _labels(plans[b].modules[m].groups, languages)))
               for m in both}
        pairs.append(PairAgreement(a, b, len(sa & sb) / len(union) if union else 1.0, both, ari))
    return PlanAgreement(splits, pairs)
