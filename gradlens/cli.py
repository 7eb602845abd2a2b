"""The gradlens command line: probe, info, analyze, plan, train, experiment, validate, jobs, demo,
app.

    python -m gradlens probe --languages spa deu fin --steps 10
    python -m gradlens info runs/<id>
    python -m gradlens analyze runs/<id>           # CSV matrices and a summary in runs/<id>/analysis
    python -m gradlens plan runs/<id> --budget 0.1 # the proposed sharing plan, runs/<id>/plan.json
    python -m gradlens train --plan runs/<id>/plan.json    # a training job; follows it
    python -m gradlens experiment runs/<id> --seeds 3     # the plan against its baselines
    python -m gradlens validate runs/<id> --modules 10    # does the predicted gain predict?
    python -m gradlens jobs                        # jobs and their states; jobs logs|cancel ID
    python -m gradlens demo --control               # the positive control run, runs/control
    python -m gradlens app          # makes the demo run if there is none, then serves the app
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from gradlens.errors import ConfigError, GradlensError
from gradlens.bars import evidence_with_bar, step_bar
from gradlens.paths import AGREEMENT_FILE, runs_dir


def _add_dataclass_flags(parser: argparse.ArgumentParser, cls, skip: tuple[str, ...] = (),
                         defaults: dict | None = None) -> None:
    """A flag per field of ``cls``; ``defaults`` overrides some of the fields' defaults."""
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        default = (defaults or {}).get(f.name, default)
        flag = "--" + f.name.replace("_", "-")
        helptext = f"{f.metadata.get('help', '')} (default: {default})"
        if isinstance(default, list):
            parser.add_argument(flag, nargs="+", default=default, help=helptext)
        elif isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=helptext)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=helptext)


def cmd_probe(args) -> int:
    from gradlens.probe_config import ProbeConfig
    from probes.loop import probe

    cfg = ProbeConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ProbeConfig)})
    bar, on_step = step_bar(cfg.steps, "probe")
    with bar:
        out = probe(cfg, runs_dir(), on_step=on_step)
    print(out)
    return 0


def cmd_info(args) -> int:
    from gradlens.store import Run

    with Run(args.run) as run:
        print(f"run        {run.path.parent}")
        print(f"model      {run.model}")
        print(f"languages  {' '.join(run.languages)}")
        print(f"tasks      {' '.join(run.tasks)}")
        print(f"modules    {len(run.modules)} ({int(run.modules.n_params.sum()):,} parameters, "
              f"{int(run.modules.exact.sum())} stored exactly)")
        print(f"steps done {len(run.done_steps)} of {run.planned_steps}")
        print(f"sketch     k={run.sketch_dim} (fold {run.sketch_fold}), seed={run.sketch_seed}")
        print(f"size       {run.size_bytes() / 1e6:.1f} MB")
        if args.modules:
            for name, n, exact in zip(run.modules.name, run.modules.n_params, run.modules.exact):
                print(f"  {name:60s} {int(n):>12,}{'  exact' if exact else ''}")
    return 0


def cmd_analyze(args) -> int:
    from gradlens.analysis.overview import overview
    from gradlens.report import write_analysis
    from gradlens.store import Run

    with Run(args.run) as run:
        evidence = evidence_with_bar(run, args.rank, args.groups)
        out = Path(args.out) if args.out else run.path.parent / "analysis"
        written = write_analysis(out, run.path.parent.name, evidence, run.tasks,
                                 len(run.done_steps), overview(evidence, args.permutations),
                                 trained_between=run.train_steps_between)
    print(written[-1].read_text(encoding="utf-8"), end="")
    print(f"wrote {len(written)} files to {out}")
    return 0


