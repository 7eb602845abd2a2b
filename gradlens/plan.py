"""Sharing plans: ``plan.json``, schema ``gradlens.sharing-plan/1`` (see ``docs/design.md``).

A plan (``SharingPlan``, frozen) lists the modules that are *not* shared by all languages, each
a ``ModuleSplit`` with its groups (a partition of the languages), the evidence behind it and
whether a person edited it. Every consumer takes this one type. Validation collects every fault
and names it (module, field, what was expected); plans read and write as JSON or YAML and
round-trip exactly; ``diff`` lists what changed per module.

    python -c "from gradlens.plan import load_plan; print(load_plan('runs/demo/plan.json'))"
"""

from __future__ import annotations

import dataclasses
import re
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gradlens.errors import ConfigError, GradlensError

SCHEMA = "gradlens.sharing-plan/1"
_TOP_KEYS = {"schema", "model", "languages", "source_run", "modules", "decisions"}
_REQUIRED_TOP = ("schema", "model", "languages", "modules")
_MODULE_KEYS = {"groups", "evidence", "edited"}


class PlanError(GradlensError):
    """An invalid plan. ``faults`` lists each problem as its own sentence."""

    def __init__(self, faults: list[str], source: str = "plan"):
        self.faults = faults
        super().__init__(f"{source}: " + "; ".join(faults))


def validate(plan: Any, known_modules: list[str] | None = None, source: str = "plan") -> None:
    """Raise ``PlanError`` naming every fault of ``plan``, a dict as read from JSON or YAML.

    ``known_modules``, when given, are the modules of the model (or run) the plan is for.
    ``SharingPlan.from_dict`` calls it; a ``SharingPlan`` is valid by construction.
    """
    faults: list[str] = []
    if not isinstance(plan, dict):
        raise PlanError([f"expected a JSON object at the top, got {type(plan).__name__}"], source)
    for key in sorted(set(plan) - _TOP_KEYS):
        faults.append(f"unknown key {key!r} at the top (allowed: {sorted(_TOP_KEYS)})")
    for key in _REQUIRED_TOP:
        if key not in plan:
            faults.append(f"missing key {key!r}")
    if "schema" in plan and plan["schema"] != SCHEMA:
        faults.append(f"schema is {plan['schema']!r}, expected {SCHEMA!r}")
    if "model" in plan and not isinstance(plan["model"], str):
        faults.append("'model' must be a string")
    if "source_run" in plan and not isinstance(plan["source_run"], (str, type(None))):
        faults.append("'source_run' must be a string or null")
    languages = plan.get("languages")
    lang_set: set[str] = set()
    if "languages" in plan:
        if not isinstance(languages, list) or not all(isinstance(x, str) for x in languages):
            faults.append("'languages' must be a list of language codes (strings)")
        else:
            lang_set = set(languages)
            repeated = sorted(x for x, n in Counter(languages).items() if n > 1)
            if repeated:
                faults.append(f"'languages' repeats {' '.join(repeated)}")
            if len(languages) < 2:
                faults.append("'languages' needs at least two languages to share between")
    modules = plan.get("modules")
    if "modules" in plan and not isinstance(modules, dict):
        faults.append("'modules' must be an object mapping module names to their groups")
        modules = {}
    for name, entry in (modules or {}).items():
        faults += module_faults(name, entry, lang_set if lang_set else None, known_modules)
    decisions = plan.get("decisions", {})
    if not isinstance(decisions, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in decisions.items()):
        faults.append("'decisions' must map module names to the reason (a string) each was "
                      "split or kept shared")
    if faults:
        raise PlanError(faults, source)


