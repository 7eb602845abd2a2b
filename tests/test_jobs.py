"""Training jobs through their whole life: the SQLite registry, the detached local backend with its
supervisor (success, SIGKILL, cancel, a vanished process group) and a real local Ray head."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import stop_jobs
from gradlens.jobs import (JobError, LocalBackend, Registry, cancel, entry_argv, logs, plan_kind,
                           refresh, submit)
from gradlens.launch import alive
from gradlens.plan import load_plan, new_plan, save_plan
from gradlens.metrics import read_metrics
from gradlens.train.config import TrainConfig

LANGS = ["spa", "deu"]
QUICK = TrainConfig(steps=6, batch_size=2, warmup_steps=1, eval_every=6, eval_size=1,
                    checkpoint_every=3, log_every=1)
SLOW = TrainConfig(steps=400, batch_size=2, eval_every=1000, eval_size=1, checkpoint_every=1000)


def sleeper(seconds: float) -> LocalBackend:
    """The local backend with a trivial worker: supervision, kills, queueing and cancelling
    are tested on it in seconds (real training runs in the few integration tests)."""
    return LocalBackend(entry=lambda job, directory: [
        sys.executable, "-c", f"import time; time.sleep({seconds})"])


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GRADLENS_RUNS", str(tmp_path))
    plan = new_plan("tiny", LANGS, "probe", {"speech_encoder.encoder.layers.1.ffn2": [["spa"], ["deu"]]})
    (tmp_path / "probe").mkdir()
    save_plan(plan, tmp_path / "probe" / "plan.json")
    yield tmp_path
    stop_jobs(tmp_path)


def wait_for(registry, job_id, states, timeout=300.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = next(j for j in refresh(registry) if j.id == job_id)
        if job.state in states:
            return job
        time.sleep(0.2)
    raise AssertionError(f"{job_id} still {job.state} after {timeout} s:\n{logs(job)}")


def wait_for_step(job, step, timeout=300.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        steps = [r["step"] for r in read_metrics(job.dir() / "metrics.jsonl")]
        if steps and steps[-1] >= step:
            return
        time.sleep(0.1)
    raise AssertionError(f"{job.id} never reached step {step}:\n{logs(job)}")


@pytest.mark.integration
def test_a_local_job_runs_detached_to_success_and_a_fresh_process_reads_it(runs):
    job = submit(runs / "probe" / "plan.json", QUICK)
    assert job.state == "queued" and job.kind == "proposed" and job.pid
    assert job.id.startswith("train-probe-proposed-")
    registry = Registry()
    done = wait_for(registry, job.id, {"succeeded", "failed"})
    assert done.state == "succeeded", logs(done)
    assert done.started and done.finished >= done.started and done.reason == ""
    directory = runs / job.id
    assert json.loads((directory / "job.json").read_text())["state"] == "succeeded"
    assert json.loads((directory / "plan.json").read_text())["modules"]
    metrics = read_metrics(directory / "metrics.jsonl")
    assert [r["step"] for r in metrics if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert {r["split"] for r in metrics if r["kind"] == "eval"} == {"dev", "test"}
    assert "finished" in logs(done)

    out = subprocess.run([sys.executable, "-m", "gradlens", "jobs"], capture_output=True,
                         text=True, env={**os.environ, "GRADLENS_RUNS": str(runs)}, check=True)
    assert job.id in out.stdout and "succeeded" in out.stdout

    plan_copy = (directory / "plan.json").read_bytes()
    with pytest.raises(JobError, match="already succeeded; its record stays as it is"):
        submit(runs / "probe" / "plan.json", QUICK)    # the same command leaves it untouched
    assert registry.get(job.id) == done and (directory / "plan.json").read_bytes() == plan_copy


@pytest.mark.integration
def test_a_job_killed_with_sigkill_is_failed_with_the_reason_and_then_resumes(runs):
    job = submit(runs / "probe" / "plan.json", SLOW, sleeper(120), shared=True)
    assert job.kind == "shared"
    registry = Registry()
    job = wait_for(registry, job.id, {"running"})
    os.kill(job.worker_pid, signal.SIGKILL)
    failed = wait_for(registry, job.id, {"failed", "succeeded"})
    assert failed.state == "failed" and failed.reason == "killed by SIGKILL (signal 9)"
    with pytest.raises(JobError, match="another plan or config"):
        submit(runs / "probe" / "plan.json", QUICK, sleeper(120), shared=True, name=job.id)
    resumed = submit(runs / "probe" / "plan.json", SLOW, sleeper(120), shared=True)
    assert resumed.id == job.id and resumed.state == "queued"
    running = wait_for(registry, job.id, {"running"})
    with pytest.raises(JobError, match="is running"):
        submit(runs / "probe" / "plan.json", SLOW, sleeper(120), shared=True)
    cancelled = cancel(running.id, registry)
    assert cancelled.state == "cancelled" and cancelled.reason == "cancelled by request"
    assert not alive(running.worker_pid) and not alive(running.pid)


@pytest.mark.integration
def test_a_queued_job_waits_for_the_local_slot_and_a_vanished_group_is_reported(runs):
    first = submit(runs / "probe" / "plan.json", SLOW, sleeper(120), name="first")
    registry = Registry()
    first = wait_for(registry, "first", {"running"})
    submit(runs / "probe" / "plan.json", SLOW, sleeper(120), name="second")
    time.sleep(2)
    assert registry.get("second").state == "queued"  # one local job at a time
    assert cancel("second", registry).state == "cancelled"
    os.killpg(first.pid, signal.SIGKILL)  # supervisor and worker die together, nobody reports
    gone = wait_for(registry, "first", {"failed"}, timeout=30)
    assert f"pid {first.pid}" in gone.reason and "without reporting" in gone.reason


def test_paths_outside_the_runs_directory_and_bad_requests_are_refused(runs, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "plan.json"
    save_plan(new_plan("tiny", LANGS), outside)
    with pytest.raises(JobError, match="must lie in the runs directory"):
        submit(outside, QUICK)
    with pytest.raises(JobError, match="backend must be one of"):
        submit(runs / "probe" / "plan.json", QUICK, backend="slurm")
    os.environ.pop("RAY_ADDRESS", None)
    with pytest.raises(JobError, match="RAY_ADDRESS"):
        submit(runs / "probe" / "plan.json", QUICK, backend="ray")
    with pytest.raises(ValueError, match="run name"):
        submit(runs / "probe" / "plan.json", QUICK, name="../escape")
    with pytest.raises(JobError, match="exists and is not a job"):
        submit(runs / "probe" / "plan.json", QUICK, name="probe")
    assert Registry().jobs() == []


def test_a_corrupt_registry_is_named_and_left_in_place(runs):
    (runs / "jobs.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JobError, match=r"jobs.sqlite: not a readable job registry"):
        Registry().jobs()
    assert (runs / "jobs.sqlite").read_bytes().startswith(b"this is not sqlite")


def test_more_than_one_gpu_runs_torchrun_and_plans_have_a_kind():
    argv = entry_argv("spec", "out", gpus=4)
    assert argv[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4"]
    assert argv[-4:] == ["probes.training", "spec", "--out", "out"]
    assert entry_argv("spec", "out", gpus=1)[1:3] == ["-m", "probes.training"]
    plan = new_plan("tiny", LANGS)
    assert plan_kind(plan) == "shared"
    plan = plan.with_split("x", [["spa"], ["deu"]])
    assert plan_kind(plan) == "proposed"
    assert plan_kind(plan.with_split("x", [["spa"], ["deu"]], edited=True)) == "edited"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head(tmp_path_factory):
    """A real Ray head on the loopback address, stopped afterwards."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"],
           "RAY_USAGE_STATS_ENABLED": "0"}
    dashboard = free_port()
    temp = tmp_path_factory.mktemp("ray")
    subprocess.run([os.path.join(bin_dir, "ray"), "start", "--head", "--node-ip-address=127.0.0.1",
                    f"--port={free_port()}", "--dashboard-host=127.0.0.1",
                    f"--dashboard-port={dashboard}", "--num-cpus=2", "--num-gpus=0",
                    f"--temp-dir={temp}", "--include-dashboard=true", "--disable-usage-stats"],
                   env=env, check=True, capture_output=True)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.time() + 120
        while True:  # the dashboard may come up a little after `ray start` returns
            try:
                from ray.job_submission import JobSubmissionClient

                JobSubmissionClient(address).list_jobs()
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(1)
        yield address
    finally:
        subprocess.run([os.path.join(bin_dir, "ray"), "stop", "--force"], env=env,
                       capture_output=True)