def cmd_plan(args) -> int:
    from gradlens.analysis.allocation import nothing_split_text, propose_plan
    from gradlens.paths import PLAN_FILE
    from gradlens.plan import format_groups, save_plan
    from gradlens.report import moving_model_caveat
    from gradlens.store import Run

    def propose(run):
        evidence = evidence_with_bar(run, args.rank, args.groups)
        return propose_plan(evidence, args.budget, int(run.modules.n_params.sum()), run.model,
                            run.languages, str(run.path.parent), args.alpha)

    with Run(args.run) as run:
        model, languages = run.model, sorted(run.languages)
        for path in args.against or []:  # refused before any evidence is computed
            with Run(path) as other:
                if other.model != model or sorted(other.languages) != languages:
                    raise ConfigError(
                        f"--against {path}: it probes {other.model} on "
                        f"{' '.join(sorted(other.languages))}, and {args.run} probes {model} on "
                        f"{' '.join(languages)}; only probes of the same model and languages "
                        "compare")
        plan = propose(run)
        total = int(run.modules.n_params.sum())
        extra = plan.extra_parameters(dict(zip(run.modules.name, run.modules.n_params)))
        out = Path(args.out) if args.out else run.path.parent / PLAN_FILE
        save_plan(plan, out, list(run.modules.name))
        caveat = moving_model_caveat(run.train_steps_between)
    for name, entry in plan.modules.items():
        groups = format_groups(entry.groups)
        ev = entry.evidence
        gain = "not measured" if ev["split_gain"] is None else f"{ev['split_gain']:.3g}"
        print(f"  {name:55s} {groups:40s} gain held out {gain}, "
              f"+{ev['extra_params']:,} parameters")
    if not plan.modules:
        print(f"{nothing_split_text(plan.decisions)}: the plan shares every module (see "
              "'decisions' in the plan for each module's figures)")
    print(f"{len(plan.modules)} module(s) split, {extra:,} extra parameters "
          f"({extra / total:.1%} of {total:,}; budget {args.budget:.1%})")
    if caveat:
        print(f"CAVEAT: {caveat}")
    print(f"wrote {out}")
    if args.against:
        from gradlens.analysis.stability import plan_agreement
        from gradlens.atomic import write_text

        others = []
        for path in args.against:
            with Run(path) as other:
                others.append(propose(other))
        agreement = plan_agreement([plan, *others])
        where = out.parent / AGREEMENT_FILE
        write_text(where, json.dumps({"runs": [str(args.run), *map(str, args.against)],
                                      **agreement.as_dict()}, indent=1))
        print(f"agreement with {len(args.against)} other probe(s) of the model: "
              f"{agreement.summary()}")
        print(f"wrote {where}")
    return 0


def _follow(job_id: str) -> int:
    """A progress bar over the job's steps until it ends; Ctrl-C leaves it running."""
    import time

    from tqdm import tqdm

    from gradlens.jobs import Registry, refresh_job
    from gradlens.metrics import METRICS, final_scores, last_step, read_metrics

    registry = Registry()
    job = registry.get(job_id)
    path = job.dir() / METRICS
    seen = None
    try:
        with tqdm(total=job.config["steps"], desc=job.id, unit="step") as bar:
            while True:
                job = refresh_job(registry, registry.get(job_id))
                records = read_metrics(path)
                if (last_step(records), job.state) != seen:
                    seen = (last_step(records), job.state)
                    bar.n = seen[0]
                    bar.set_postfix(state=job.state)
                    bar.refresh()
                if not job.active:
                    break
                time.sleep(1.0)
    except KeyboardInterrupt:
        print(f"\nleft {job_id} running; `python -m gradlens jobs logs {job_id}` follows it")
        return 0
    for lang, s in final_scores(read_metrics(path), "test").items():
        print(f"  test {lang:5s} BLEU {s['bleu']:5.1f}  chrF {s['chrf']:5.1f}")
    print(f"{job.id}: {job.state}" + (f" ({job.reason})" if job.reason else ""))
    return 0 if job.state == "succeeded" else 1


def cmd_train(args) -> int:
    from gradlens.jobs import submit
    from gradlens.train.config import TrainConfig

    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    job = submit(args.plan, cfg, args.backend, args.name, args.gpus, args.shared, args.ray_address)
    print(f"{job.id}: {job.state} on {job.backend} ({job.kind} plan), in {job.dir()}")
    return 0 if args.detach else _follow(job.id)


def cmd_jobs(args) -> int:
    import time

    from gradlens.jobs import Registry, cancel, logs, refresh

    registry = Registry()
    if args.action == "list":
        jobs = refresh(registry)
        if not jobs:
            print(f"no jobs in {registry.path}")
        for job in jobs:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created))
            print(f"{job.id:48s} {job.state:10s} {job.backend:6s} {job.kind:9s} {when}"
                  + (f"  {job.reason}" if job.reason else ""))
        return 0
    if not args.job:
        print(f"gradlens: error: `jobs {args.action}` needs a job id", file=sys.stderr)
        return 2
    if args.action == "cancel":
        job = cancel(args.job, registry)
        print(f"{job.id}: {job.state}")
        return 0
    if args.follow:
        return _follow(args.job)
    print(logs(registry.get(args.job), args.lines))
    return 0


