"""Does the predicted gain predict the benefit? ``gradlens validate RUN``: the check a researcher
runs on their own model before trusting its plan.

From the probed run's evidence, ``N`` modules spanning the predicted gain are taken: the plan's
and modules below it (``analysis.validation.span``). Each is fine-tuned split into each of the
``GROUPINGS`` (its proposed groups, random groups of the same sizes, URIEL groups, groups by
probe loss), and one fine-tune shares everything, all over the same seeds, as ordinary jobs
through the registry (local or Ray). The same command again resumes: jobs that succeeded are
kept. Every job records each language's teacher-forced ST loss on a fixed dev set at its end
(``TrainConfig.dev_loss_size``). A split's realised benefit is the shared fine-tune's dev loss
minus its own (``analysis.validation.realised_benefit``), and the report gives Spearman's ρ of
each predictor against the proposed groups' benefit, with a bootstrap interval over modules.
The primary predictor, declared here before any job runs, is the predicted gain; the others
are secondary.

A validation lives in ``runs/<name>/``:

- ``validation.json`` (schema ``gradlens.validation/1``): the run, the modules with their
  predictors and groups, the seeds, the training config, the arms and their jobs
  (``<name>-m<i>-<grouping>-s<seed>`` and ``<name>-shared-s<seed>``);
- ``plans/<arm>-s<seed>.json``: the one-module plan each job trains;
- ``validation-results.json`` and ``validation.csv``, written by ``collect``.

    python -m gradlens validate runs/control --modules 10 --seeds 2
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np

from gradlens.analysis.validation import (prediction_verdict, rank_correlation,
                                          realised_benefit, span)
from gradlens.atomic import write_text
from gradlens.errors import GradlensError
from gradlens.plan import canonical_groups, new_plan, save_plan

SCHEMA = "gradlens.validation/1"
SPEC = "validation.json"
RESULTS = "validation-results.json"
TABLE = "validation.csv"
PLANS = "plans"
SHARED = "shared"
PRIMARY = "gain"
GROUPINGS = {
    "proposed": "the module's GradSim groups, as the plan would split it",
    "random": "the languages dealt at random into groups of the same sizes",
    "typology": "as many groups cut from URIEL genetic distance",
    "loss": "the languages ordered by their probe ST loss, cut into groups of the same sizes",
}
PREDICTORS = {
    "gain": "predicted gain (held-out first-order gain of the proposed groups)",
    "excess": "excess divergence",
    "neg_q": "−q-value (a smaller q-value ranks higher)",
    "priority": "priority (the plan's ranking: the gain's lower end × (1 − CCA beyond chance) "
                "per extra parameter)",
}
# what a validation job trains unless told otherwise: short fine-tunes that read only the dev
# loss at their end, on a dev set far larger than a translation score's
DEFAULTS = {"steps": 60, "warmup_steps": 6, "eval_every": 60, "checkpoint_every": 60,
            "eval_at_start": False, "translate_eval": False, "dev_loss_size": 96}
RESULTS_VERSION = 2  # 2: per_parameter correlations


class ValidationError(GradlensError):
    """A validation that cannot be created, read or collected; names the file and the field."""


def arm_name(index: int, grouping: str) -> str:
    return f"m{index:02d}-{grouping}"


# -- what is fine-tuned -----------------------------------------------------------------------
def predictors(e) -> dict[str, float | None]:
    """What the evidence says of one module, each oriented so that larger predicts more benefit
    (``PREDICTORS``), with the q-value itself and the gain's lower end beside them."""
    from gradlens.analysis.allocation import priority, q_of, split_gain

    gain = split_gain(e)
    return {"gain": None if gain is None else float(gain[0]),
            "gain_low": None if gain is None else float(gain[1]),
            "excess": float(e.divergence.excess), "q_value": float(q_of(e)),
            "neg_q": -float(q_of(e)), "priority": float(priority(e) * 1e6)}


