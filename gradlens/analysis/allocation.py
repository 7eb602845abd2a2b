"""Capacity allocation under a parameter budget, and the proposed sharing plan.

A module is a candidate for language- or cluster-specific copies when its languages' mean
gradients diverge beyond what their noise gives, and not by chance among the many modules
tested: its Benjamini–Hochberg q-value is below ``alpha`` and the lower end of its excess
divergence's 95 % interval is above 0 (``gradlens.analysis.divergence``), and when the split
buys something on steps its groups were not chosen on: the lower end of its held-out gain's
interval is above 0 (a budget filler whose gain may be 0 is not taken), and when its groups do
not follow the utterance duration the run recorded (``analysis.nuisance``: permutation p < 0.05
over random groups of the same sizes keeps it shared; groups that follow the loss level are
named in the decision, not kept shared, since a real conflict raises the loss too). Splitting it into its
GradSim groups (``g`` groups: the fewest that buy 95 % of the largest held-out gain,
``gain.best_group_count``) costs ``(g - 1) * n_params`` extra parameters. Candidates are
taken greedily by priority per extra parameter while they fit in the budget (a fraction of the
model's parameters):

    priority = split_gain_ci_low * (1 - cca_excess) / extra parameters

``split_gain`` is what the split buys to first order, the between-group energy of the
languages' mean gradients (``gradlens.analysis.gain``), measured on steps the groups were not
chosen on (cross-fitted over even and odd steps), with the lower end of its 95 % interval: on
the steps that chose them it counts the noise the grouping picked up as gain. Unlike the
divergence, which is a cosine and the same for a layer norm as for a feed-forward block, it is
in the units of the loss: a module through which little of the gradient flows buys little when
split. ``cca_excess`` (0 when unknown) is how far its languages' update subspaces line up beyond
chance: splitting modules whose languages still move along shared directions buys less. The
conflict rate and cross-task ratio are recorded as evidence; MGCM's projection, not a split, is
the remedy for task conflict.

"No split" is an outcome: a run in which no module diverges beyond noise gives an empty plan,
and the plan says for every module why it was split or kept shared (``decisions``).

    python -m gradlens plan runs/demo --budget 0.1
"""

from __future__ import annotations

from dataclasses import dataclass

from gradlens.analysis.clustering import SUPPORTED
from gradlens.analysis.evidence import ModuleEvidence
from gradlens.analysis.nuisance import NUISANCES
from gradlens.errors import ConfigError
from gradlens.plan import ModuleSplit, SharingPlan

ALPHA = 0.05
RULE = ("a module is split when its divergence test survives the Benjamini–Hochberg correction "
        "across modules (q < {alpha}), its excess divergence's 95 % interval lies above 0, and "
        "the split's first-order gain (the between-group energy of the languages' mean "
        "gradients, measured on steps the groups were not chosen on) has its 95 % interval "
        "above 0, and its groups do not follow utterance duration (permutation p ≥ 0.05 "
        "over random groups of the same sizes; groups that follow the loss level are named, "
        "not kept shared); its number of groups is the fewest that buy 95 % of the largest held-out "
        "gain; candidates are taken by that gain's lower end × (1 − alignment beyond "
        "chance) per extra parameter while they fit in the budget")


def extra_cost(e: ModuleEvidence) -> int:
    """Extra parameters of splitting ``e``'s module into its groups."""
    return (len(e.groups) - 1) * e.n_params


def split_gain(e: ModuleEvidence) -> tuple[float, float] | None:
    """The first-order gain of splitting ``e``'s module into its groups, measured on steps the
    groups were not chosen on, and the lower end of its 95 % interval
    (``gain.held_out_gain``; ``None`` with too few steps to hold any out)."""
    return e.held_out_gain


def gain_text(e: ModuleEvidence) -> str:
    """The split's gain as a decision states it."""
    gain = split_gain(e)
    if gain is None:
        return "first-order gain not measured (too few steps to hold half out)"
    return f"first-order gain held out {gain[0]:.3g} (at least {gain[1]:.3g})"


def least_group_support(e: ModuleEvidence) -> float | None:
    """The bootstrap support of ``e``'s least supported group (``ModuleEvidence.group_support``;
    ``None`` for one group). The divergence test says the languages differ; this says whether
    the groups the split would use are the data's or one cut among several."""
    return min(e.group_support) if e.group_support else None


def support_text(e: ModuleEvidence) -> str:
    """The groups' support as a split's decision states it, naming the unsupported groups."""
    if not e.group_support:
        return ""
    weak = [(g, s) for g, s in zip(e.groups, e.group_support) if s < SUPPORTED]
    if not weak:
        return f", every group a clade in at least {min(e.group_support):.0%} of bootstrap trees"
    return ("; uncertain groups (the languages differ, these do not belong together surely): "
            + ", ".join("{" + " ".join(g) + f"}} a clade in {s:.0%} of bootstrap trees"
                        for g, s in weak))