def module_faults(name, entry, languages: set[str] | None, known: list[str] | None) -> list[str]:
    """The faults of one module entry (empty when it is valid)."""
    where = f"module {name!r}"
    if known is not None and name not in known:
        return [f"{where} is not a module of the model"]
    if not isinstance(entry, dict):
        return [f"{where}: expected an object with 'groups', got {type(entry).__name__}"]
    faults = [f"{where}: unknown key {k!r} (allowed: {sorted(_MODULE_KEYS)})"
              for k in sorted(set(entry) - _MODULE_KEYS)]
    groups = entry.get("groups")
    if groups is None:
        return faults + [f"{where}: missing 'groups'"]
    if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
        return faults + [f"{where}: 'groups' must be a list of lists of language codes"]
    flat = [x for g in groups for x in g]
    if not all(isinstance(x, str) for x in flat):
        return faults + [f"{where}: 'groups' must hold language codes (strings)"]
    if any(len(g) == 0 for g in groups):
        faults.append(f"{where}: a group is empty")
    repeated = sorted(x for x, n in Counter(flat).items() if n > 1)
    if repeated:
        faults.append(f"{where}: language(s) {' '.join(repeated)} appear in more than one group")
    if languages is not None:
        unknown = sorted(set(flat) - languages)
        if unknown:
            faults.append(f"{where}: unknown language(s) {' '.join(unknown)} (the plan's "
                          f"languages are {' '.join(sorted(languages))})")
        missing = sorted(languages - set(flat))
        if missing:
            faults.append(f"{where}: groups do not partition the languages; {' '.join(missing)} "
                          "in no group")
    if "evidence" in entry and not isinstance(entry["evidence"], dict):
        faults.append(f"{where}: 'evidence' must be an object of named numbers")
    elif isinstance(entry.get("evidence"), dict):
        bad = [k for k, v in entry["evidence"].items()
               if not (v is None or isinstance(v, (int, float))) or isinstance(v, bool)]
        if bad:
            faults.append(f"{where}: evidence {bad} must be numbers")
    if "edited" in entry and not isinstance(entry["edited"], bool):
        faults.append(f"{where}: 'edited' must be true or false")
    return faults


