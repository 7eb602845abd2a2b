"""Does the plan help? A plan experiment: every arm (``gradlens.arms``) trained over seeds as
ordinary jobs, each scored on one fixed test set at its checkpoint chosen on dev.

An experiment lives in ``runs/<name>/``:

- ``experiment.json``: what it compares (schema ``gradlens.experiment/1``): the proposed plan,
  the seeds, the training config, every arm's description and extra parameters, and the job
  of each (arm, seed), named ``<name>-<arm>-s<seed>`` (``runs/<job>/``, in the job registry);
- ``plans/<arm>-s<seed>.json``: the plan each job trains;
- ``results.json`` and ``scores.csv``, written by ``collect`` from the jobs that succeeded.

Before it runs, an experiment declares (``Declaration``, kept in its spec as ``declared``) its
primary metric and primary comparison, and its design: a fixed number of seeds, or a sequential
design whose looks (seed counts) and per-look level are set in advance. The verdict is decided
at the level of the seeds: a paired t test over seeds, Holm-adjusted across the baselines, with
a hierarchical bootstrap interval (seeds, then test utterances); the test-utterance
randomisation p is kept as a secondary figure. Adding seeds beyond the declared looks is
refused, unless the extension is labelled exploratory, which the results then say.

A job's checkpoint is its evaluation with the best dev chrF over all languages (the later one
on a tie), and its test hypotheses at that step are what is scored. The test set is fixed for
every arm and seed (``SpokenNumbers.evaluation_set``, or the test manifest). Running the same
``launch`` again resumes: jobs that succeeded are kept, running ones followed, failed or
cancelled ones resumed from their last checkpoint.

    python -m gradlens experiment runs/demo --budget 0.1 --seeds 3
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from pathlib import Path

import numpy as np

from gradlens.arms import ARMS, DEFAULT_ARMS, build_arms, extra_of
from gradlens.atomic import write_text
from gradlens.errors import GradlensError
from gradlens.metrics import METRICS as METRICS_FILE
from gradlens.metrics import fell_below_start, last_step, read_metrics, score_curves
from gradlens.plan import SharingPlan, canonical_groups, load_plan, save_plan
from gradlens.significance import (METRICS, corpus_scores, hierarchical_interval, holm,
                                   paired_test, seed_interval, seed_test)

SCHEMA = "gradlens.experiment/1"
SPEC = "experiment.json"
RESULTS = "results.json"
SCORES = "scores.csv"
PLANS = "plans"
ALL = "all"


class ExperimentError(GradlensError):
    """An experiment that cannot be created, read or collected; names the file and the field."""


@dataclasses.dataclass(frozen=True)
class Declaration:
    """What an experiment fixes before any job runs.

    ``metric`` and ``baseline``: the primary metric and the primary comparison (proposed against
    ``baseline``), the one the experiment is judged by; the other baselines are secondary.
    ``looks``: a sequential design's seed counts at which the verdict is read, in order (empty:
    a fixed design, read once at its seeds); each look tests at ``alpha / len(looks)``
    (Bonferroni over the looks, conservative and set in advance). ``exploratory``: seeds were
    added after looking outside any declared look, so no verdict is confirmatory.
    """

    metric: str = "chrf"
    baseline: str = "shared"
    looks: tuple[int, ...] = ()
    alpha: float = 0.05
    exploratory: bool = False

    def __post_init__(self):
        if self.metric not in METRICS:
            raise ExperimentError(f"primary metric must be one of {list(METRICS)}, got "
                                  f"{self.metric!r}")
        if list(self.looks) != sorted(set(self.looks)) or any(n < 2 for n in self.looks):
            raise ExperimentError(f"looks must be increasing seed counts of at least 2, got "
                                  f"{list(self.looks)}")
        if not 0 < self.alpha < 1:
            raise ExperimentError(f"alpha must lie in (0, 1), got {self.alpha}")

    def level(self) -> float:
        """The level each look tests at."""
        return self.alpha / max(1, len(self.looks))

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "looks": list(self.looks)}

    @classmethod
    def of(cls, spec: dict) -> "Declaration | None":
        """The spec's declaration; ``None`` for an experiment made before declarations."""
        d = spec.get("declared")
        return None if d is None else cls(**{**d, "looks": tuple(d.get("looks", ()))})