def priority(e: ModuleEvidence) -> float:
    """The split's sure first-order gain, discounted by its alignment, per extra parameter (0
    when splitting costs nothing or nothing is sure)."""
    cost = extra_cost(e)
    if cost <= 0:
        return 0.0
    gain = split_gain(e)
    if gain is None:
        return 0.0
    return max(gain[1], 0.0) * (1.0 - (e.cca_excess or 0.0)) / cost


def q_of(e: ModuleEvidence) -> float:
    """The q-value among the modules analysed together (the p-value of a unit analysed alone)."""
    return e.divergence.p_value if e.q_value is None else e.q_value


def diverges(e: ModuleEvidence, alpha: float = ALPHA) -> bool:
    """Whether ``e``'s languages diverge beyond noise: q < ``alpha`` (p for a unit analysed
    alone) and the excess divergence's interval above 0. The one rule the plan, the summary
    and the pages apply."""
    return q_of(e) < alpha and e.divergence.excess_ci[0] > 0


def shared_reason(e: ModuleEvidence, alpha: float) -> str | None:
    """Why ``e`` cannot be a candidate, or ``None`` when it is one."""
    d = e.divergence
    lo, hi = d.excess_ci
    figures = f"excess divergence {d.excess:.3f} [{lo:.3f}, {hi:.3f}], q = {q_of(e):.3g}"
    if q_of(e) >= alpha:
        return f"kept shared: no divergence beyond noise ({figures})"
    if lo <= 0:
        return f"kept shared: the divergence's interval reaches 0 ({figures})"
    if extra_cost(e) <= 0:
        return f"kept shared: its languages form one group ({figures})"
    gain = split_gain(e)
    if gain is None:
        return (f"kept shared: too few steps to measure the split's gain on steps its groups "
                f"were not chosen on ({figures})")
    if gain[1] <= 0:
        return f"kept shared: the split's held-out gain may be 0 ({gain_text(e)}; {figures})"
    followed = [t for t in e.nuisance or [] if t.keeps_shared]
    if followed:
        return (f"kept shared: its groups follow a nuisance, not the languages: "
                f"{'; '.join(t.text() for t in followed)} ({figures})")
    return None


# the openings of shared_reason's and allocate's reasons, and what each says in a summary (of
# one module, of several)
KEPT_SHARED = {
    "kept shared: no divergence beyond noise": ("shows no divergence beyond noise",
                                                "show no divergence beyond noise"),
    "kept shared: the divergence's interval reaches 0": ("has a divergence whose interval "
                                                         "reaches 0", "have a divergence whose "
                                                         "interval reaches 0"),
    "kept shared: its languages form one group": ("forms one group", "form one group"),
    "kept shared: too few steps": ("had too few steps for a held-out gain",
                                   "had too few steps for a held-out gain"),
    "kept shared: the split's held-out gain may be 0": ("has a held-out gain that may be 0",
                                                        "have a held-out gain that may be 0"),
    "kept shared: its groups follow a nuisance": ("has groups that follow a nuisance",
                                                  "have groups that follow a nuisance"),
    "kept shared: over the budget": ("did not fit in the budget", "did not fit in the budget")}
NAMED = ("kept shared: its groups follow a nuisance", "kept shared: over the budget")


def nothing_split_text(decisions: dict[str, str]) -> str:
    """Why a plan splits nothing, from its decisions: how many modules were kept shared for
    each reason (those kept for a nuisance or the budget named), e.g. "no module is split: 38
    show no divergence beyond noise, 1 has groups that follow a nuisance
    (text_decoder.layer_norm)"."""
    counts: dict[str | None, list[str]] = {}
    for module, reason in decisions.items():
        counts.setdefault(next((k for k in KEPT_SHARED if reason.startswith(k)), None),
                          []).append(module)
    parts = []
    for key, modules in sorted(counts.items(), key=lambda kv: -len(kv[1])):
        one, many = KEPT_SHARED.get(key, ("was kept shared for another reason",
                                          "were kept shared for other reasons"))
        named = (f" ({', '.join(modules[:3])}{', …' if len(modules) > 3 else ''})"
                 if key in NAMED else "")
        parts.append(f"{len(modules)} {one if len(modules) == 1 else many}{named}")
    return "no module is split: " + ", ".join(parts) if parts else "no module was analysed"