class FrozenMap(Mapping):
    """A read-only mapping (a plan's modules, evidence and decisions): equal to a dict with the
    same items, picklable (Streamlit's cache), and without ``__setitem__``."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping | Iterable = ()):
        self._items = dict(items)

    def __getitem__(self, key):
        return self._items[key]

    def __iter__(self) -> Iterator:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"

    def __getstate__(self):
        return self._items

    def __setstate__(self, items):
        self._items = items


Groups = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class ModuleSplit:
    """One module that is not shared by all languages: its groups (a partition of the plan's
    languages), the evidence behind it and whether a person edited it. ``evidence`` and
    ``edited`` are ``None`` where the plan file has no such key, so files round-trip exactly."""

    groups: Groups
    evidence: Mapping[str, float | None] | None = None
    edited: bool | None = None

    def __post_init__(self):
        object.__setattr__(self, "groups", tuple(tuple(g) for g in self.groups))
        if self.evidence is not None:
            object.__setattr__(self, "evidence", FrozenMap(self.evidence))

    def cost(self, n_params: int) -> int:
        """Parameters the split adds: ``g`` groups cost ``g - 1`` more copies of the module."""
        return (len(self.groups) - 1) * int(n_params)

    def to_dict(self) -> dict:
        out: dict = {"groups": [list(g) for g in self.groups]}
        if self.evidence is not None:
            out["evidence"] = dict(self.evidence)
        if self.edited is not None:
            out["edited"] = self.edited
        return out


@dataclass(frozen=True)
class SharingPlan:
    """A sharing plan (schema ``gradlens.sharing-plan/1``): the modules that are *not* shared
    by all ``languages``, in the order the plan lists them. Valid by construction: building one
    with faults raises ``PlanError``. ``decisions`` (module -> reason) is ``None`` where the
    plan has none. Read and write it with ``from_dict``/``to_dict``, ``load_plan``/``save_plan``.
    """

    model: str
    languages: tuple[str, ...]
    modules: Mapping[str, ModuleSplit] = dataclasses.field(default_factory=FrozenMap)
    source_run: str | None = None
    decisions: Mapping[str, str] | None = None

    def __post_init__(self):
        object.__setattr__(self, "languages", tuple(self.languages))
        object.__setattr__(self, "modules", FrozenMap(self.modules))
        if self.decisions is not None:
            object.__setattr__(self, "decisions", FrozenMap(self.decisions))
        bad = [k for k, v in self.modules.items() if not isinstance(v, ModuleSplit)]
        if bad:
            raise PlanError([f"module {k!r}: expected a ModuleSplit" for k in bad])
        validate(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, known_modules: list[str] | None = None,
                  source: str = "plan") -> "SharingPlan":
        """The plan ``data`` (as read from JSON or YAML) describes; ``PlanError`` names every
        fault, ``source`` (a file name) first."""
        validate(data, known_modules, source)
        return cls(model=data["model"], languages=data["languages"],
                   modules={k: ModuleSplit(e["groups"], e.get("evidence"), e.get("edited"))
                            for k, e in data["modules"].items()},
                   source_run=data.get("source_run"), decisions=data.get("decisions"))

    def to_dict(self) -> dict:
        """The plan as JSON-ready dicts and lists, keys in the schema's order."""
        out = {"schema": SCHEMA, "model": self.model, "languages": list(self.languages),
               "source_run": self.source_run,
               "modules": {k: e.to_dict() for k, e in self.modules.items()}}
        if self.decisions is not None:
            out["decisions"] = dict(self.decisions)
        return out

    def check(self, known_modules: list[str], source: str = "plan") -> "SharingPlan":
        """This plan, if it names only ``known_modules`` (the model's), else ``PlanError``."""
        validate(self.to_dict(), known_modules, source)
        return self

    def with_modules(self, modules: Mapping[str, ModuleSplit]) -> "SharingPlan":
        """The same plan (model, languages, source run, decisions) splitting ``modules``."""
        return dataclasses.replace(self, modules=modules)

    def with_split(self, name: str, groups, evidence=None, edited: bool | None = None
                   ) -> "SharingPlan":
        """This plan with ``name`` split into ``groups`` (added last, or replaced in place)."""
        return self.with_modules({**self.modules, name: ModuleSplit(groups, evidence, edited)})

    def extra_parameters(self, n_params: Mapping[str, int]) -> int:
        """Parameters the plan adds to the shared model (``n_params``: module -> size)."""
        return sum(e.cost(n_params[name]) for name, e in self.modules.items())

    @property
    def edited(self) -> bool:
        """Whether a person changed any module of the plan."""
        return any(e.edited for e in self.modules.values())


def new_plan(model: str, languages: list[str], source_run: str | None = None,
             splits: Mapping[str, list[list[str]]] | None = None) -> SharingPlan:
    """A plan with no evidence: every module shared by all languages but ``splits`` (module ->
    groups)."""
    return SharingPlan(model, tuple(languages), source_run=source_run,
                       modules={k: ModuleSplit(g) for k, g in (splits or {}).items()})