def _jobs_config(args):
    """The ``TrainConfig`` of an experiment's or a validation's jobs from the command's flags
    (after checking ``--seeds``): they train on the corpus the run probed unless told
    otherwise; each job's seed is its own."""
    from gradlens.store import Run
    from gradlens.train.config import TrainConfig

    if args.seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {args.seeds}")
    with Run(args.run) as run:
        corpus = args.corpus or run.probe_config.get("corpus", "spoken-numbers")
    return TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                          if f.name not in ("seed", "corpus")}, corpus=corpus)


def cmd_experiment(args) -> int:
    from gradlens import experiment as ex
    from gradlens.analysis.allocation import nothing_split_text, propose_plan
    from gradlens.arms import DEFAULT_ARMS
    from gradlens.plan import load_plan
    from gradlens.store import Run

    cfg = _jobs_config(args)
    with Run(args.run) as run:
        if args.plan:
            plan = load_plan(args.plan, list(run.modules.name))
        else:
            plan = propose_plan(evidence_with_bar(run), args.budget, int(run.modules.n_params.sum()),
                                run.model, run.languages, str(run.path.parent), args.alpha)
    if not plan.modules:
        why = f" ({nothing_split_text(plan.decisions)})" if plan.decisions else ""
        print(f"gradlens: the plan splits no module{why}: every arm would be the shared model, "
              "so there is nothing to compare", file=sys.stderr)
        return 1
    arms = args.arms.split(",") if args.arms else list(DEFAULT_ARMS)
    declared = ex.Declaration(metric=args.primary_metric, baseline=args.primary_baseline,
                              looks=tuple(args.looks or ()))
    directory, spec, notes = ex.prepare(Path(args.run), plan, list(range(args.seeds)), cfg, arms,
                                        args.name, None if args.plan else args.budget, declared,
                                        args.exploratory)
    for note in notes:
        print(f"gradlens: {note}", file=sys.stderr)
    print(f"experiment {directory.name}: {len(spec['arms'])} arms × {args.seeds} seed(s) in "
          f"{directory}")
    for arm, entry in spec["arms"].items():
        print(f"  {arm:15s} {entry['extra_params']:>9,} extra parameters  {entry['description']}")
    code = _launch_and_follow(args, directory, ex)
    if code is not None:
        return code
    results = ex.collect(directory, args.trials)
    if results["jobs_done"]:
        print(format_results(results))
        print(f"wrote {directory / ex.RESULTS} and {directory / ex.SCORES}")
    if not results["complete"]:
        print("not every job succeeded: the figures cover those that did; run the same command "
              "again to resume the others", file=sys.stderr)
    return 0 if results["complete"] else 1


def _launch_and_follow(args, directory: Path, kind) -> int | None:
    """Submit the jobs of the experiment or validation in ``directory`` (``kind``: the
    ``gradlens.experiment`` or ``gradlens.validation`` module) and follow them with one
    progress bar. The command's exit code when it ends here (``--detach``: 0; Ctrl-C: 130,
    the jobs go on); None once none is queued or running."""
    started = kind.launch(directory, args.backend, args.ray_address)
    print(f"submitted {len(started)} job(s); the others have succeeded or are running")
    if args.detach:
        return 0
    if _follow_jobs(directory.name, lambda: kind.status(directory)) is None:
        return 130
    return None


def _follow_jobs(label: str, rows_of) -> bool | None:
    """A progress bar over the steps of every job ``rows_of()`` lists (an experiment's or a
    validation's ``status``) until none is queued or running; whether all of them succeeded
    (None when Ctrl-C stopped following: the jobs go on)."""
    import time

    from tqdm import tqdm

    from gradlens import experiment as ex

    rows = rows_of()
    try:
        with tqdm(total=ex.progress(rows)[1], desc=label, unit="step") as bar:
            while True:
                rows = rows_of()
                bar.n = ex.progress(rows)[0]
                states = [r["state"] for r in rows]
                bar.set_postfix(done=f"{states.count('succeeded')}/{len(rows)} jobs",
                                running=",".join(r["job"].rsplit("-", 2)[-2] + "/" + str(r["seed"])
                                                 for r in rows if r["state"] == "running"))
                bar.refresh()
                if not any(s in ("queued", "running") for s in states):
                    break
                time.sleep(2)
    except KeyboardInterrupt:
        print("\nstopped following; the jobs go on (run the same command to follow them again)")
        return None
    for r in rows:
        if r["state"] != "succeeded":
            print(f"  {r['job']}: {r['state']}" + (f" ({r['reason']})" if r["reason"] else ""))
    return all(r["state"] == "succeeded" for r in rows)