def job_id(name: str, arm: str, seed: int) -> str:
    return f"{name}-{arm}-s{seed}"


def is_experiment(directory: Path) -> bool:
    return (Path(directory) / SPEC).is_file()


# -- creating ---------------------------------------------------------------------------------
def design_of(plan: SharingPlan) -> dict[str, list[list[str]]]:
    """What a plan asks training to do: each split module's groups, in a canonical order. The
    evidence recorded beside them (which a newer analysis may add figures to) is not part of the
    design, so it never stops an experiment from resuming."""
    return {k: canonical_groups(e.groups) for k, e in sorted(plan.modules.items())}


def create(directory: Path, plan: SharingPlan, n_params: dict[str, int], seeds: list[int], config,
           typology: np.ndarray | None = None, budget: float | None = None,
           arms: list[str] | None = None, declared: Declaration | None = None,
           exploratory: bool = False, losses: np.ndarray | None = None) -> dict:
    """Write the experiment's spec and every arm's plan into ``directory``; return the spec.

    ``declared``: its primary metric, comparison and design (default: chrF against the shared
    model, fixed at ``seeds``); a sequential design starts at its first look. The same plan,
    seeds and config again return the existing spec (a resume). More seeds than it has (all of
    its own among them) extend it with the new seeds' jobs, without re-running any, only at its
    declared next look, or when ``exploratory`` says the extension was decided after looking
    (the spec then records it, and the results say so). Anything else in an existing experiment
    is refused, so its jobs never mix two designs.
    """
    plan.check(sorted(n_params), "proposed plan")
    wanted = list(DEFAULT_ARMS) if arms is None else list(arms)
    unknown = sorted(set(wanted) - set(ARMS))
    if unknown or "proposed" not in wanted:
        raise ExperimentError(f"arms {unknown or wanted}: choose among {list(ARMS)}, with "
                              "'proposed' among them (the others are compared with it)")
    if "typology" in wanted and typology is None:
        raise ExperimentError("the typology arm needs the URIEL distance of the languages")
    if "loss-level" in wanted and losses is None:
        raise ExperimentError("the loss-level arm needs each language's probe loss")
    declared = declared or Declaration()
    if declared.baseline not in wanted or declared.baseline == "proposed":
        raise ExperimentError(f"primary baseline {declared.baseline!r}: choose one of the arms "
                              f"compared with the proposed plan, {[a for a in wanted if a != 'proposed']}")
    from gradlens.train.config import comparable

    cfg = {k: v for k, v in dataclasses.asdict(config).items() if k != "seed"}
    old = read_spec(directory) if is_experiment(directory) else None
    if old is None and declared.looks and len(seeds) != declared.looks[0]:
        raise ExperimentError(f"a sequential design starts at its first look: {declared.looks[0]} "
                              f"seeds, not {len(seeds)}")
    extension = None
    if old is not None:
        if ((design_of(SharingPlan.from_dict(old["plan"])), comparable(old["config"]),
             sorted(old["arms"]))
                != (design_of(plan), comparable(cfg), sorted(wanted))
                or not set(old["seeds"]) <= set(seeds)):
            raise ExperimentError(f"{directory / SPEC}: an experiment with another plan, config "
                                  f"or arms, or with seeds {old['seeds']} not all among "
                                  f"{seeds}, exists here; pick another name")
        if set(seeds) == set(old["seeds"]):
            return old
        extension = _extension(directory, old, seeds, exploratory)
    name = Path(directory).name
    (Path(directory) / PLANS).mkdir(parents=True, exist_ok=True)
    described: dict[str, dict] = {}  # what a new spec says of each arm (an old one keeps its own)
    jobs: dict[str, dict[str, str]] = {a: dict(j) for a, j in old["jobs"].items()} if old else {}
    for seed in seeds:
        if old is not None and seed in old["seeds"]:
            continue
        for arm, arm_plan in build_arms(plan, n_params, seed, typology, losses).items():
            if arm not in wanted:
                continue
            save_plan(arm_plan, Path(directory) / PLANS / f"{arm}-s{seed}.json", sorted(n_params))
            extra = extra_of({arm: arm_plan}, n_params)[arm]
            described.setdefault(arm, {"description": ARMS[arm], "extra_params": extra,
                                  "modules": sorted(arm_plan.modules)})
            jobs.setdefault(arm, {})[str(seed)] = job_id(name, arm, seed)
    if old is not None:  # the spec keeps the plan as first written, and adds the seeds
        spec = {**old, "seeds": sorted(set(old["seeds"]) | set(seeds)), "jobs": jobs,
                **extension}
    else:
        spec = {"schema": SCHEMA, "name": name, "created": time.time(), "budget": budget,
                "source_run": plan.source_run, "plan": plan.to_dict(), "seeds": seeds,
                "config": cfg, "total_params": int(sum(n_params.values())), "arms": described,
                "jobs": jobs, "declared": declared.to_dict()}
    write_text(Path(directory) / SPEC, json.dumps(spec, indent=2))
    return spec