# -- files --------------------------------------------------------------------------------------
def dumps(plan: SharingPlan, fmt: str = "json") -> str:
    """The plan as JSON or YAML text (keys in the schema's order)."""
    if fmt == "json":
        return json.dumps(plan.to_dict(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(plan.to_dict(), sort_keys=False, allow_unicode=True)
    raise ConfigError(f"format must be json or yaml, got {fmt!r}")


def loads(text: str, fmt: str = "json", known_modules: list[str] | None = None,
          source: str = "plan") -> SharingPlan:
    """Parse and validate a plan; syntax errors become ``PlanError`` too."""
    if fmt not in ("json", "yaml"):
        raise ConfigError(f"format must be json or yaml, got {fmt!r}")
    try:
        if fmt == "json":
            plan = json.loads(text)
        else:
            import yaml

            plan = yaml.safe_load(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError and their kin
        raise PlanError([f"not valid {fmt.upper()} ({exc})"], source) from None
    return SharingPlan.from_dict(plan, known_modules, source)


def _fmt(path: Path) -> str:
    return "yaml" if path.suffix in (".yaml", ".yml") else "json"


def save_plan(plan: SharingPlan, path: str | Path, known_modules: list[str] | None = None) -> Path:
    """Check the modules against ``known_modules``, then write atomically (JSON, or YAML for
    ``.yaml``/``.yml``)."""
    path = Path(path)
    if known_modules is not None:
        plan.check(known_modules, str(path))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps(plan, _fmt(path)), encoding="utf-8")
    tmp.replace(path)
    return path


def load_plan(path: str | Path, known_modules: list[str] | None = None) -> SharingPlan:
    path = Path(path)
    if not path.exists():
        raise PlanError(["file not found"], str(path))
    if not path.is_file():
        raise PlanError(["is a directory, not a plan file (.json, .yaml or .yml)"], str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PlanError([f"not UTF-8 text (byte {exc.start})"], str(path)) from None
    return loads(text, _fmt(path), known_modules, str(path))


# -- comparing and costing ----------------------------------------------------------------------
@dataclass(frozen=True)
class ModuleChange:
    """How one module differs between two plans. ``groups`` are ``None`` where shared by all."""

    module: str
    change: str  # "added" (split in b only), "removed" (shared again in b), "regrouped"
    before: Groups | None
    after: Groups | None


def canonical_groups(groups) -> list[list[str]]:
    """Groups in one order (languages sorted within each group, groups sorted), so two
    partitions compare equal when they are the same."""
    return sorted(sorted(g) for g in groups)


def diff(a: SharingPlan, b: SharingPlan) -> list[ModuleChange]:
    """What changed from plan ``a`` to plan ``b``, per module, in name order."""
    out = []
    for name in sorted(set(a.modules) | set(b.modules)):
        ea, eb = a.modules.get(name), b.modules.get(name)
        if ea is None:
            out.append(ModuleChange(name, "added", None, eb.groups))
        elif eb is None:
            out.append(ModuleChange(name, "removed", ea.groups, None))
        elif canonical_groups(ea.groups) != canonical_groups(eb.groups):
            out.append(ModuleChange(name, "regrouped", ea.groups, eb.groups))
    return out


# -- the editable table -------------------------------------------------------------------------
EVIDENCE_COLUMNS = ("excess_divergence", "excess_ci_low", "q_value", "split_gain",
                    "group_support", "cca_mean", "conflict_rate", "extra_params")


# evidence figures that hold for the proposed groups only: unknown (None) once groups are edited
GROUP_FIGURES = ("split_gain", "split_gain_ci_low", "priority_per_mparam", "group_support",
                 "grouping_score")


def without_group_figures(evidence: Mapping[str, float | None]) -> dict:
    """``evidence`` with the figures of the proposed groups (``GROUP_FIGURES``) set to ``None``:
    what a module's edited groups would gain or how well they are supported was not measured."""
    return {k: (None if k in GROUP_FIGURES else v) for k, v in evidence.items()}


def format_groups(groups) -> str:
    """``[["spa", "ita"], ["deu"]]`` -> ``"spa ita | deu"``."""
    return " | ".join(" ".join(g) for g in groups)


def parse_groups(text: str) -> list[list[str]]:
    """``"spa ita | deu"`` (groups split by ``|``, languages by spaces or commas) -> groups.

    An empty group between two bars is kept, so validation can name it."""
    if not isinstance(text, str) or not text.strip():
        return []
    return [part.replace(",", " ").split() for part in text.split("|")]


def plan_rows(plan: SharingPlan) -> list[dict]:
    """One row per listed module: name, groups as text, the main evidence, edited."""
    rows = []
    for name, entry in plan.modules.items():
        ev = entry.evidence or {}
        rows.append({"module": name, "groups": format_groups(entry.groups),
                     **{k: ev.get(k) for k in EVIDENCE_COLUMNS},
                     "edited": bool(entry.edited)})
    return rows


def plan_from_rows(rows: list[dict], base: SharingPlan, proposed: SharingPlan | None = None,
                   known_modules: list[str] | None = None,
                   evidence: Mapping[str, Mapping] | None = None,
                   n_params: Mapping[str, int] | None = None
                   ) -> tuple[SharingPlan, list[list[str]]]:
    """The plan the table describes, and each row's faults (``[]`` for a good row).

    ``base`` gives the model, languages, source run and decisions (the analysis's reason for
    each module stays with the plan); a module's ``edited`` is true where its groups differ
    from ``proposed`` (or ``proposed`` lacks it); its evidence comes from ``proposed``, else
    from ``evidence`` (module -> fields). With ``n_params``, each module's ``extra_params`` is
    what its groups cost as they are now, not as they were proposed, and an edited module's
    figures of the proposed groups (``GROUP_FIGURES``) are ``None``.
    """
    languages = set(base.languages)
    proposed_modules = proposed.modules if proposed is not None else {}
    modules: dict[str, ModuleSplit] = {}
    faults: list[list[str]] = []
    seen: set[str] = set()
    for row in rows:
        name = row.get("module")
        if not isinstance(name, str) or not name:
            faults.append(["pick a module for this row"])
            continue
        groups = parse_groups(row.get("groups", ""))
        row_faults = module_faults(name, {"groups": groups}, languages, known_modules)
        if not groups:
            row_faults = [f"module {name!r}: no groups; write them as 'spa ita | deu rus'"]
        elif len(groups) == 1 and not row_faults:
            row_faults = [f"module {name!r}: one group holding every language is no split; "
                          "delete the row to share the module"]
        if name in seen:
            row_faults.append(f"module {name!r} is listed twice")
        seen.add(name)
        faults.append(row_faults)
        if row_faults:
            continue
        before = proposed_modules.get(name)
        ev = dict((before.evidence if before else None) or (evidence or {}).get(name) or {})
        if n_params is not None and name in n_params:
            ev["extra_params"] = (len(groups) - 1) * int(n_params[name])
        edited = before is None or canonical_groups(before.groups) != canonical_groups(groups)
        modules[name] = ModuleSplit(groups, without_group_figures(ev) if edited else ev, edited)
    return _decided_by_hand(base.with_modules(modules), proposed_modules), faults


def _decided_by_hand(plan: SharingPlan, proposed: Mapping[str, ModuleSplit]) -> SharingPlan:
    """``plan`` whose decisions say what the person did: a module split or regrouped by hand,
    and a proposed split removed, each with what the analysis had said."""
    if plan.decisions is None:
        return plan
    decisions = dict(plan.decisions)

    def analysis(name: str) -> str:
        said = decisions.get(name, "not analysed")
        found = _BY_HAND.match(said)
        return found.group(1) if found else said

    for name, split in plan.modules.items():
        if split.edited:
            decisions[name] = (f"split by hand into {len(split.groups)} groups (the analysis: "
                               f"{analysis(name)})")
        elif _BY_HAND.match(decisions.get(name, "")):  # back to what the analysis proposed
            decisions[name] = analysis(name)
    for name in proposed:
        if name not in plan.modules:
            decisions[name] = f"kept shared by hand (the analysis: {analysis(name)})"
    return dataclasses.replace(plan, decisions=decisions)


_BY_HAND = re.compile(r"^(?:split|kept shared) by hand.*?\(the analysis: (.*)\)$", re.S)


def plan_csv(plan: SharingPlan) -> str:
    """The plan as CSV: one row per module with its groups, evidence and edited flag."""
    import csv
    import io

    keys = sorted({k for e in plan.modules.values() for k in (e.evidence or {})})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["module", "groups", *keys, "edited"])
    for name, entry in plan.modules.items():
        ev = entry.evidence or {}
        writer.writerow([name, format_groups(entry.groups), *[ev.get(k) for k in keys],
                         bool(entry.edited)])
    return out.getvalue()