def cmd_validate(args) -> int:
    from gradlens import validation as va
    from gradlens.modules import module_label

    cfg = _jobs_config(args)
    directory, spec, notes = va.prepare(Path(args.run), args.modules, args.groupings.split(","),
                                        list(range(args.seeds)), cfg, args.budget, args.alpha,
                                        args.name)
    for note in notes:
        print(f"gradlens: {note}", file=sys.stderr)
    print(f"validation {directory.name}: {len(spec['modules'])} modules × "
          f"{len(spec['groupings'])} groupings and the shared fine-tune, × {args.seeds} seed(s), "
          f"{cfg.steps} steps each, in {directory}")
    for i, m in enumerate(spec["modules"]):
        gain = m["predictors"]["gain"]
        print(f"  m{i:02d} {module_label(m['module']):45s} predicted gain {gain:.3g}"
              + ("  (in the plan)" if m["in_plan"] else ""))
    code = _launch_and_follow(args, directory, va)
    if code is not None:
        return code
    results = va.collect(directory)
    print(format_validation(results))
    print(f"wrote {directory / va.RESULTS} and {directory / va.TABLE}")
    if not results["complete"]:
        print("not every job succeeded: the figures cover those that did; run the same command "
              "again to resume the others", file=sys.stderr)
    return 0 if results["complete"] else 1


def format_validation(results: dict) -> str:
    """The answer first, then each predictor's rank correlation and each grouping's benefit."""
    from gradlens.analysis.validation import RankCorrelation, prediction_verdict
    from gradlens.validation import PREDICTORS

    lines = [results["answer"], f"{results['jobs_done']} of {results['jobs']} jobs done; "
             "benefit = dev ST loss of the shared fine-tune minus the split one's (positive: "
             "the split helped)"]
    for p, what in PREDICTORS.items():
        lines.append("  " + prediction_verdict(what, RankCorrelation(**results["correlations"][p])))
    for g, b in results["benefit"].items():
        iv = f" [{b['low']:+.4f}, {b['high']:+.4f}]" if b["low"] is not None else ""
        lines.append(f"  {g:9s} groups: mean benefit {b['mean']:+.4f}{iv} over {b['n']} modules")
    return "\n".join(lines)


def seed_p(comparison: dict) -> str:
    """The seed-level test and interval of one comparison of one metric, as text."""
    p, iv = comparison["p_holm"], comparison["interval"]
    if p is None or iv is None:
        return "no seed-level test (one seed)"
    return (f"seed-level Holm p={p:.3g}, hierarchical interval [{iv['low']:.2f}, "
            f"{iv['high']:.2f}], {comparison['seeds']['positive']} of "
            f"{comparison['seeds']['n']} seeds ahead")


def format_results(results: dict) -> str:
    """The arms' test scores (mean and 95 % interval over seeds) and the reference arm's
    differences from each baseline, as text."""
    from gradlens.experiment import conclusion, primary_conclusion

    def iv(d: dict) -> str:
        return (f"{d['mean']:6.2f} [{d['low']:6.2f}, {d['high']:6.2f}]" if d["low"] is not None
                else f"{d['mean']:6.2f} (one seed)")

    lines = [primary_conclusion(results),
             f"test scores over seeds (mean [95 % t interval]); {results['jobs_done']} of "
             f"{results['jobs']} jobs done, {results['test_utterances']} test utterances per seed"
             + ("" if results["complete"] else " (intermediate: not every job has finished)")]
    for arm, entry in results["arms"].items():
        sc = entry["scores"]["all"]
        lines.append(f"  {arm:15s} BLEU {iv(sc['bleu'])}  chrF {iv(sc['chrf'])}  "
                     f"extra {entry['extra_params']:,}")
    ref = results["reference"]
    for arm, c in results["comparisons"].items():
        lines.append(f"  {ref} − {arm}: " + "; ".join(
            f"{m} {iv(c[m]['delta'])} {seed_p(c[m])}, secondary test-set p="
            f"{c[m]['p_utterances']:.3g} ({c[m]['verdict']})" for m in ("bleu", "chrf")))
    lines += [conclusion(results, m) for m in ("chrf", "bleu")]
    return "\n".join(lines)