def nuisance_text(e: ModuleEvidence) -> str:
    """What a split's groups were checked against, as its decision states it: the loss level
    they follow is named as such ('' when the run recorded no covariate)."""
    if not e.nuisance:
        return ""
    followed = [t for t in e.nuisance if t.follows()]
    said = "; groups checked against " + ", ".join(t.text() for t in e.nuisance)
    if followed:
        said += ("; they follow " + ", ".join(NUISANCES[t.name] for t in followed)
                 + ", so the split may be the loss level's (validate's loss-level groups test it)")
    return said


@dataclass(frozen=True)
class Allocation:
    """The modules given specific copies, in the order they were taken, what they cost, and a
    reason for every module's outcome."""

    modules: list[ModuleEvidence]
    extra_params: int
    budget_params: int
    total_params: int
    skipped_over_budget: list[str]
    decisions: dict[str, str]

    def outcome(self, e: ModuleEvidence, alpha: float = ALPHA) -> str:
        """``split`` (taken at this budget), ``candidate`` (diverges beyond noise, kept shared:
        its reason says why) or ``shared``: what the pages colour a module by."""
        if any(m.module == e.module for m in self.modules):
            return "split"
        return "candidate" if diverges(e, alpha) else "shared"

    @property
    def fraction(self) -> float:
        """Extra parameters as a fraction of the model."""
        return self.extra_params / self.total_params if self.total_params else 0.0


def allocate(evidence: list[ModuleEvidence], budget: float, total_params: int,
             alpha: float = ALPHA) -> Allocation:
    """Greedy allocation of split modules under ``budget`` (fraction of ``total_params``)."""
    if not 0 <= budget:
        raise ConfigError(f"budget must be a fraction >= 0 of the model's parameters, got {budget}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be between 0 and 1, got {alpha}")
    if total_params <= 0:
        raise ValueError(f"total_params must be positive, got {total_params}")
    budget_params = int(budget * total_params)
    decisions = {e.module: shared_reason(e, alpha) for e in evidence}
    candidates = sorted((e for e in evidence if decisions[e.module] is None), key=priority,
                        reverse=True)
    chosen, skipped, spent = [], [], 0
    for e in candidates:
        d = e.divergence
        figures = (f"excess divergence {d.excess:.3f} [{d.excess_ci[0]:.3f}, "
                   f"{d.excess_ci[1]:.3f}], q = {q_of(e):.3g}, {gain_text(e)}, "
                   f"costs {extra_cost(e):,}")
        if spent + extra_cost(e) <= budget_params:
            chosen.append(e)
            spent += extra_cost(e)
            decisions[e.module] = (f"split into {len(e.groups)} groups ({figures}"
                                   f"{support_text(e)}{nuisance_text(e)})")
        else:
            skipped.append(e.module)
            decisions[e.module] = (f"kept shared: over the budget ({figures}; "
                                   f"{budget_params - spent:,} left when its turn came)")
    return Allocation(chosen, spent, budget_params, int(total_params), skipped, decisions)


PLAN_FIGURES = ("excess_divergence", "excess_ci_low", "excess_ci_high", "p_value", "q_value",
                "cca_mean", "cca_chance", "conflict_rate", "cross_task_cosine",
                "cross_task_ci_low", "cross_task_ci_high",
                "grouping_score")  # of ModuleEvidence.summary


def evidence_fields(e: ModuleEvidence) -> dict:
    """The numbers a plan records for a module (``None`` where the figure is unavailable)."""
    def num(x):
        return None if x is None else round(float(x), 6)

    figures = e.summary()
    gain, gain_low = split_gain(e) or (None, None)
    return {**{k: num(figures[k]) for k in PLAN_FIGURES},
            **{k: num(v) for k, v in e.nuisance_figures().items()},
            "split_gain": num(gain), "split_gain_ci_low": num(gain_low),
            "group_support": num(least_group_support(e)) if diverges(e) else None,
            "priority_per_mparam": num(priority(e) * 1e6), "extra_params": extra_cost(e)}


def propose_plan(evidence: list[ModuleEvidence], budget: float, total_params: int, model: str,
                 languages: list[str], source_run: str | None = None,
                 alpha: float = ALPHA) -> SharingPlan:
    """A ``gradlens.sharing-plan/1`` plan: the allocated modules with their groups and evidence,
    and ``decisions``: why each module analysed was split or kept shared."""
    allocation = allocate(evidence, budget, total_params, alpha)
    plan = SharingPlan(model, tuple(languages), source_run=source_run,
                       modules={e.module: ModuleSplit(e.groups, evidence_fields(e), False)
                                for e in allocation.modules},
                       decisions=allocation.decisions)
    return plan.check([e.module for e in evidence], "proposed plan")