def _extension(directory: Path, old: dict, seeds: list[int], exploratory: bool) -> dict:
    """What the spec records of more seeds for an existing experiment: allowed at its declared
    next look, or labelled exploratory; refused otherwise (adding seeds because a look was
    inconclusive inflates the false-positive rate of the verdict)."""
    declared = Declaration.of(old) or Declaration()
    n_old, n_new = len(old["seeds"]), len(set(old["seeds"]) | set(seeds))
    later = [n for n in declared.looks if n > n_old]
    if later and n_new == later[0] and not declared.exploratory:
        return {}
    if not exploratory:
        looks = f"its declared looks are {list(declared.looks)}" if declared.looks else \
            "it declared a fixed design"
        raise ExperimentError(
            f"{Path(directory) / SPEC}: {n_old} → {n_new} seeds is not a look this experiment "
            f"declared before it ran ({looks}); seeds added after looking make its verdict "
            "exploratory: say so (--exploratory), or start a new experiment with a sequential "
            "design (--looks)")
    history = list(old.get("extensions", [])) + [{"from": n_old, "to": n_new, "at": time.time()}]
    return {"declared": {**declared.to_dict(), "exploratory": True}, "extensions": history}


def default_name(run_name: str, plan: SharingPlan, seeds: list[int], config, arms: list[str]) -> str:
    """The same run, plan, seeds, config and arms always name the same experiment, so the same
    command resumes it."""
    import hashlib

    from gradlens.train.config import comparable

    digest = hashlib.sha256(json.dumps([design_of(plan), seeds,
                                        comparable(dataclasses.asdict(config)), arms],
                                       sort_keys=True).encode()).hexdigest()[:8]
    return f"exp-{run_name}-{digest}"[:48]


def prepare(run_dir: Path, plan: SharingPlan, seeds: list[int], config, arms: list[str] | None = None,
            name: str | None = None, budget: float | None = None,
            declared: Declaration | None = None,
            exploratory: bool = False) -> tuple[Path, dict, list[str]]:
    """Create (or find) the experiment testing ``plan``, probed in ``run_dir``: its directory,
    its spec, and notes on what was left out (the typology arm where URIEL lacks a language)."""
    from gradlens.analysis.typology import uriel_distance
    from gradlens.launch import run_dir_for
    from gradlens.store import Run

    from gradlens.evidence import run_nuisances

    with Run(run_dir) as run:
        n_params = {str(k): int(v) for k, v in zip(run.modules.name, run.modules.n_params)}
        run_name = run.path.parent.name
        losses = run_nuisances(run).get("loss")
    arms = list(DEFAULT_ARMS) if arms is None else list(arms)
    notes, typology = [], None
    if "typology" in arms:
        try:
            typology = uriel_distance(list(plan.languages), "genetic")
        except ValueError as exc:
            notes.append(f"no typology arm ({exc})")
            arms.remove("typology")
    directory = run_dir_for(name or default_name(run_name, plan, seeds, config, arms))
    directory.mkdir(parents=True, exist_ok=True)
    return directory, create(directory, plan, n_params, seeds, config, typology, budget, arms,
                             declared, exploratory, losses), notes