@pytest.mark.integration
def test_a_ray_job_runs_through_its_life_on_a_local_head(runs, ray_head, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", ray_head)
    job = submit(runs / "probe" / "plan.json", QUICK, backend="ray")
    assert job.backend == "ray" and job.ray_address == ray_head and job.ray_id
    registry = Registry()
    done = wait_for(registry, job.id, {"succeeded", "failed", "cancelled"})
    assert done.state == "succeeded", done.reason
    metrics = read_metrics(runs / job.id / "metrics.jsonl")
    assert [r["step"] for r in metrics if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert "finished" in logs(done)

    slow = submit(runs / "probe" / "plan.json", SLOW, backend="ray", shared=True)
    wait_for(registry, slow.id, {"running"})
    wait_for_step(slow, 1)
    stopped = cancel(slow.id, registry, wait=60)
    assert stopped.state == "cancelled" and stopped.finished


@pytest.mark.integration
def test_torchrun_data_parallel_on_two_cpu_processes(runs):
    from gradlens.train.config import write_spec

    spec = runs / "ddp"
    plan = load_plan(runs / "probe" / "plan.json")
    write_spec(spec, QUICK, plan)
    argv = entry_argv(str(spec), str(spec), gpus=2)
    subprocess.run(argv, check=True, capture_output=True, timeout=600)
    log = (spec / "log.txt").read_text()
    assert "× 2 ranks" in log and "finished" in log
    assert [r["step"] for r in read_metrics(spec / "metrics.jsonl") if r["kind"] == "train"] == [
        1, 2, 3, 4, 5, 6]
    assert (spec / "checkpoint" / "model.safetensors").exists()


@pytest.mark.integration
def test_a_plan_naming_an_unknown_module_fails_with_the_validators_words(runs):
    plan = new_plan("tiny", LANGS, "probe", {"speech_encoder.encoder.layers.9.ffn1": [["spa"], ["deu"]]})
    (runs / "bad").mkdir()
    save_plan(plan, runs / "bad" / "plan.json")
    job = submit(runs / "bad" / "plan.json", QUICK)
    failed = wait_for(Registry(), job.id, {"failed", "succeeded"})
    assert failed.state == "failed"
    assert failed.reason.startswith("exit status 1: gradlens.plan.PlanError")
    assert "speech_encoder.encoder.layers.9.ffn1" in failed.reason


@pytest.mark.integration
def test_two_simultaneous_submits_of_one_job_start_it_once(runs):
    """The registry's check-then-register is one locked step: of two submits racing for the same
    job, exactly one starts it and the other is told it is already queued or running."""
    import threading

    for race in ("race0", "race1", "race2", "race3"):  # each a fresh race for a fresh job
        barrier = threading.Barrier(2)
        outcomes = []

        def go():
            barrier.wait()
            try:
                outcomes.append(submit(runs / "probe" / "plan.json", QUICK, sleeper(0.5),
                                       name=race))
            except JobError as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=go) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        started = [o for o in outcomes if not isinstance(o, JobError)]
        refused = [o for o in outcomes if isinstance(o, JobError)]
        assert len(started) == 1 and len(refused) == 1, outcomes
        assert f"job {race} is queued" in str(refused[0]) or "is running" in str(refused[0])
    assert sorted(j.id for j in Registry(runs).jobs()) == ["race0", "race1", "race2", "race3"]


@pytest.mark.integration
def test_a_stored_pid_of_another_process_is_never_signalled(runs):
    """After a reboot a job's stored pid may belong to anything: cancel and refresh check that
    it is the job's supervisor before trusting or signalling it."""
    from gradlens.jobs import Job

    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                start_new_session=True)
    try:
        registry = Registry(runs)
        (runs / "old").mkdir()
        registry.put(Job(id="old", backend="local", state="running", reason="", kind="shared",
                         plan_source="probe/plan.json", created=time.time(), started=time.time(),
                         finished=None, pid=stranger.pid, worker_pid=None, ray_address=None,
                         ray_id=None, gpus=0, config={}))
        job = cancel("old", registry, wait=1)
        assert job.state == "cancelled" and stranger.poll() is None  # the stranger lives on
        registry.update("old", state="running", finished=None)
        job = next(j for j in refresh(registry) if j.id == "old")
        assert job.state == "failed" and "is gone" in job.reason
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_tampered_registry_row_cannot_lead_a_path_outside(runs):
    import sqlite3

    registry = Registry(runs)
    registry.jobs()  # creates the table
    with sqlite3.connect(registry.path) as con:
        con.execute("INSERT INTO jobs (id, backend, state, created, gpus, config) "
                    "VALUES ('../escape', 'local', 'running', 0, 0, '{}')")
    assert registry.jobs() == []
    with pytest.raises(JobError, match="id that is no job name"):
        registry.get("../escape")
    assert not (runs.parent / "escape").exists()