def design(evidence: list, planned: list[str], n: int, languages: list[str],
           losses: list[float], typology: np.ndarray | None,
           groupings: list[str]) -> list[dict]:
    """The modules to fine-tune (``span`` over those a split can be measured for: two groups or
    more and a held-out gain) with their predictors and each grouping's groups."""
    from gradlens.arms import loss_partition, random_partition, typology_partition

    usable = {e.module: e for e in evidence if len(e.groups) > 1 and e.held_out_gain is not None}
    if not usable:
        raise ValidationError("no module has two groups or more and a held-out gain: the run "
                              "has too few steps to predict any split's gain")
    chosen = span({m: float(e.held_out_gain[0]) for m, e in usable.items()}, planned, n)
    out = []
    for m in chosen:
        e = usable[m]
        sizes = [len(g) for g in e.groups]
        groups = {"proposed": e.groups,
                  "random": random_partition(languages, sizes, [0, *b"validate", *m.encode()]),
                  "loss": loss_partition(languages, losses, sizes)}
        if typology is not None:
            groups["typology"] = typology_partition(languages, len(sizes), typology)
        out.append({"module": m, "n_params": int(e.n_params), "in_plan": m in planned,
                    "predictors": predictors(e),
                    "groupings": {g: canonical_groups(groups[g]) for g in groupings
                                  if g in groups}})
    return out


def create(directory: Path, source_run: str, model: str, languages: list[str],
           modules: list[dict], groupings: list[str], seeds: list[int], config) -> dict:
    """Write the spec and every job's plan into ``directory``; return the spec. The same design
    again returns the existing spec (a resume); another is refused."""
    from gradlens.experiment import job_id
    from gradlens.train.config import comparable

    cfg = comparable({k: v for k, v in dataclasses.asdict(config).items() if k != "seed"})
    if not cfg.get("dev_loss_size"):
        raise ValidationError("dev_loss_size must be at least 1: the benefit is read from the "
                              "dev loss")
    arms = {SHARED: {"module": None, "grouping": None, "groups": [], "extra_params": 0}}
    for i, entry in enumerate(modules):
        for g, groups in entry["groupings"].items():
            arms[arm_name(i, g)] = {"module": entry["module"], "grouping": g, "groups": groups,
                                    "extra_params": (len(groups) - 1) * entry["n_params"]}
    name = Path(directory).name
    spec = {"schema": SCHEMA, "name": name, "created": time.time(), "source_run": source_run,
            "model": model, "languages": list(languages), "primary": PRIMARY,
            "groupings": list(groupings), "modules": modules, "seeds": list(seeds),
            "config": cfg, "arms": arms,
            "jobs": {a: {str(s): job_id(name, a, s) for s in seeds} for a in arms}}
    if (Path(directory) / SPEC).is_file():
        old = read_spec(directory)
        keys = ("source_run", "model", "languages", "modules", "seeds", "config", "arms")
        if [old[k] for k in keys] != [spec[k] for k in keys]:
            raise ValidationError(f"{Path(directory) / SPEC}: a validation with another design "
                                  "(modules, groupings, seeds or config) exists here; pick "
                                  "another name")
        return old
    (Path(directory) / PLANS).mkdir(parents=True, exist_ok=True)
    for arm, a in arms.items():
        plan = new_plan(model, list(languages), source_run,
                        {a["module"]: a["groups"]} if a["module"] else {})
        for s in seeds:
            save_plan(plan, Path(directory) / PLANS / f"{arm}-s{s}.json")
    write_text(Path(directory) / SPEC, json.dumps(spec, indent=2))
    return spec


def default_name(run_name: str, modules: list[dict], seeds: list[int], config) -> str:
    """The same run and design always name the same validation, so the same command resumes."""
    from gradlens.train.config import comparable

    digest = hashlib.sha256(json.dumps(
        [[m["module"], m["groupings"]] for m in modules] + [seeds,
                                                          comparable(dataclasses.asdict(config))],
        sort_keys=True).encode()).hexdigest()[:8]
    return f"val-{run_name}-{digest}"[:40]