def experiments(root: Path | None = None) -> list[Path]:
    """Every experiment directory in the runs directory, newest first."""
    return spec_dirs(SPEC, root)


def spec_dirs(spec_file: str, root: Path | None = None) -> list[Path]:
    """Every directory of the runs directory holding ``spec_file`` (an experiment's or a
    validation's), newest first."""
    from gradlens.paths import runs_dir

    root = root or runs_dir()
    found = [p.parent for p in root.glob(f"*/{spec_file}")] if root.is_dir() else []
    return sorted(found, key=lambda p: (p / spec_file).stat().st_mtime, reverse=True)


def read_spec(directory: Path) -> dict:
    return read_spec_file(Path(directory) / SPEC, SCHEMA, ("plan", "seeds", "config", "arms",
                                                           "jobs"), ExperimentError,
                          "an experiment")


def read_spec_file(path: Path, schema: str, keys: tuple[str, ...], error: type,
                   what: str) -> dict:
    """A spec file (an experiment's or a validation's): JSON, of ``schema``, with ``keys``;
    anything else raises ``error`` naming the file and the field."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: not found; is {path.parent} {what}?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(spec, dict) or spec.get("schema") != schema:
        raise error(f"{path}: 'schema' must be {schema!r}")
    for key in keys:
        if key not in spec:
            raise error(f"{path}: missing key {key!r}")
    return spec


def jobs_of(spec: dict) -> list[tuple[str, int, str]]:
    """(arm, seed, job id) of every job, seed by seed so that early results cover all arms."""
    return [(arm, int(seed), spec["jobs"][arm][str(seed)])
            for seed in spec["seeds"] for arm in spec["arms"]]


# -- running ----------------------------------------------------------------------------------
def current_jobs(spec: dict) -> list[tuple[str, int, str, object]]:
    """(arm, seed, job id, the job with its state brought up to date, or None before it is
    submitted) of every job of the experiment."""
    from gradlens.jobs import JobError, Registry, refresh_job

    registry = Registry()
    out = []
    for arm, seed, jid in jobs_of(spec):
        try:
            job = refresh_job(registry, registry.get(jid))
        except JobError:
            job = None
        out.append((arm, seed, jid, job))
    return out


def launch(directory: Path, backend: str = "local", ray_address: str | None = None) -> list[str]:
    """Submit every job that has not succeeded and is not running; return the ids submitted."""
    return launch_jobs(directory, read_spec(directory), SPEC, backend, ray_address)


def launch_jobs(directory: Path, spec: dict, spec_file: str, backend: str = "local",
                ray_address: str | None = None) -> list[str]:
    """Submit every job of ``spec`` (an experiment's or a validation's: its ``seeds``,
    ``arms``, ``jobs`` and ``config``, each plan in ``plans/<arm>-s<seed>.json``, the spec in
    ``spec_file``) that has not succeeded and is not running; return the ids submitted."""
    from gradlens.jobs import submit
    from gradlens.train.config import TrainConfig

    started = []
    for arm, seed, jid, job in current_jobs(spec):
        if job is not None and (job.active or job.state == "succeeded"):
            continue
        cfg = TrainConfig.from_dict({**spec["config"], "seed": seed},
                                    str(Path(directory) / spec_file))
        submit(Path(directory) / PLANS / f"{arm}-s{seed}.json", cfg, backend, name=jid,
               ray_address=ray_address)
        started.append(jid)
    return started


def status(directory: Path) -> list[dict]:
    """One row per job: arm, seed, job, state (``not submitted`` before it is), steps done."""
    return job_rows(read_spec(directory))


def job_rows(spec: dict) -> list[dict]:
    """``status``'s rows for any spec with seeds, arms and jobs (a validation's too)."""
    from gradlens.launch import log_tail
    from gradlens.paths import runs_dir
    from gradlens.train.config import LOG

    rows = []
    for arm, seed, jid, job in current_jobs(spec):
        state, reason = (job.state, job.reason) if job is not None else ("not submitted", "")
        records = read_metrics(runs_dir() / jid / METRICS_FILE)
        dev = latest_dev(records)
        rows.append({"arm": arm, "seed": seed, "job": jid, "state": state, "reason": reason,
                     "step": last_step(records), "steps": int(spec["config"]["steps"]),
                     "dev_step": dev[0] if dev else None, "dev_chrf": dev[1] if dev else None,
                     "activity": log_tail(runs_dir() / jid / LOG, 1).split(" ", 2)[-1]
                     if state == "running" else ""})
    return rows


def dev_curves(spec: dict) -> tuple[list[int], dict[str, list[float | None]]]:
    """Each arm's dev chrF (all languages) at every evaluation step, averaged over the seeds
    evaluated there so far: the curves to follow while the jobs run."""
    from gradlens.paths import runs_dir

    at: dict[str, dict[int, list[float]]] = {}
    for arm, _seed, jid in jobs_of(spec):
        for step, chrf in dev_chrf(read_metrics(runs_dir() / jid / METRICS_FILE)):
            at.setdefault(arm, {}).setdefault(step, []).append(chrf)
    steps = sorted({s for per in at.values() for s in per})
    return steps, {arm: [float(np.mean(per[s])) if s in per else None for s in steps]
                   for arm, per in at.items()}


def dev_chrf(records: list[dict]) -> list[tuple[int, float]]:
    """(step, dev chrF over all languages) of each evaluation, by step."""
    steps, series = score_curves(records, "dev", "chrf")
    return [(int(s), float(v)) for s, v in zip(steps, series.get(ALL, [])) if v is not None]


def below_start(spec: dict) -> list[tuple[str, float, float]]:
    """(job, start chrF, latest chrF) of every job whose latest test evaluation is more than
    ``metrics.FAR_BELOW`` points under its starting model's: training that made the model
    worse, whatever the arms' comparison says."""
    from gradlens.paths import runs_dir

    return [(jid, *fell) for _arm, _seed, jid in jobs_of(spec)
            if (fell := fell_below_start(read_metrics(runs_dir() / jid / METRICS_FILE)))]