def test_a_change_shows_in_the_registry_only_once_its_job_file_has_it(runs, monkeypatch):
    # a job once read "succeeded" in the registry while its job.json still said "running":
    # the file was written after the change had committed
    from gradlens.jobs.registry import Job

    registry = Registry(runs)
    (runs / "train-probe-shared-00000000").mkdir()
    job = registry.put(Job(id="train-probe-shared-00000000", backend="local", state="queued",
                           reason="", kind="shared", plan_source="probe/plan.json", created=1.0,
                           started=None, finished=None, pid=None, worker_pid=None,
                           ray_address=None, ray_id=None, gpus=0, config={}))
    seen = []
    mirror = Registry._mirror

    def watched(self, written):
        seen.append(Registry(runs).get(written.id).state)  # another reader, meanwhile
        mirror(self, written)

    monkeypatch.setattr(Registry, "_mirror", watched)
    for state in ("running", "succeeded"):
        registry.update(job.id, state=state)
        assert json.loads((job.dir(runs) / "job.json").read_text())["state"] == state
    assert seen == ["queued", "running"]


@pytest.mark.integration
def test_killing_the_supervisor_kills_its_worker_and_the_job_resumes_once(runs):
    """SIGKILL to the supervisor alone used to leave the trainer running unwatched; a resubmit
    then ran a second trainer in the same directory (duplicated, out-of-order metrics)."""
    job = submit(runs / "probe" / "plan.json", SLOW, name="orphan")
    registry = Registry()
    job = wait_for(registry, "orphan", {"running"})
    wait_for_step(job, 1)
    os.kill(job.pid, signal.SIGKILL)                       # the supervisor only
    deadline = time.time() + 30
    while alive(job.worker_pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(job.worker_pid)                       # the worker died with it
    failed = wait_for(registry, "orphan", {"failed"}, timeout=30)
    assert "without reporting" in failed.reason
    resumed = submit(runs / "probe" / "plan.json", SLOW, name="orphan")
    resumed = wait_for(registry, "orphan", {"running"})
    wait_for_step(resumed, 2)
    cancel("orphan", registry)
    steps = [r["step"] for r in read_metrics(job.dir() / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == sorted(set(steps))                     # one trainer: no step written twice


def test_a_second_trainer_is_refused_the_same_job_directory(tmp_path):
    from probes.training import _claim

    first = _claim(tmp_path)
    with pytest.raises(RuntimeError, match="another trainer is writing"):
        _claim(tmp_path)
    first.close()
    _claim(tmp_path).close()                               # free again once the first ends


@pytest.mark.integration
@pytest.mark.parametrize("argv, message", [
    (["--learning-rate", "nan"], "learning_rate must be a finite number > 0, got nan"),
    (["--learning-rate=-1e-3"], "learning_rate must be a finite number > 0"),
    (["--eval-size", "-3"], "eval_size must be an integer ≥ 0, got -3"),
    (["--device", "tpu"], "device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
    (["--gpus", "-5"], "gpus must be 0 or more, got -5"),
    (["--name", "jobs.sqlite"], "jobs.sqlite exists and is not a job"),
])
def test_bad_training_settings_are_refused_at_submit_naming_the_field(runs, argv, message):
    Registry(runs).jobs()  # the registry file exists, as in any used runs directory
    out = subprocess.run([sys.executable, "-m", "gradlens", "train", "--plan",
                          str(runs / "probe" / "plan.json"), "--detach", *argv],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "GRADLENS_RUNS": str(runs)})
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and Registry(runs).jobs() == []


@pytest.mark.integration
def test_a_plan_naming_a_module_its_run_lacks_is_refused_at_submit(runs):
    from conftest import random_run

    random_run(runs / "src", languages=LANGS)
    plan = new_plan("tiny", LANGS, "runs/src", {"text_decoder.layers.9.ffn": [["spa"], ["deu"]]})
    save_plan(plan, runs / "src" / "plan.json")
    out = subprocess.run([sys.executable, "-m", "gradlens", "train", "--plan",
                          str(runs / "src" / "plan.json"), "--detach"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "GRADLENS_RUNS": str(runs)})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "module 'text_decoder.layers.9.ffn' is not a module of the model" in out.stderr
    assert str(runs / "src" / "plan.json") in out.stderr and Registry(runs).jobs() == []


def test_the_app_offers_only_the_ray_clusters_its_starter_configured(monkeypatch):
    from gradlens.jobs import allowed_ray_addresses

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("GRADLENS_RAY_ADDRESSES", raising=False)
    assert allowed_ray_addresses() == []
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:8265")
    monkeypatch.setenv("GRADLENS_RAY_ADDRESSES", " http://10.0.0.5:8265,,http://127.0.0.1:8265 ")
    assert allowed_ray_addresses() == ["http://127.0.0.1:8265", "http://10.0.0.5:8265"]
