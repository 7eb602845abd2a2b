"""Capacity allocation under a parameter budget, and the proposed sharing plan.

A module is a candidate for language- or cluster-specific copies when its cross/self
divergence ratio exceeds ``min_ratio`` and its permutation test gives ``p < alpha``: the
languages' mean gradients differ by more than each language's own step-to-step noise, and not
by chance (pure noise gives ratios scattered around 1). Splitting it into its GradSim groups (``g`` groups) costs
``(g - 1) * n_params`` extra parameters. Candidates are taken greedily by priority per extra
parameter while they fit in the budget (a fraction of the model's parameters):

    priority = cross_self_ratio * (1 - cca_mean)        (cca_mean taken as 0 when unknown)

The alignment factor discounts modules whose languages still move in shared directions (high
mean canonical correlation) even though their mean gradients differ: splitting those buys less.
The conflict rate and cross-task ratio are recorded as evidence; MGCM's projection, not a split,
is the remedy for task conflict.

    python -m gradlens plan runs/demo --budget 0.1
"""

from __future__ import annotations

from dataclasses import dataclass

from gradlens.analysis.evidence import ModuleEvidence
from gradlens.plan import new_plan, validate


def extra_cost(e: ModuleEvidence) -> int:
    """Extra parameters of splitting ``e``'s module into its groups."""
    return (len(e.groups) - 1) * e.n_params


def priority(e: ModuleEvidence) -> float:
    """The module's case for splitting per extra parameter (0 when splitting costs nothing)."""
    cost = extra_cost(e)
    if cost <= 0:
        return 0.0
    return e.ratio * (1.0 - (e.cca_mean or 0.0)) / cost


@dataclass(frozen=True)
class Allocation:
    """The modules given specific copies, in the order they were taken, and what they cost."""

    modules: list[ModuleEvidence]
    extra_params: int
    budget_params: int
    total_params: int
    skipped_over_budget: list[str]

    @property
    def fraction(self) -> float:
        """Extra parameters as a fraction of the model."""
        return self.extra_params / self.total_params if self.total_params else 0.0


def allocate(evidence: list[ModuleEvidence], budget: float, total_params: int,
             min_ratio: float = 1.0, alpha: float = 0.05) -> Allocation:
    """Greedy allocation of split modules under ``budget`` (fraction of ``total_params``)."""
    if not 0 <= budget:
        raise ValueError(f"budget must be a fraction >= 0 of the model's parameters, got {budget}")
    if total_params <= 0:
        raise ValueError(f"total_params must be positive, got {total_params}")
    budget_params = int(budget * total_params)
    candidates = [e for e in evidence if e.ratio > min_ratio and e.divergence.p_value < alpha
                  and extra_cost(e) > 0]
    candidates.sort(key=priority, reverse=True)
    chosen, skipped, spent = [], [], 0
    for e in candidates:
        if spent + extra_cost(e) <= budget_params:
            chosen.append(e)
            spent += extra_cost(e)
        else:
            skipped.append(e.module)
    return Allocation(chosen, spent, budget_params, int(total_params), skipped)


PLAN_FIGURES = ("cross_self_ratio", "ratio_p_value", "cca_mean", "conflict_rate",
                "cross_task_ratio", "grouping_score")  # of ModuleEvidence.summary


def evidence_fields(e: ModuleEvidence) -> dict:
    """The numbers a plan records for a module (``None`` where the figure is unavailable)."""
    def num(x):
        return None if x is None else round(float(x), 6)

    figures = e.summary()
    return {**{k: num(figures[k]) for k in PLAN_FIGURES},
            "priority_per_mparam": num(priority(e) * 1e6), "extra_params": extra_cost(e)}


def propose_plan(evidence: list[ModuleEvidence], budget: float, total_params: int, model: str,
                 languages: list[str], source_run: str | None = None,
                 min_ratio: float = 1.0, alpha: float = 0.05) -> dict:
    """A ``gradlens.sharing-plan/1`` plan: the allocated modules with their groups and evidence."""
    allocation = allocate(evidence, budget, total_params, min_ratio, alpha)
    plan = new_plan(model, languages, source_run)
    for e in allocation.modules:
        plan["modules"][e.module] = {"groups": [list(g) for g in e.groups],
                                     "evidence": evidence_fields(e), "edited": False}
    return validate(plan, [e.module for e in evidence], "proposed plan")