def latest_dev(records: list[dict]) -> tuple[int, float] | None:
    """The step and dev chrF (all languages) of the latest evaluation: an intermediate score
    while the job runs."""
    dev = dev_chrf(records)
    return dev[-1] if dev else None


def progress(rows: list[dict]) -> tuple[int, int]:
    """Steps done and steps in all, over every job."""
    done = sum(r["steps"] if r["state"] == "succeeded" else min(r["step"], r["steps"])
               for r in rows)
    return done, sum(r["steps"] for r in rows)


# -- scoring ----------------------------------------------------------------------------------
def selected_step(records: list[dict]) -> int | None:
    """The evaluation step after training began with the best dev chrF over all languages (the
    later on a tie); None before any such evaluation. The starting model (step 0) is the
    baseline, never an arm's result: the arms are compared as trained."""
    dev = [(s, v) for s, v in dev_chrf(records) if s > 0]
    return max(dev, key=lambda sc: (sc[1], sc[0]))[0] if dev else None


def test_rows(job_dir: Path, step: int) -> list[dict]:
    """The scored test hypotheses of a job at ``step``: language, id, ref, hyp."""
    path = job_dir / "hyps" / f"test-{step:06d}.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ExperimentError(f"{path}: missing; the job evaluated test at step {step} but its "
                              "hypotheses are gone") from None
    try:
        rows = [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as exc:
        raise ExperimentError(f"{path}: not JSON lines ({exc})") from None
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not all(k in r for k in ("language", "id", "ref", "hyp")):
            raise ExperimentError(f"{path}: line {i + 1} needs language, id, ref and hyp")
    return sorted(rows, key=lambda r: (r["language"], r["id"]))


def by_language(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Corpus BLEU and chrF per language and over all of them."""
    langs = list(dict.fromkeys(r["language"] for r in rows))
    out = {lang: corpus_scores([r["hyp"] for r in rows if r["language"] == lang],
                               [r["ref"] for r in rows if r["language"] == lang]) for lang in langs}
    out[ALL] = corpus_scores([r["hyp"] for r in rows], [r["ref"] for r in rows])
    return out


def seed_scores(outputs: dict[str, dict[int, list[dict]]]) -> dict[str, dict[int, dict]]:
    """Each arm's and seed's corpus scores per language (``by_language``)."""
    return {arm: {seed: by_language(rows) for seed, rows in per.items()}
            for arm, per in outputs.items()}


def aggregate(outputs: dict[str, dict[int, list[dict]]], reference: str = "proposed",
              trials: int | None = None, scores: dict | None = None,
              declared: Declaration | None = None) -> dict:
    """Arms compared from their test outputs ``outputs[arm][seed]`` (rows sorted alike).

    Per arm and language: the mean over seeds with its 95 % t interval. Per baseline and
    metric, the difference of ``reference`` minus it over the seeds both have: its mean and t
    interval over seeds (``delta``); the paired t and sign tests over seeds (``seeds``), the t
    test's p Holm-adjusted over the baselines (``p_holm``); a hierarchical bootstrap interval
    (``interval``: seeds, then test utterances); and, secondary, the paired randomisation over
    the pooled test utterances (``p_utterances``), which speaks to the test set, not to training
    runs. The verdict (``verdict``) needs the seed-level Holm p below the declared level and the
    hierarchical interval clear of 0. ``scores``: ``seed_scores(outputs)``, when the caller
    already has them.
    """
    declared = declared or Declaration()
    scores = seed_scores(outputs) if scores is None else scores
    arms = {}
    for arm, per in scores.items():
        langs = list(next(iter(per.values()))) if per else []
        arms[arm] = {"seeds": sorted(per), "scores": {
            lang: {m: seed_interval([per[s][lang][m] for s in per]).as_dict() for m in METRICS}
            for lang in langs}}
    comparisons: dict[str, dict] = {}
    ref = outputs.get(reference, {})
    for arm, per in outputs.items():
        if arm == reference:
            continue
        seeds = sorted(set(per) & set(ref))
        if not seeds:
            continue
        for s in seeds:
            if [r["id"] for r in per[s]] != [r["id"] for r in ref[s]]:
                raise ExperimentError(f"{arm} seed {s} was tested on other utterances than "
                                      f"{reference}: the test set must be the same for every arm")
        pooled_ref = [r["hyp"] for s in seeds for r in ref[s]]
        pooled = [r["hyp"] for s in seeds for r in per[s]]
        refs = [r["ref"] for s in seeds for r in ref[s]]
        test = paired_test(pooled, pooled_ref, refs, **({"trials": trials} if trials else {}))
        comparisons[arm] = {"seeds": seeds}
        for m in METRICS:
            deltas = [scores[reference][s][ALL][m] - scores[arm][s][ALL][m] for s in seeds]
            interval = None  # one seed: no interval over seeds to draw
            if len(seeds) > 1:
                low, high = hierarchical_interval(
                    [[r["hyp"] for r in ref[s]] for s in seeds],
                    [[r["hyp"] for r in per[s]] for s in seeds],
                    [[r["ref"] for r in ref[s]] for s in seeds], m)
                interval = {"low": low, "high": high}
            comparisons[arm][m] = {
                "delta": seed_interval(deltas).as_dict(), "seeds": seed_test(deltas).as_dict(),
                "interval": interval,
                "pooled_delta": test[m]["delta"], "p_utterances": test[m]["p"]}
    for m in METRICS:
        tested = {arm: c[m]["seeds"]["t_p"] for arm, c in comparisons.items()
                  if c[m]["seeds"]["t_p"] is not None}
        adjusted = holm(tested) if tested else {}
        for arm, c in comparisons.items():
            c[m]["p_holm"] = adjusted.get(arm)
            c[m]["verdict"] = verdict(c[m]["interval"], adjusted.get(arm), declared.level())
    return {"reference": reference, "arms": arms, "comparisons": comparisons,
            "declared": declared.to_dict()}


RESULTS_VERSION = 3  # bump when results.json gains or changes fields: older files are recollected
ALPHA = 0.05
# seeds are what speaks to training runs: the test-set p alone called two seeds of one arm
# different in about half of pairs (docs/results/aa-check.md)
VERDICTS = {"better": "better: seed-level Holm p below the declared level and the hierarchical "
                      "interval above 0",
            "worse": "worse: seed-level Holm p below the declared level and the hierarchical "
                     "interval below 0",
            "not shown": "no difference shown: the interval covers 0, the seed-level Holm p is "
                         "not below the level, or one seed gives no test"}


def verdict(interval: dict | None, p_holm: float | None, alpha: float = ALPHA) -> str:
    """What one comparison supports: ``better`` or ``worse`` only when the paired test over
    seeds (Holm) rejects at ``alpha`` and the hierarchical interval lies on one side of 0;
    ``not shown`` otherwise (always with one seed, which gives neither)."""
    if p_holm is not None and interval is not None and p_holm < alpha:
        if interval["low"] > 0:
            return "better"
        if interval["high"] < 0:
            return "worse"
    return "not shown"


def primary_conclusion(results: dict) -> str:
    """The declared primary comparison's verdict, first and alone, and whether it is
    confirmatory."""
    declared = results.get("declared")
    if declared is None:
        return ("No primary comparison was declared (the experiment was made before "
                "declarations): every comparison below is exploratory.")
    metric, base = declared["metric"], declared["baseline"]
    c = results["comparisons"].get(base)
    label = ("exploratory: seeds were added after looking" if declared.get("exploratory")
             else "declared before it ran")
    if c is None:
        return f"Primary ({label}): {metric}, proposed against {base}: no result yet."
    v = c[metric]["verdict"]
    said = {"better": "proposed is better", "worse": "proposed is worse",
            "not shown": "no difference is shown"}[v]
    p = c[metric]["p_holm"]
    iv = c[metric]["interval"]
    detail = (f"Δ {c[metric]['delta']['mean']:+.2f}, interval [{iv['low']:.2f}, {iv['high']:.2f}], "
              f"seed-level Holm p {p:.3g} over {len(c['seeds'])} seeds" if iv and p is not None
              else f"Δ {c[metric]['delta']['mean']:+.2f} on {len(c['seeds'])} seed(s), no test")
    return f"Primary ({label}): {metric}, proposed against {base}: {said} ({detail})."


def conclusion(results: dict, metric: str = "chrf") -> str:
    """One plain sentence on what the experiment shows for ``metric``."""
    ref, comps = results["reference"], results["comparisons"]
    if not comps:
        return "No baseline has finished a seed yet: nothing to conclude."
    by = {v: [a for a, c in comps.items() if c[metric]["verdict"] == v] for v in VERDICTS}
    parts = []
    if by["better"]:
        parts.append(f"{ref} is better than {', '.join(by['better'])}")
    if by["worse"]:
        parts.append(f"{ref} is worse than {', '.join(by['worse'])}")
    if by["not shown"]:
        parts.append(f"no difference is shown against {', '.join(by['not shown'])}")
    head = "; ".join(parts)
    tail = "" if results.get("complete", True) else " (intermediate: not every job has finished)"
    return f"{metric}: {head[0].upper()}{head[1:]}{tail}."


def job_outputs(spec: dict) -> tuple[dict[str, dict[int, list[dict]]], dict[str, dict[int, int]]]:
    """Test outputs at the dev-chosen step of every job that succeeded, and that step."""
    outputs: dict[str, dict[int, list[dict]]] = {}
    steps: dict[str, dict[int, int]] = {}
    for arm, seed, job_dir, records in succeeded_records(spec):
        step = selected_step(records)
        if step is None:
            raise ExperimentError(f"{job_dir / METRICS_FILE}: the job succeeded without a "
                                  "dev evaluation, so no checkpoint can be chosen")
        outputs.setdefault(arm, {})[seed] = test_rows(job_dir, step)
        steps.setdefault(arm, {})[seed] = step
    return outputs, steps


def succeeded_records(spec: dict):
    """(arm, seed, job directory, its metrics records) of every job of ``spec`` (an
    experiment's or a validation's) that has succeeded."""
    from gradlens.paths import runs_dir

    for arm, seed, jid, job in current_jobs(spec):
        if job is not None and job.state == "succeeded":
            yield arm, seed, runs_dir() / jid, read_metrics(runs_dir() / jid / METRICS_FILE)


def collect(directory: Path, trials: int | None = None) -> dict:
    """Score every succeeded job; write ``results.json`` and ``scores.csv``; return the results."""
    spec = read_spec(directory)
    outputs, steps = job_outputs(spec)
    scores = seed_scores(outputs)  # once, for the results and the CSV
    declared = Declaration.of(spec)
    results = aggregate(outputs, trials=trials, scores=scores, declared=declared) if outputs else {
        "reference": "proposed", "arms": {}, "comparisons": {}}
    results["declared"] = None if declared is None else declared.to_dict()
    for arm, entry in results["arms"].items():
        entry["steps"] = {str(s): steps[arm][s] for s in entry["seeds"]}
        entry["extra_params"] = spec["arms"][arm]["extra_params"]
    n_jobs = sum(len(v) for v in spec["jobs"].values())
    results.update(complete=sum(len(v) for v in outputs.values()) == n_jobs,
                   jobs_done=sum(len(v) for v in outputs.values()), jobs=n_jobs,
                   test_utterances=len(next(iter(next(iter(outputs.values())).values())))
                   if outputs else 0, collected=time.time(), version=RESULTS_VERSION)
    write_text(Path(directory) / RESULTS, json.dumps(results, indent=2))
    write_text(Path(directory) / SCORES, scores_csv(outputs, scores, steps))
    return results


def scores_csv(outputs: dict[str, dict[int, list[dict]]], scores: dict[str, dict[int, dict]],
               steps: dict[str, dict[int, int]]) -> str:
    """One row per arm, seed and language (and ``all``): the chosen step, BLEU and chrF."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["arm", "seed", "step", "language", "n", *METRICS])
    for arm, per in outputs.items():
        for seed, rows in sorted(per.items()):
            for lang, sc in scores[arm][seed].items():
                n = sum(1 for r in rows if lang in (ALL, r["language"]))
                w.writerow([arm, seed, steps[arm][seed], lang, n,
                            *(f"{sc[m]:.2f}" for m in METRICS)])
    return buf.getvalue()


def results(directory: Path, rows: list[dict]) -> dict | None:
    """The results of the jobs that have succeeded: ``results.json`` while it covers them all,
    else collected afresh; None before any job succeeded."""
    return up_to_date(rows, read_results(directory), RESULTS_VERSION, lambda: collect(directory))


def up_to_date(rows: list[dict], stored: dict | None, version: int, collect) -> dict | None:
    """``stored`` results while they cover every job of ``rows`` that has succeeded and are of
    ``version``, else ``collect()``; None before any job succeeded (an experiment's or a
    validation's)."""
    done = sum(r["state"] == "succeeded" for r in rows)
    if not done:
        return None
    if stored is not None and stored.get("jobs_done") == done and stored.get("version") == version:
        return stored
    return collect()


def read_json(path: Path) -> dict | None:
    """A results file; None when it is missing or torn."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def read_results(directory: Path) -> dict | None:
    return read_json(Path(directory) / RESULTS)


def side_by_side(outputs: dict[str, dict[int, list[dict]]], arms: list[str], seed: int,
                 n: int = 6) -> list[dict]:
    """A few test utterances where the arms' hypotheses differ: id, reference, one per arm."""
    have = [a for a in arms if seed in outputs.get(a, {})]
    if not have:
        return []
    rows = {a: {r["id"]: r for r in outputs[a][seed]} for a in have}
    ids = list(rows[have[0]])
    differing = [i for i in ids if len({rows[a][i]["hyp"] for a in have if i in rows[a]}) > 1]
    picked = (differing + [i for i in ids if i not in differing])[:n]
    return [{"id": i, "reference": rows[have[0]][i]["ref"],
             **{a: rows[a][i]["hyp"] for a in have if i in rows[a]}} for i in picked]


def load_arm_plan(directory: Path, arm: str, seed: int) -> SharingPlan:
    return load_plan(Path(directory) / PLANS / f"{arm}-s{seed}.json")
