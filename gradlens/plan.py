"""Sharing plans: ``plan.json``, schema ``gradlens.sharing-plan/1`` (see ``docs/design.md``).

A plan lists the modules that are *not* shared by all languages, each with its groups (a
partition of the languages), the evidence behind it and whether a person edited it. Validation
collects every fault and names it (module, field, what was expected); plans read and write as
JSON or YAML and round-trip exactly; ``diff`` lists what changed per module.

    python -c "from gradlens.plan import load_plan; print(load_plan('runs/demo/plan.json'))"
"""

from __future__ import annotations

import json
from collections import Counter
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


def validate(plan: Any, known_modules: list[str] | None = None, source: str = "plan") -> dict:
    """Return ``plan`` if it is a valid sharing plan, else raise ``PlanError`` naming every fault.

    ``known_modules``, when given, are the modules of the model (or run) the plan is for.
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
                faults.append(f"'languages' repeats {repeated}")
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
    return plan


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
        faults.append(f"{where}: language(s) {repeated} appear in more than one group")
    if languages is not None:
        unknown = sorted(set(flat) - languages)
        if unknown:
            faults.append(f"{where}: unknown language(s) {unknown} (the plan's languages are "
                          f"{sorted(languages)})")
        missing = sorted(languages - set(flat))
        if missing:
            faults.append(f"{where}: groups do not partition the languages; {missing} in no group")
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


def new_plan(model: str, languages: list[str], source_run: str | None = None) -> dict:
    """An empty plan: every module shared by all languages."""
    return {"schema": SCHEMA, "model": model, "languages": list(languages),
            "source_run": source_run, "modules": {}}


# -- files --------------------------------------------------------------------------------------
def dumps(plan: dict, fmt: str = "json") -> str:
    """The plan as JSON or YAML text (keys in a stable order)."""
    if fmt == "json":
        return json.dumps(plan, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(plan, sort_keys=False, allow_unicode=True)
    raise ConfigError(f"format must be json or yaml, got {fmt!r}")


def loads(text: str, fmt: str = "json", known_modules: list[str] | None = None,
          source: str = "plan") -> dict:
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
    return validate(plan, known_modules, source)


def _fmt(path: Path) -> str:
    return "yaml" if path.suffix in (".yaml", ".yml") else "json"


def save_plan(plan: dict, path: str | Path, known_modules: list[str] | None = None) -> Path:
    """Validate, then write atomically (JSON, or YAML for ``.yaml``/``.yml``)."""
    path = Path(path)
    validate(plan, known_modules, str(path))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps(plan, _fmt(path)), encoding="utf-8")
    tmp.replace(path)
    return path


def load_plan(path: str | Path, known_modules: list[str] | None = None) -> dict:
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
    before: list[list[str]] | None
    after: list[list[str]] | None


def canonical_groups(groups: list[list[str]]) -> list[list[str]]:
    """Groups in one order (languages sorted within each group, groups sorted), so two
    partitions compare equal when they are the same."""
    return sorted(sorted(g) for g in groups)


def diff(a: dict, b: dict) -> list[ModuleChange]:
    """What changed from plan ``a`` to plan ``b``, per module, in name order."""
    out = []
    for name in sorted(set(a["modules"]) | set(b["modules"])):
        ga = a["modules"].get(name, {}).get("groups")
        gb = b["modules"].get(name, {}).get("groups")
        if ga is None:
            out.append(ModuleChange(name, "added", None, gb))
        elif gb is None:
            out.append(ModuleChange(name, "removed", ga, None))
        elif canonical_groups(ga) != canonical_groups(gb):
            out.append(ModuleChange(name, "regrouped", ga, gb))
    return out


def extra_parameters(plan: dict, n_params: dict[str, int]) -> int:
    """Parameters the plan adds: a module split into ``g`` groups costs ``(g - 1) * n``."""
    return sum((len(entry["groups"]) - 1) * int(n_params[name])
               for name, entry in plan["modules"].items())



# -- the editable table -------------------------------------------------------------------------
EVIDENCE_COLUMNS = ("excess_divergence", "excess_ci_low", "q_value", "split_gain", "cca_mean",
                    "conflict_rate", "extra_params")


def format_groups(groups: list[list[str]]) -> str:
    """``[["spa", "ita"], ["deu"]]`` -> ``"spa ita | deu"``."""
    return " | ".join(" ".join(g) for g in groups)


def parse_groups(text: str) -> list[list[str]]:
    """``"spa ita | deu"`` (groups split by ``|``, languages by spaces or commas) -> groups.

    An empty group between two bars is kept, so validation can name it."""
    if not isinstance(text, str) or not text.strip():
        return []
    return [part.replace(",", " ").split() for part in text.split("|")]


def plan_rows(plan: dict) -> list[dict]:
    """One row per listed module: name, groups as text, the main evidence, edited."""
    rows = []
    for name, entry in plan["modules"].items():
        ev = entry.get("evidence") or {}
        rows.append({"module": name, "groups": format_groups(entry["groups"]),
                     **{k: ev.get(k) for k in EVIDENCE_COLUMNS},
                     "edited": bool(entry.get("edited", False))})
    return rows


def plan_from_rows(rows: list[dict], base: dict, proposed: dict | None = None,
                   known_modules: list[str] | None = None,
                   evidence: dict[str, dict] | None = None,
                   n_params: dict[str, int] | None = None) -> tuple[dict, list[list[str]]]:
    """The plan the table describes, and each row's faults (``[]`` for a good row).

    ``base`` gives the model, languages and source run; a module's ``edited`` is true where
    its groups differ from ``proposed`` (or ``proposed`` lacks it); its evidence comes from
    ``proposed``, else from ``evidence`` (module -> fields). With ``n_params``, each module's
    ``extra_params`` is what its groups cost as they are now, not as they were proposed.
    """
    plan = new_plan(base["model"], base["languages"], base.get("source_run"))
    if "decisions" in base:  # the analysis's reason for each module stays with the plan
        plan["decisions"] = dict(base["decisions"])
    languages = set(base["languages"])
    proposed_modules = (proposed or {"modules": {}})["modules"]
    faults: list[list[str]] = []
    seen: set[str] = set()
    for row in rows:
        name = row.get("module")
        if not isinstance(name, str) or not name:
            faults.append(["pick a module for this row"])
            continue
        entry = {"groups": parse_groups(row.get("groups", ""))}
        row_faults = module_faults(name, entry, languages, known_modules)
        if not entry["groups"]:
            row_faults = [f"module {name!r}: no groups; write them as 'spa ita | deu rus'"]
        if name in seen:
            row_faults.append(f"module {name!r} is listed twice")
        seen.add(name)
        faults.append(row_faults)
        if row_faults:
            continue
        before = proposed_modules.get(name)
        entry["evidence"] = dict((before or {}).get("evidence") or (evidence or {}).get(name) or {})
        entry["edited"] = (before is None
                           or canonical_groups(before["groups"]) != canonical_groups(entry["groups"]))
        if n_params is not None and name in n_params:
            entry["evidence"]["extra_params"] = (len(entry["groups"]) - 1) * int(n_params[name])
        plan["modules"][name] = entry
    return plan, faults


def plan_csv(plan: dict) -> str:
    """The plan as CSV: one row per module with its groups, evidence and edited flag."""
    import csv
    import io

    keys = sorted({k for e in plan["modules"].values() for k in (e.get("evidence") or {})})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["module", "groups", *keys, "edited"])
    for name, entry in plan["modules"].items():
        ev = entry.get("evidence") or {}
        writer.writerow([name, format_groups(entry["groups"]), *[ev.get(k) for k in keys],
                         entry.get("edited", False)])
    return out.getvalue()
