"""The arms of a plan experiment: the proposed plan and the baselines a reviewer asks for.

Every arm but ``shared`` spends the same extra parameters as the proposed plan:

- ``proposed``: the plan as given;
- ``random-groups``: the same modules, each with the languages dealt at random into groups of
  the same sizes;
- ``random-modules``: for each proposed module a random other module of the same size (the
  closest size where none is left), with random groups of the same sizes;
- ``typology``: the same modules, each with as many groups cut from URIEL's genetic distance
  (average linkage), so typology, not gradients, decides who shares;
- ``loss-level``: the same modules, each with the languages ordered by their probe loss and cut
  into groups of the same sizes: what a split would do if the gradients said only how well the
  model does each language (not in the default set: ``--arms`` names it);
- ``shared``: every module shared. It has fewer parameters; it is not widened to equal ones,
  since widening a pretrained model adds randomly initialised weights, which is another
  intervention than sharing, so it is labelled as the smaller model it is.

Random draws depend on the seed only, so an arm's plan is the same whenever it is rebuilt.

    python -c "from gradlens.arms import random_partition; print(random_partition(list('abcde'), [2, 3], 0))"
"""

from __future__ import annotations


import numpy as np

from gradlens.plan import PlanError, SharingPlan, new_plan

ARMS = {
    "proposed": "the plan as given",
    "random-groups": "the plan's modules, languages in random groups of the same sizes",
    "random-modules": "random modules of the same sizes (outside the plan where the model has "
                      "them), random groups of the same sizes",
    "typology": "the plan's modules, as many groups cut from URIEL genetic distance",
    "loss-level": "the plan's modules, languages ordered by probe loss in groups of the same "
                  "sizes",
    "shared": "every module shared (fewer parameters)",
}
# what an experiment trains unless told otherwise: the arms it had before loss-level existed, so
# the same command still names and resumes an experiment made then
DEFAULT_ARMS = ["proposed", "random-groups", "random-modules", "typology", "shared"]


def random_partition(languages: list[str], sizes: list[int], seed) -> list[list[str]]:
    """``languages`` dealt at random into groups of ``sizes`` (which sum to their number)."""
    if sum(sizes) != len(languages):
        raise ValueError(f"group sizes {sizes} do not add up to {len(languages)} languages")
    order = [languages[i] for i in np.random.default_rng(seed).permutation(len(languages))]
    cuts = np.cumsum([0, *sizes])
    return [sorted(order[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]


def typology_partition(languages: list[str], n_groups: int, distance: np.ndarray) -> list[list[str]]:
    """``n_groups`` groups cut from an average-linkage tree of ``distance`` ``[L, L]``."""
    from scipy.cluster.hierarchy import cut_tree, linkage
    from scipy.spatial.distance import squareform

    d = np.asarray(distance, dtype=float)
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0.0)
    # cut_tree follows the merge order, so ties in the distance still give exactly n_groups
    labels = cut_tree(linkage(squareform(d, checks=False), "average"), n_clusters=n_groups)[:, 0]
    groups = [sorted(x for x, lab in zip(languages, labels) if lab == g) for g in sorted(set(labels))]
    return sorted(groups, key=lambda g: languages.index(g[0]))


def loss_partition(languages: list[str], losses: list[float], sizes: list[int]) -> list[list[str]]:
    """The languages ordered by their loss (lowest first) and cut into groups of ``sizes``, in
    that order: who shares follows how well the model already does each language, the
    grouping a split would find if the gradients said only that."""
    if sum(sizes) != len(languages) or len(losses) != len(languages):
        raise ValueError(f"group sizes {sizes} and {len(losses)} losses for {len(languages)} "
                         "languages")
    order = [languages[i] for i in np.argsort(np.asarray(losses, float), kind="stable")]
    cuts = np.cumsum([0, *sizes])
    return [sorted(order[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]


def _module_seed(seed: int, arm: str, key: str) -> list[int]:
    return [seed, *arm.encode(), *key.encode()]


def build_arms(plan: SharingPlan, n_params: dict[str, int], seed: int,
               typology: np.ndarray | None = None,
               losses: np.ndarray | None = None) -> dict[str, SharingPlan]:
    """Each arm's plan for ``seed``. ``n_params`` sizes every module of the model (the candidates
    of ``random-modules``); ``typology`` is the URIEL distance between the plan's languages
    (``typology`` is left out without it); ``losses``, each language's probe loss
    (``loss-level`` is left out without it)."""
    langs = list(plan.languages)
    modules = plan.modules
    if not modules:
        raise PlanError(["it splits no module, so every arm would be the shared model: there "
                         "is nothing to compare"])
    unknown = sorted(set(modules) - set(n_params))
    if unknown:
        raise PlanError([f"module(s) {unknown} are not modules of the model"])

    def arm(name: str, entries: dict) -> SharingPlan:
        return new_plan(plan.model, langs, plan.source_run, entries)

    sizes = {k: [len(g) for g in e.groups] for k, e in modules.items()}
    arms = {"proposed": plan,
            "random-groups": arm("random-groups", {
                k: random_partition(langs, sizes[k], _module_seed(seed, "groups", k))
                for k in modules})}
    rng = np.random.default_rng([seed, 7])
    chosen = {}
    for k in modules:
        # a module of exactly the same size: one outside the plan where the model has one left,
        # else one of the plan's own (k itself is always of its size), so the arm spends exactly
        # the plan's parameters even where the plan took every module of a size (small models)
        same = [m for m in sorted(n_params) if n_params[m] == n_params[k] and m not in chosen]
        pick = [m for m in same if m not in modules] or same
        m = pick[int(rng.integers(len(pick)))]
        chosen[m] = random_partition(langs, sizes[k], _module_seed(seed, "modules", m))
    arms["random-modules"] = arm("random-modules", chosen)
    if typology is not None:
        arms["typology"] = arm("typology", {
            k: typology_partition(langs, len(e.groups), typology) for k, e in modules.items()})
    if losses is not None:
        arms["loss-level"] = arm("loss-level", {
            k: loss_partition(langs, list(losses), sizes[k]) for k in modules})
    arms["shared"] = arm("shared", {})
    return arms


def extra_of(arms: dict[str, SharingPlan], n_params: dict[str, int]) -> dict[str, int]:
    """Extra parameters each arm adds to the shared model."""
    return {name: p.extra_parameters(n_params) for name, p in arms.items()}