def prepare(run_dir: Path, n_modules: int, groupings: list[str], seeds: list[int], config,
            budget: float = 0.1, alpha: float = 0.05,
            name: str | None = None) -> tuple[Path, dict, list[str]]:
    """Create (or find) the validation of the run in ``run_dir``: its directory, its spec, and
    notes on what was left out (URIEL groups where URIEL lacks a language)."""
    from gradlens.analysis.allocation import propose_plan
    from gradlens.analysis.typology import uriel_distance
    from gradlens.evidence import cached_run_evidence, run_nuisances
    from gradlens.launch import run_dir_for
    from gradlens.store import Run

    unknown = sorted(set(groupings) - set(GROUPINGS))
    if unknown or "proposed" not in groupings:
        raise ValidationError(f"groupings {unknown or groupings}: choose among "
                              f"{list(GROUPINGS)}, with 'proposed' among them")
    if n_modules < 2:
        raise ValidationError(f"--modules must be at least 2 (a correlation needs them), got "
                              f"{n_modules}")
    notes, typology = [], None
    with Run(run_dir) as run:
        evidence = cached_run_evidence(run)
        plan = propose_plan(evidence, budget, int(run.modules.n_params.sum()), run.model,
                            run.languages, str(run.path.parent), alpha)
        languages, model, run_name = list(run.languages), run.model, run.path.parent.name
        losses = [float(v) for v in run_nuisances(run)["loss"]]
    if "typology" in groupings:
        try:
            typology = uriel_distance(languages, "genetic")
        except ValueError as exc:
            notes.append(f"no URIEL groups ({exc})")
            groupings = [g for g in groupings if g != "typology"]
    modules = design(evidence, list(plan.modules), n_modules, languages, losses, typology,
                     groupings)
    directory = run_dir_for(name or default_name(run_name, modules, seeds, config))
    directory.mkdir(parents=True, exist_ok=True)
    return directory, create(directory, str(Path(run_dir)), model, languages, modules,
                             groupings, seeds, config), notes


def read_spec(directory: Path) -> dict:
    from gradlens.experiment import read_spec_file

    return read_spec_file(Path(directory) / SPEC, SCHEMA, ("modules", "seeds", "config", "arms",
                                                           "jobs", "languages"),
                          ValidationError, "a validation")


def validations(root: Path | None = None) -> list[Path]:
    """Every validation directory in the runs directory, newest first."""
    from gradlens.experiment import spec_dirs

    return spec_dirs(SPEC, root)


# -- running: the experiment's job machinery, over this spec ----------------------------------
def launch(directory: Path, backend: str = "local", ray_address: str | None = None) -> list[str]:
    """Submit every job that has not succeeded and is not running; return the ids submitted."""
    from gradlens.experiment import launch_jobs

    return launch_jobs(directory, read_spec(directory), SPEC, backend, ray_address)


def status(directory: Path) -> list[dict]:
    """One row per job: arm, seed, job, state, steps done."""
    from gradlens.experiment import job_rows

    return job_rows(read_spec(directory))


# -- what it shows ----------------------------------------------------------------------------
def dev_losses(spec: dict) -> dict[str, dict[int, dict[str, float]]]:
    """Each arm's final dev ST loss per seed and language, from the jobs that succeeded."""
    from gradlens.experiment import succeeded_records
    from gradlens.metrics import METRICS as METRICS_FILE
    from gradlens.metrics import final_dev_losses

    out: dict[str, dict[int, dict[str, float]]] = {}
    for arm, seed, job_dir, records in succeeded_records(spec):
        final = final_dev_losses(records)
        if final is None:
            raise ValidationError(f"{job_dir / METRICS_FILE}: the job succeeded without "
                                  "a dev loss; it was trained without dev_loss_size")
        out.setdefault(arm, {})[seed] = final[1]
    return out


def summarise(spec: dict, losses: dict[str, dict[int, dict[str, float]]]) -> dict:
    """The benefit of every (module, grouping) that has a seed beside the shared fine-tune's,
    the rank correlation of each predictor with the proposed groups' benefit, and each other
    grouping's benefit against the proposed groups' over the modules both have."""
    from gradlens.significance import seed_interval

    shared = losses.get(SHARED, {})
    modules = []
    for i, entry in enumerate(spec["modules"]):
        benefit = {}
        for g in entry["groupings"]:
            got = realised_benefit(shared, losses.get(arm_name(i, g), {}))
            if got is not None:
                benefit[g] = {"mean": got[0], "seeds": got[1]}
        modules.append({**{k: entry[k] for k in ("module", "n_params", "in_plan", "predictors",
                                                  "groupings")}, "benefit": benefit})
    measured = [m for m in modules if "proposed" in m["benefit"]]

    def correlate(target) -> dict[str, dict]:
        out = {}
        for p in PREDICTORS:
            pairs = [(m["predictors"][p], target(m)) for m in measured
                     if m["predictors"][p] is not None]
            out[p] = rank_correlation(*zip(*pairs)).as_dict() if len(pairs) > 1 else \
                {"rho": None, "low": None, "high": None, "n": len(pairs)}
        return out

    correlations = correlate(lambda m: m["benefit"]["proposed"]["mean"])
    # the plan spends a budget, so its ranking is per extra parameter: what it should predict
    # is the benefit per extra parameter (secondary, beside the benefit itself)
    per_parameter = correlate(lambda m: m["benefit"]["proposed"]["mean"] / extra_of(m))
    versus = {}
    for g in spec["groupings"]:
        both = [m["benefit"]["proposed"]["mean"] - m["benefit"][g]["mean"] for m in measured
                if g != "proposed" and g in m["benefit"]]
        if both:
            versus[g] = seed_interval(both).as_dict()
    benefit = {g: seed_interval(vals).as_dict() for g in spec["groupings"]
               if (vals := [m["benefit"][g]["mean"] for m in modules if g in m["benefit"]])}
    return {"modules": modules, "correlations": correlations,
            "per_parameter": per_parameter, "versus": versus, "benefit": benefit}