def cmd_manifest(args) -> int:
    from tqdm import tqdm

    from gradlens.corpus.releases import covost_manifests, fleurs_manifests

    bar = tqdm(total=1, desc=f"reading {args.kind}", unit="file")

    def progress(done: int, total: int, what: str) -> None:
        bar.total, bar.n = total, done
        bar.set_postfix_str(what)
        bar.refresh()

    common = dict(languages=args.languages, splits=tuple(args.splits), limit=args.max,
                  skip_bad_audio=args.skip_bad_audio, progress=progress)
    if args.kind == "fleurs":
        if args.out:
            raise ConfigError("--out: a FLEURS manifest is written in its folder (its audio paths "
                              "stay inside a manifest's folder); leave --out out")
        summary = fleurs_manifests(Path(args.root), **common)
    else:
        summary = covost_manifests(Path(args.root), Path(args.out or Path(args.root) / "gradlens"),
                                   **common)
    bar.close()
    print("\n".join(summary.lines()))
    return 0


def ensure_demo(control: bool = False) -> Path:
    """Make (or finish) the demo run on the embedded default, with progress bars: train the
    tiny model on the spoken numbers (cached), then probe it. ``control``: the same on the
    positive control: the model trained on the ordinary spoken numbers, probed on the corpus whose
    planted group's English targets are in reversed word order."""
    from tqdm import tqdm

    from gradlens.demo import RECIPE, demo_config, demo_done
    from gradlens.store import Run
    from probes.loop import probe
    from probes.pretrain import pretrained_tiny

    cfg = demo_config(control=control)
    out = Path(cfg.out)
    if demo_done(control):
        return out
    # the control's model learns the ordinary spoken numbers, as a pretrained model knows its
    # task; the reversed targets are new data it is then probed and fine-tuned on, where the
    # planted conflict first meets the shared parameters (as a new corpus does in real use)
    with tqdm(total=RECIPE.steps, desc=f"{out.name} 1/2: training tiny SeamlessM4T on "
              f"{RECIPE.corpus}", unit="step") as bar:
        model = pretrained_tiny(cfg.languages, cfg=RECIPE,
                                on_step=lambda done, total, _: bar.update(done - bar.n))
    cfg = dataclasses.replace(cfg, model=str(model))
    bar, on_step = step_bar(cfg.steps, f"{out.name} 2/2: probing it (CPU)")
    with bar:
        probe(cfg, runs_dir(), on_step=on_step)
    with Run(out) as run:  # analysed once here, so the app's first visit reads it back
        evidence_with_bar(run)
    return out


def cmd_demo(args) -> int:
    print(ensure_demo(args.control))
    return 0


def cmd_app(args) -> int:
    from gradlens.demo import DEMO_NAME, demo_done
    from gradlens.launch import start_demo

    if not demo_done() and start_demo(runs_dir() / DEMO_NAME):
        print("gradlens: building the demo run in the background (follow it on the Runs page)")
    cmd = [sys.executable, "-m", "gradlens.serve", "--server.headless", "true",
           "--server.address", args.address, "--server.port", str(args.port),
           "--browser.gatherUsageStats", "false"]
    print(f"gradlens: serving on http://{args.address}:{args.port}", flush=True)
    # the server (streamlit run app.py, its imports warmed: gradlens.serve) takes this process's
    # place: stopping `gradlens app` (Ctrl-C, or a signal to its pid) stops it, no child left
    os.execv(sys.executable, cmd)


def build_parser() -> argparse.ArgumentParser:
    from gradlens.probe_config import ProbeConfig

    parser = argparse.ArgumentParser(prog="gradlens", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("probe", help="capture per-module gradients into runs/<id>/grads.h5")
    _add_dataclass_flags(p, ProbeConfig)
    p.set_defaults(func=cmd_probe)
    p = sub.add_parser("manifest", help="write manifests from a corpus folder as released: "
                       "FLEURS (n-way parallel: with items) or CoVoST 2")
    p.add_argument("kind", choices=("fleurs", "covost"))
    p.add_argument("root", help="the release's folder (FLEURS: its language folders; CoVoST 2: "
                   "its TSVs beside the Common Voice clips/ folder)")
    p.add_argument("--languages", nargs="+", default=None, help="source languages, as the "
                   "release names them (fr_fr; fr) or as SeamlessM4T does (fra) (default: all)")
    p.add_argument("--splits", nargs="+", choices=("train", "dev", "test"),
                   default=["train", "dev", "test"], help="(default: train dev test)")
    p.add_argument("--max", type=int, default=0, help="rows per language and split, for a quick "
                   "probe (default: 0, all)")
    p.add_argument("--out", default=None, help="CoVoST 2: folder of the manifests and decoded "
                   "clips (default: ROOT/gradlens); FLEURS writes ROOT/gradlens-<split>.tsv")
    p.add_argument("--skip-bad-audio", action="store_true", help="leave out rows whose audio "
                   "is missing, empty or unreadable, and count them (default: stop, naming it)")
    p.set_defaults(func=cmd_manifest)
    p = sub.add_parser("info", help="languages, tasks, modules, steps done and size of a run")
    p.add_argument("run", help="run directory or grads.h5 file")
    p.add_argument("--modules", action="store_true", help="also list every module (default: off)")
    p.set_defaults(func=cmd_info)
    for name, helptext in (("analyze", "matrices as CSV and a summary of a run's evidence"),
                           ("plan", "propose a sharing plan under a parameter budget")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("run", help="run directory or grads.h5 file")
        p.add_argument("--out", default=None, help="output (default: analysis/ or plan.json "
                       "in the run directory)")
        p.add_argument("--rank", type=int, default=None,
                       help="CCA rank (default: min(8, (steps - 1) // 4))")
        p.add_argument("--groups", type=int, default=None,
                       help="groups per split module (default: the best number for each)")
        p.set_defaults(func=cmd_analyze if name == "analyze" else cmd_plan)
        if name == "analyze":
            p.add_argument("--permutations", type=int, default=999,
                           help="Mantel test permutations (default: 999)")
        else:
            p.add_argument("--against", nargs="+", default=None, metavar="RUN",
                           help="other probe runs of the same model (other seeds): propose a "
                                "plan from each with the same settings and report how well the "
                                f"plans agree, into {AGREEMENT_FILE} beside the plan")
            p.add_argument("--budget", type=float, default=0.1,
                           help="extra parameters allowed, as a fraction of the model (default: 0.1)")
            p.add_argument("--alpha", type=float, default=0.05,
                           help="false discovery rate: the Benjamini–Hochberg q-value a module's "
                                "divergence test needs for it to be split (default: 0.05)")
    from gradlens.jobs import BACKENDS
    from gradlens.train.config import TrainConfig
    from gradlens.validation import DEFAULTS as VALIDATE_DEFAULTS

    p = sub.add_parser("train", help="start a training job from a sharing plan and follow it")
    p.add_argument("--plan", required=True, help="plan.json (or .yaml) inside the runs directory")
    p.add_argument("--backend", choices=BACKENDS, default="local", help="where it runs (default: local)")
    p.add_argument("--shared", action="store_true",
                   help="train the fully shared baseline of the plan's model and languages")
    p.add_argument("--name", default=None, help="job id (default: from the plan and config, so "
                   "repeating a command resumes its job)")
    p.add_argument("--gpus", type=int, default=0, help="GPUs; more than 1 runs torchrun (default: 0)")
    p.add_argument("--ray-address", default=None, help="Ray dashboard address (default: $RAY_ADDRESS)")
    p.add_argument("--detach", action="store_true", help="submit and return without following")
    _add_dataclass_flags(p, TrainConfig)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("experiment", help="does the plan help? train the proposed plan and its "
                       "baselines at equal extra parameters over seeds, and compare them")
    p.add_argument("run", help="run directory whose plan is tested")
    p.add_argument("--plan", default=None, help="test this plan instead of proposing one")
    p.add_argument("--budget", type=float, default=0.1,
                   help="extra parameters of the proposed plan, as a fraction (default: 0.1)")
    p.add_argument("--alpha", type=float, default=0.05, help="false discovery rate of the "
                   "proposal (default: 0.05)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per arm (default: 3); more seeds "
                   "under the same --name extend an experiment, keeping its jobs, at a look it "
                   "declared (--looks) or marked --exploratory")
    p.add_argument("--primary-metric", choices=("chrf", "bleu"), default="chrf",
                   help="the metric the verdict is declared on, before the run (default: chrf)")
    p.add_argument("--primary-baseline", default="shared", help="the arm the proposed plan is "
                   "primarily compared with, declared before the run (default: shared)")
    p.add_argument("--looks", type=int, nargs="+", default=None, help="a sequential design: the "
                   "seed counts at which the verdict is read, declared in advance (e.g. 4 8); each "
                   "look tests at 0.05 / looks (default: a fixed design at --seeds)")
    p.add_argument("--exploratory", action="store_true", help="add seeds beyond the declared "
                   "design; the experiment's verdict is then labelled exploratory")
    p.add_argument("--arms", default=None, help="comma-separated arms among proposed, "
                   "random-groups, random-modules, typology, loss-level, shared (default: all "
                   "but loss-level)")
    p.add_argument("--name", default=None, help="experiment name (default: from the run, plan, "
                   "seeds and config, so the same command resumes)")
    p.add_argument("--backend", choices=BACKENDS, default="local", help="where jobs run "
                   "(default: local, one at a time)")
    p.add_argument("--ray-address", default=None, help="Ray dashboard address (default: $RAY_ADDRESS)")
    p.add_argument("--trials", type=int, default=None, help="randomisation trials of each "
                   "paired test (default: 4000)")
    p.add_argument("--detach", action="store_true", help="submit and return without following")
    p.add_argument("--corpus", default=None, help="corpus the jobs train on (default: the one "
                   "the run probed)")
    _add_dataclass_flags(p, TrainConfig, skip=("seed", "corpus"))
    p.set_defaults(func=cmd_experiment)
    p = sub.add_parser("validate", help="does the predicted gain predict the benefit? "
                       "fine-tune modules spanning the predicted gain, each split alone into "
                       "each grouping, against the shared fine-tune, and correlate")
    p.add_argument("run", help="run directory whose evidence is checked")
    p.add_argument("--modules", type=int, default=10, help="modules to fine-tune split, from the "
                   "top of the plan down the predicted gain (default: 10)")
    p.add_argument("--groupings", default="proposed,random,typology,loss",
                   help="comma-separated groupings, 'proposed' among them (default: "
                   "proposed,random,typology,loss)")
    p.add_argument("--seeds", type=int, default=2, help="seeds of every fine-tune (default: 2)")
    p.add_argument("--budget", type=float, default=0.1, help="the plan whose modules come first "
                   "(default: 0.1)")
    p.add_argument("--alpha", type=float, default=0.05, help="its false discovery rate "
                   "(default: 0.05)")
    p.add_argument("--name", default=None, help="validation name (default: from the run and "
                   "design, so the same command resumes)")
    p.add_argument("--backend", choices=BACKENDS, default="local", help="where jobs run "
                   "(default: local, one at a time)")
    p.add_argument("--ray-address", default=None, help="Ray dashboard address (default: $RAY_ADDRESS)")
    p.add_argument("--detach", action="store_true", help="submit and return without following")
    p.add_argument("--corpus", default=None, help="corpus the jobs train on (default: the one "
                   "the run probed)")
    _add_dataclass_flags(p, TrainConfig, skip=("seed", "corpus"), defaults=VALIDATE_DEFAULTS)
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("jobs", help="list training jobs, show a job's log, or cancel it")
    p.add_argument("action", nargs="?", choices=("list", "logs", "cancel"), default="list")
    p.add_argument("job", nargs="?", default=None, help="job id (for logs and cancel)")
    p.add_argument("--lines", type=int, default=40, help="log lines to show (default: 40)")
    p.add_argument("--follow", action="store_true", help="with logs: a progress bar until it ends")
    p.set_defaults(func=cmd_jobs)
    p = sub.add_parser("demo", help="make the demo run on the embedded default if it is missing: "
                       "train the tiny model on spoken numbers (cached), then probe it")
    p.add_argument("--control", action="store_true", help="the positive control instead: the "
                   "demo's 14 languages, 7 of whose English targets are in reversed word order "
                   "(a conflict planted by construction), into runs/control")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("app", help="serve the Streamlit app; the demo run is built in the "
                       "background if missing")
    p.add_argument("--address", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8501, help="port (default: 8501)")
    p.set_defaults(func=cmd_app)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    # bad input, named (a run, plan, manifest, job, experiment, model or setting); anything else
    # is a bug and keeps its traceback
    except GradlensError as exc:
        print(f"gradlens: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