def extra_of(module: dict) -> int:
    """Extra parameters of splitting a design's module into its proposed groups."""
    return (len(module["groupings"]["proposed"]) - 1) * module["n_params"]


def answer(results: dict) -> str:
    """The validation's answer, first and alone: the primary predictor's verdict, then whether
    the proposed groups beat random ones of the same sizes."""
    from gradlens.analysis.validation import RankCorrelation

    rc = RankCorrelation(**results["correlations"][PRIMARY])
    said = prediction_verdict("The predicted gain", rc)
    v = results["versus"].get("random")
    if v and v["low"] is not None:
        where = ("above" if v["low"] > 0 else "below" if v["high"] < 0 else "around")
        said += (f" Proposed groups against random groups of the same sizes: dev-loss benefit "
                 f"{v['mean']:+.4f} [{v['low']:+.4f}, {v['high']:+.4f}] over {v['n']} modules "
                 f"({where} 0).")
    if not results["complete"]:
        said += " (Intermediate: not every job has finished.)"
    return said


def collect(directory: Path) -> dict:
    """Read every succeeded job's dev losses; write the results and the CSV; return them."""
    spec = read_spec(directory)
    losses = dev_losses(spec)
    results = summarise(spec, losses)
    n_jobs = sum(len(v) for v in spec["jobs"].values())
    done = sum(len(v) for v in losses.values())
    results.update(primary=spec.get("primary", PRIMARY), complete=done == n_jobs,
                   jobs_done=done, jobs=n_jobs, collected=time.time(), version=RESULTS_VERSION,
                   seeds=spec["seeds"], config=spec["config"])
    results["answer"] = answer(results)
    write_text(Path(directory) / RESULTS, json.dumps(results, indent=2))
    write_text(Path(directory) / TABLE, table_csv(results))
    return results


def table_csv(results: dict) -> str:
    """One row per module and grouping: its groups, predictors and realised benefit."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["module", "in_plan", "n_params", "extra_params", "grouping", "groups", "gain",
                "gain_low", "excess", "q_value", "priority", "benefit", "benefit_per_seed"])
    for m in results["modules"]:
        p = m["predictors"]
        for g, groups in m["groupings"].items():
            b = m["benefit"].get(g)
            w.writerow([m["module"], m["in_plan"], m["n_params"],
                        (len(groups) - 1) * m["n_params"], g,
                        " | ".join(" ".join(x) for x in groups),
                        *(("" if p[k] is None else f"{p[k]:.6g}")
                          for k in ("gain", "gain_low", "excess", "q_value", "priority")),
                        "" if b is None else f"{b['mean']:.6g}",
                        "" if b is None else " ".join(f"{v:.6g}" for v in b["seeds"])])
    return buf.getvalue()


def read_results(directory: Path) -> dict | None:
    from gradlens.experiment import read_json

    return read_json(Path(directory) / RESULTS)


def results(directory: Path, rows: list[dict]) -> dict | None:
    """The results of the jobs that have succeeded: the stored ones while they cover them all,
    else collected afresh; None before any job succeeded."""
    from gradlens.experiment import up_to_date

    return up_to_date(rows, read_results(directory), RESULTS_VERSION, lambda: collect(directory))
