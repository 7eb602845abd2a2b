"""AppTest of every page on a real tiny run, and of the error states each page must survive."""

import json
import shutil
import time

import h5py
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, SMALL, stop_jobs
from gradlens.evidence import unit_similarity
from gradlens.metrics import read_metrics
from gradlens.modules import module_label
from gradlens.paths import PREFETCH_ENV
from gradlens.plan import load_plan, new_plan, save_plan
from gradlens.store import Run, RunWriter

APP = str(ROOT / "app.py")
PAGES = ["dendrograms", "divergence", "alignment", "conflicts", "sharing_plan", "training",
         "experiments", "compare"]


@pytest.fixture
def app_runs(tiny_run, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run, runs / "small", ignore=shutil.ignore_patterns("*.lock", "*.pt"))
    monkeypatch.setenv("GRADLENS_RUNS", str(runs))
    yield runs
    stop_jobs(runs)


def write_run(tiny_run, out, steps: int, tasks=("st", "asr"), between: int = 0,
              paired: bool = True):
    """A real run file with the tiny run's modules and random sketches, ``steps`` steps done
    (``between``: the training steps its probe config says were taken between them; ``paired``:
    whether its steps were content-paired)."""
    with Run(tiny_run) as src:
        modules, langs, k = src.modules, src.languages, src.sketch_dim
    rng = np.random.default_rng(0)
    with RunWriter(out, languages=langs, tasks=list(tasks), modules=modules, sketch_dim=k,
                   sketch_seed=0, model="tiny", model_config={},
                   probe_config={"steps": 8, "tasks": list(tasks),
                                 "train_steps_between": between,
                                 "content_paired": paired}) as w:
        for step in range(steps):
            shape = (len(langs), len(tasks), len(modules), k)
            w.append(step, rng.normal(size=shape).astype(np.float16),
                     np.ones(shape[:3], np.float32), np.ones(shape[:2], np.float32))


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=120)


def _page(page: str) -> AppTest:
    at = _app().run()
    at.switch_page(f"pages/{page}.py").run()
    return at


def _spec(chart) -> str:
    """A chart's Plotly JSON, unescaped (Streamlit writes '/' and '<' as \\u escapes)."""
    return json.dumps(json.loads(chart.proto.spec), ensure_ascii=False, separators=(",", ":"))


def _prefetched() -> None:
    """Until the app's background worker has made every tree it was asked for (earlier tests'
    included: it is one worker for the process, as for a server)."""
    import gradlens.ui.cache as cache

    cache._submit(lambda: None).result(timeout=300)


def _raw(label: str) -> str:
    """A unit picker's option as the run names it (AppTest gives the labels the page shows)."""
    return "shared" if label == module_label("shared") else label


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_home_lists_the_run_and_offers_a_probe_form(app_runs):
    at = _app().run()
    _clean(at)
    df = at.dataframe[0].value
    assert list(df["run"]) == ["small"] and df["languages"][0] == " ".join(SMALL["languages"])
    assert at.sidebar.selectbox[0].value == "small"
    assert at.multiselect(key="probe_languages").value == ["spa", "ita", "deu", "rus"]
    assert at.number_input(key="probe_steps").value == 8


def test_while_the_demo_builds_the_home_page_does_not_say_there_is_nothing(tmp_path,
                                                                          monkeypatch):
    import os

    runs = tmp_path / "runs"
    (runs / "demo").mkdir(parents=True)
    (runs / "demo" / "probe.log").write_text("step 200/400 deu loss 2.1\r")
    (runs / "demo" / "probe.pid").write_text(str(os.getpid()))  # a live process
    monkeypatch.setenv("GRADLENS_RUNS", str(runs))
    at = _app().run()
    _clean(at)
    assert any("training the model it will probe, step 200 of 400" in p.proto.text
               for p in at.get("progress"))
    assert not any("Make the demo run" in i.value for i in at.info)
    assert any("No run is finished yet" in i.value for i in at.info)


def test_the_probe_form_offers_the_models_runs_here_probed(app_runs, tiny_run):
    write_run(tiny_run, app_runs / "on-demo-model", steps=2)
    with h5py.File(app_runs / "on-demo-model" / "grads.h5", "r+") as f:
        f.attrs["model"] = "/cache/gradlens/models/tiny-trained-abc"
    at = _app().run()
    _clean(at)
    options = at.selectbox(key="probe_model").options
    assert options[:2] == ["tiny", "medium-random"]
    assert "tiny-trained-abc (probed by a run here)" in options


def test_the_probe_form_refuses_a_bad_name_with_a_message(app_runs):
    at = _app().run()
    at.text_input(key="probe_name").set_value("../escape")
    at.button[0].click().run()  # the form's submit button
    _clean(at)
    assert any("run name '../escape'" in e.value for e in at.error)
    assert not (app_runs.parent / "escape").exists()


@pytest.fixture
def similarity_calls(monkeypatch) -> list[str]:
    """The units whose similarity the app computes from here on (the background worker's
    earlier work finished first)."""
    import gradlens.ui.cache as cache

    calls = []

    def counted(run, evidence, key, task, kind="mean", steps=None):
        calls.append(key)
        return unit_similarity(run, evidence, key, task, kind, steps)

    _prefetched()
    monkeypatch.setattr(cache, "unit_similarity", counted)
    return calls


def test_a_unit_change_computes_its_similarity_once(app_runs, similarity_calls):
    # the tree, the best grouping and the Mantel test read one similarity; the grouping's
    # cache call once missed the tree's (different arguments) and bootstrapped the unit again
    at = _page("dendrograms")
    unit = at.selectbox(key="dend_unit_layer")
    other = next(x for x in map(_raw, unit.options) if x != unit.value)
    unit.set_value(other).run()
    _clean(at)
    assert similarity_calls.count(other) == 1, similarity_calls


def test_the_trees_of_the_other_units_are_ready_before_one_is_picked(app_runs, similarity_calls):
    # while the researcher reads one tree the others are made in the background (a new layer
    # was 0.2 s of numpy at 32 languages, doubled by the browser drawing on the same cores)
    at = _page("dendrograms")
    unit = at.selectbox(key="dend_unit_layer")
    others = [x for x in map(_raw, unit.options) if x != unit.value]
    _prefetched()
    # each unit once: the one shown, then the others in the background
    assert sorted(similarity_calls) == sorted(map(_raw, unit.options)), similarity_calls
    similarity_calls.clear()
    for other in others[:3]:
        at.selectbox(key="dend_unit_layer").set_value(other).run()
        _clean(at)
    assert similarity_calls == [], similarity_calls
    assert at.session_state["dend_unit_layer"] == others[2]


def test_the_background_trees_wait_until_the_page_has_been_drawn(app_runs, monkeypatch):
    # a nice-19 thread still took its full share from a browser in another session (Linux
    # schedules sessions as one): the trees slowed the demo's cold page by 0.6 s
    import gradlens.ui.cache as cache

    _prefetched()
    made = []

    def timed(run, evidence, key, task, kind="mean", steps=None):
        made.append(time.monotonic())
        return unit_similarity(run, evidence, key, task, kind, steps)

    monkeypatch.setattr(cache, "unit_similarity", timed)
    _page("dendrograms")
    sent = cache._last_visit[0]
    shown = len(made)
    _prefetched()
    assert len(made) > shown, "nothing was made in the background"
    assert min(made[shown:]) - sent >= cache.PREFETCH_QUIET_S, (made, sent)


def test_no_tree_is_made_in_the_background_where_the_starter_said_so(app_runs, monkeypatch):
    import gradlens.ui.cache as cache

    monkeypatch.setenv(PREFETCH_ENV, "0")
    _clean(_page("dendrograms"))
    _, asked = cache._prefetcher()
    assert not [job for job in asked if job[0].startswith(str(app_runs))], asked


def test_a_fresh_servers_first_visit_finds_the_opening_view_made(app_runs, monkeypatch,
                                                                 similarity_calls):
    # gradlens app makes it while the browser opens: the newest run's kept evidence read and
    # the Dendrograms page's opening tree, groupings and Mantel test (0.6 s of its first visit)
    import gradlens.ui.cache as cache
    from gradlens import ui
    from gradlens.evidence import cached_run_evidence

    with Run(app_runs / "small") as r:
        cached_run_evidence(r)  # what `gradlens analyze` or an earlier visit leaves in the run
    monkeypatch.setenv(PREFETCH_ENV, "0")  # no background trees: only what the warm-up made
    cache.warm_first_visit(ui.run_paths())
    assert similarity_calls, "the warm-up made no tree"
    made, reads = list(similarity_calls), []
    similarity_calls.clear()
    for name in ("saved_run_evidence", "cached_run_evidence"):
        monkeypatch.setattr(cache, name, lambda *a, _f=getattr(cache, name), **k:
                            reads.append(a) or _f(*a, **k))
    at = _page("dendrograms")
    _clean(at)
    assert at.selectbox(key="dend_unit_layer").value == made[0]
    assert similarity_calls == [] and reads == [], (similarity_calls, reads)


def test_the_warm_up_leaves_a_run_it_cannot_read_to_the_page(tmp_path, monkeypatch):
    import gradlens.ui.cache as cache

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "grads.h5").write_bytes(b"\x89HDF\r\n\x1a\ngarbage")
    cache.warm_first_visit([tmp_path / "broken"])  # raises nothing: the page says why
    assert "not a readable HDF5 file" in cache.summary(tmp_path / "broken")["error"]


def test_the_server_warms_every_module_the_pages_import():
    from gradlens.serve import page_imports

    names = page_imports()
    assert {"gradlens.ui", "gradlens.experiment", "gradlens.plots", "streamlit"} <= set(names)
    assert "gradlens.ui.nothing" not in names and len(names) == len(set(names))


def test_a_run_whose_steps_do_not_pair_up_offers_no_paired_view_and_says_why(tiny_run, tmp_path,
                                                                             monkeypatch):
    runs = tmp_path / "runs"
    write_run(tiny_run, runs / "unpaired", steps=12, paired=False)
    monkeypatch.setenv("GRADLENS_RUNS", str(runs))
    at = _page("dendrograms")
    _clean(at)
    similarity = at.radio(key="dend_kind")
    assert similarity.value == "mean" and len(similarity.options) == 1
    assert any("Paired steps are not offered" in c.value for c in at.caption)
    at.switch_page("pages/alignment.py").run()
    _clean(at)
    assert any("Subspace alignment is not computed for this run" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_dendrogram_page_draws_the_tree_groups_and_typology(app_runs):
    at = _page("dendrograms")
    _clean(at)
    assert not at.error
    assert len(at.get("plotly_chart")) == 2
    at.toggle(key="dend_across_layers").set_value(True).run()
    charts = at.get("plotly_chart")
    assert len(charts) == 3  # dendrogram, similarity, small multiples per layer
    assert '"name":"Romance"' in _spec(charts[0]) and '"name":"Slavic"' in _spec(charts[0])
    assert any("Partition:" in m.value for m in at.markdown)
    assert any("GradSim grouping:" in m.value for m in at.markdown)
    verdict = next(m.value for m in at.markdown if "Mantel test against URIEL" in m.value)
    assert "bootstrap support" in verdict or "No grouping of these languages is supported" in verdict
    unsupported = "No grouping of these languages is supported" in verdict
    assert unsupported == any("no clade of this tree is supported" in w.value for w in at.warning)
    assert "silhouette" in verdict
    assert "bootstrap support of this clade: %{text}" in _spec(charts[0])  # every node labelled
    # 4 languages: it opens on the mean similarity, whose clades are tested; the paired one
    # is drawn, and says why its clades are not
    assert "· mean" in _spec(charts[0])
    assert "cosine of mean gradients" in _spec(charts[1])
    # the mean similarity's Mantel p must beat relabelling and the noise null both
    assert "noise-only p = " in verdict and "the larger of relabelling" in verdict
    assert all("noise-only" in c.value for c in at.caption if "relabelling" in c.value)
    at.radio(key="dend_kind").set_value("paired").run()
    _clean(at)
    assert "· paired" in _spec(at.get("plotly_chart")[0])
    assert "Correlation of paired steps" in _spec(at.get("plotly_chart")[1])
    assert any("clades are not tested" in m.value for m in at.markdown)
    assert not any("Clades with bootstrap support" in m.value for m in at.markdown)
    # and the groups drawn from it are said not to be a finding
    assert any("not a finding" in w.value and "not tested" in w.value for w in at.warning)
    assert {m.label for m in at.metric} == {"Agreement with URIEL genetic distance (Mantel r)",
                                             "Agreement with URIEL phonological distance (Mantel r)"}
    assert "decoder 3" in _spec(charts[2]) and "encoder 0" in _spec(charts[2])
    assert {b.proto.label for b in at.get("download_button")} >= {"PNG", "HTML", "CSV"}
    at.radio(key="dend_granularity").set_value("block").run()
    assert at.selectbox(key="dend_unit_block").options == ["embeddings", "speech_encoder", "adapter",
                                                            "text_decoder"]
    at.slider(key="dend_groups").set_value(4).run()
    partition = next(m.value for m in at.markdown if "Partition:" in m.value)
    assert partition.count("{") == 4


def test_divergence_page_heatmaps_ranking_and_budget(app_runs):
    at = _page("divergence")
    _clean(at)
    charts = at.get("plotly_chart")
    assert len(charts) >= 3
    assert "Self divergence per module and language" in _spec(charts[0])
    assert "Noise-corrected divergence" in _spec(charts[1])
    assert "divergence beyond noise" in _spec(charts[2])
    assert any("from noise alone" in c.value and "BH q" in c.value for c in at.caption)
    at.selectbox(key="div_module").set_value("text_decoder.layers.1.ffn").run()
    _clean(at)
    assert "text_decoder.layers.1.ffn" in _spec(at.get("plotly_chart")[1])
    # each module's decision and its reason beside its bar, in the hover and in a table
    decisions = next(d.value for d in at.dataframe if "decision" in d.value.columns)
    assert set(decisions["decision"]) <= {"split", "candidate", "shared"}
    assert all(r.startswith(("split into", "kept shared")) for r in decisions["reason"])
    assert decisions["reason"].iloc[0] in _spec(at.get("plotly_chart")[2])
    assert any("This run has 11 steps" in i.value and "not shown to differ" in i.value
               for i in at.info)  # a short run is said to have less power
    at.radio(key="div_order").set_value("the plan's priority").run()
    _clean(at)
    at.slider(key="div_budget").set_value(0.0).run()
    assert at.metric[0].value == "0"
    assert any("No module is split" in i.value for i in at.info)
    assert any("The rule that spends the budget" in c.value for c in at.caption)
    at.switch_page("pages/sharing_plan.py").run()  # one budget for both pages
    _clean(at)
    assert at.slider(key="plan_budget").value == 0.0


def test_alignment_page_heatmap_and_pair_spectrum(app_runs):
    at = _page("alignment")
    _clean(at)
    charts = at.get("plotly_chart")
    assert len(charts) == 2
    assert "Mean canonical correlation" in _spec(charts[0])
    # the test's verdict in words, whichever way it goes (docs/results.md §1e)
    assert any(m.value.startswith(("No shuffle of the steps", "The data show no alignment"))
               for m in at.markdown)
    at.selectbox(key="align_a").set_value("deu").run()
    at.selectbox(key="align_b").set_value("rus").run()
    _clean(at)
    assert "deu vs rus" in _spec(at.get("plotly_chart")[1])


def test_conflicts_page_over_steps_and_ranked(app_runs):
    at = _page("conflicts")
    _clean(at)
    charts = at.get("plotly_chart")
    assert len(charts) == 3
    assert "cos(g_ST, g_ASR) per module and step" in _spec(charts[0])
    assert "Modules by conflict rate" in _spec(charts[1])
    assert all(lang in _spec(charts[2]) for lang in SMALL["languages"])
    # the rate comes with its null: which modules conflict systematically, or that none does
    verdict = next(c.value for c in at.caption if "systematically (mean cosine below 0" in c.value)
    assert "sign-flip test over the steps" in verdict and "BH q < 0.05" in verdict
    assert '"error_x"' in _spec(charts[1])                  # each rate with its interval
    module = next(c.value for c in at.caption if c.value.startswith("Mean cosine"))
    assert "95 % interval" in module and "BH q = " in module and "sign-flip test" in module
    # and the tasks' mean directions, noise taken out, with their interval
    means = next(c.value for c in at.caption if c.value.startswith("The two tasks' mean"))
    assert "cosine" in means and "95 % interval [" in means and "§1j" in means


def test_training_page_asks_for_a_saved_plan(app_runs):
    at = _page("training")
    _clean(at)
    assert any("no saved plan yet" in i.value for i in at.info)
    assert any("No training jobs" in i.value for i in at.info)


def _wait_jobs(states: set, count: int, timeout: float = 300.0):
    from gradlens.jobs import refresh

    deadline = time.time() + timeout
    while time.time() < deadline:
        jobs = refresh()
        if len(jobs) == count and all(j.state in states for j in jobs):
            return jobs
        time.sleep(0.3)
    raise AssertionError(f"jobs did not reach {states}: {[(j.id, j.state, j.reason) for j in refresh()]}")


def _click(at: AppTest, label: str) -> None:
    next(b for b in at.button if b.label == label).click().run()


@pytest.mark.integration
def test_training_page_starts_follows_cancels_and_compares_jobs(app_runs):
    plan = new_plan("tiny", SMALL["languages"], str(app_runs / "small")).with_split(
        "speech_encoder.encoder.layers.1.ffn2", [["spa", "ita"], ["deu", "rus"]], edited=True)
    save_plan(plan, app_runs / "small" / "plan.json")
    at = _page("training")
    _clean(at)
    assert any("edited plan, 1 split module(s)" in c.value for c in at.caption)
    at.number_input(key="train_steps").set_value(4)
    at.number_input(key="train_batch").set_value(2)
    at.number_input(key="train_eval").set_value(4)
    at.number_input(key="train_warmup").set_value(2)  # the rate's warm-up is on the form
    _click(at, "Train this plan")
    _clean(at)
    from gradlens.jobs import refresh

    assert json.loads((refresh()[0].dir() / "train.json").read_text())["warmup_steps"] == 2
    assert any("(edited) on local" in s.value for s in at.success)
    _click(at, "Train the fully shared baseline")
    _clean(at)
    assert any("(shared) on local" in s.value for s in at.success)
    jobs = _wait_jobs({"succeeded", "failed"}, 2)
    assert {j.state for j in jobs} == {"succeeded"}, [j.reason for j in jobs]

    at.run()
    _clean(at)
    table = at.dataframe[0].value  # the jobs, then BLEU and chrF comparisons
    assert set(table["state"]) == {"succeeded"} and set(table["step"]) == {"4 / 4"}
    assert set(table["plan"]) == {"edited", "shared"} and set(table["scores"]) == {"final"}
    charts = at.get("plotly_chart")
    assert len(charts) == 5  # loss, dev BLEU, dev chrF, two comparisons
    assert len({c.proto.id for c in charts}) == 5  # five figures, not one drawn five times
    bleu = at.dataframe[1].value
    assert list(bleu.index) == [*SMALL["languages"], "all"] and len(bleu.columns) == 2
    assert table["test chrF at start"].notna().all()  # every job scored its starting model
    assert any("utterances per language" in c.value for c in at.caption)
    assert any(c.value.startswith("Test at step 4, all languages: BLEU") and "bootstrap" in c.value
               for c in at.caption)
    assert not any("made the model worse" in w.value for w in at.warning)
    # a job whose latest test score lies far under its starting model's is flagged as such
    followed = next(j for j in refresh() if j.id == at.selectbox(key="train_follow").value)
    start = next(r for r in read_metrics(followed.dir() / "metrics.jsonl")
                 if r["kind"] == "eval" and r["step"] == 0 and r["split"] == "test"
                 and r["language"] == "all")
    with open(followed.dir() / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({**start, "step": 99, "chrf": start["chrf"] - 6}) + "\n")
    at.run()
    assert any("made the model worse" in w.value for w in at.warning)

    at.number_input(key="train_steps").set_value(400)
    _click(at, "Train this plan")
    _clean(at)
    follow = at.selectbox(key="train_follow").value
    assert follow.startswith("train-small-edited-") and follow not in set(table["job"])
    at.button(key="train_cancel").click().run()
    _clean(at)  # a confirmation first: nothing cancelled yet
    assert any(w.value.startswith(f"Cancel {follow}?") for w in at.warning) and not any(
        ": cancelled" in s.value for s in at.success)
    at.button(key="train_cancel_yes").click().run()
    _clean(at)
    assert any(": cancelled" in s.value for s in at.success)
    _wait_jobs({"succeeded", "cancelled"}, 3, timeout=30)


def test_plan_editor_rejects_a_broken_partition_and_saves_a_good_edit(app_runs):
    at = _page("sharing_plan")
    _clean(at)
    modules = json.loads(json.dumps(Run(app_runs / "small").modules.name))
    module = modules[5]
    key = "plan_editor_0"  # the editor's key until "start again" bumps it
    saved = app_runs / "small" / "plan.json"

    at.session_state[key] = {"edited_rows": {}, "deleted_rows": [],
                             "added_rows": [{"module": module, "groups": "spa ita | deu"}]}
    at.run()
    _clean(at)
    assert any("groups do not partition the languages; rus in no group" in e.value
               for e in at.error)
    assert at.button(key="plan_save").disabled  # a person cannot save it
    assert all(b.proto.disabled for b in at.get("download_button"))
    assert not saved.exists()

    at.session_state[key] = {"edited_rows": {}, "deleted_rows": [],
                             "added_rows": [{"module": module, "groups": "spa ita | deu rus"}]}
    at.run()
    _clean(at)
    assert not at.error
    assert any(module in str(df.value.to_dict()) for df in at.dataframe)  # the diff lists it
    at.button(key="plan_save").click().run()
    _clean(at)
    plan = json.loads(saved.read_text())
    assert plan["modules"][module]["groups"] == [["spa", "ita"], ["deu", "rus"]]
    assert plan["modules"][module]["edited"] is True
    assert "excess_divergence" in plan["modules"][module]["evidence"]


@pytest.mark.parametrize("page", PAGES)
def test_no_runs_says_how_to_make_one(tmp_path, monkeypatch, page):
    monkeypatch.setenv("GRADLENS_RUNS", str(tmp_path / "empty"))
    at = _app().run()
    _clean(at)
    assert any("python -m gradlens demo" in i.value for i in at.info)
    at.switch_page(f"pages/{page}.py").run()
    _clean(at)
    assert any("No run picked" in i.value for i in at.info)


@pytest.mark.parametrize("page", PAGES)
def test_a_file_that_is_not_a_run_shows_a_message_not_a_traceback(tmp_path, monkeypatch, page):
    (tmp_path / "runs" / "broken").mkdir(parents=True)
    (tmp_path / "runs" / "broken" / "grads.h5").write_bytes(b"\x89HDF\r\n\x1a\ngarbage")
    monkeypatch.setenv("GRADLENS_RUNS", str(tmp_path / "runs"))
    at = _app().run()
    _clean(at)
    assert any("not a readable HDF5 file" in w.value for w in at.warning)
    at.switch_page(f"pages/{page}.py").run()
    _clean(at)
    assert any("cannot be read" in e.value for e in at.error)


@pytest.mark.parametrize("page", PAGES)
def test_a_run_without_a_completed_step_says_so(tiny_run, tmp_path, monkeypatch, page):
    write_run(tiny_run, tmp_path / "runs" / "fresh", steps=0)
    monkeypatch.setenv("GRADLENS_RUNS", str(tmp_path / "runs"))
    at = _page(page)
    _clean(at)
    assert any("no completed step yet" in w.value for w in at.warning)


@pytest.mark.parametrize("page", ["divergence", "alignment", "sharing_plan"])
def test_too_few_steps_for_a_method_is_explained(tiny_run, tmp_path, monkeypatch, page):
    write_run(tiny_run, tmp_path / "runs" / "short", steps=1)
    monkeypatch.setenv("GRADLENS_RUNS", str(tmp_path / "runs"))
    at = _page(page)
    _clean(at)
    assert any("needs at least" in w.value and "this run has 1" in w.value for w in at.warning)


def test_a_one_task_run_has_no_conflicts_to_show(tiny_run, tmp_path, monkeypatch):
    write_run(tiny_run, tmp_path / "runs" / "st-only", steps=4, tasks=("st",))
    monkeypatch.setenv("GRADLENS_RUNS", str(tmp_path / "runs"))
    at = _page("conflicts")
    _clean(at)
    assert any("conflicts need ST and ASR" in i.value for i in at.info)


def test_the_runs_page_follows_the_demo_while_its_model_trains(tmp_path, monkeypatch):
    """Before the demo's grads.h5 exists, its training is followed from its log."""
    import os

    demo = tmp_path / "runs" / "demo"
    demo.mkdir(parents=True)
    (demo / "probe.log").write_text("demo 1/2: training\r 3/400\n"
                                    "2026-11-23 16:00:00 step 120/400 spa loss 3.1\n")
    (demo / "probe.pid").write_text(str(os.getpid()))  # a live process stands in for it
    monkeypatch.setenv("GRADLENS_RUNS", str(tmp_path / "runs"))
    at = _app().run()
    _clean(at)
    texts = [p.proto.text for p in at.get("progress")]
    assert any("demo: training the model it will probe, step 120 of 400" in t for t in texts)


def test_the_plan_follows_the_budget_until_a_person_edits_it(tiny_run, tmp_path, monkeypatch):
    """A budget change re-proposes an unedited plan; with edits in the table it says so and
    offers a one-click re-proposal; the diff lists only what the person changed."""
    with Run(tiny_run) as src:
        modules, langs, k = src.modules, src.languages, src.sketch_dim
    rng = np.random.default_rng(0)
    L, M, S = len(langs), len(modules), 20
    directions = rng.normal(size=(2, M, k))
    group = np.array([0, 0, 1, 1])                            # spa ita | deu rus, everywhere
    out = tmp_path / "runs" / "planted"
    with RunWriter(out, languages=langs, tasks=["st", "asr"], modules=modules, sketch_dim=k,
                   sketch_seed=0, model="tiny", model_config={},
                   probe_config={"steps": S, "tasks": ["st", "asr"]}) as w:
        for step in range(S):
            mean = directions[group]                          # [L, M, k]
            x = mean[:, None] + 0.5 * rng.normal(size=(L, 2, M, k))
            w.append(step, x.astype(np.float16), np.ones((L, 2, M), np.float32),
                     np.ones((L, 2), np.float32))
    monkeypatch.setenv("GRADLENS_RUNS", str(tmp_path / "runs"))
    at = _page("sharing_plan")
    at.slider(key="plan_budget").set_value(0.0).run()
    _clean(at)
    assert at.metric[0].value == "0"                          # nothing fits in no budget
    at.slider(key="plan_budget").set_value(0.5).run()
    _clean(at)
    split = int(at.metric[0].value)
    assert split > 0 and not at.info                          # the table followed the budget
    assert any("No change from the proposed plan" in c.value for c in at.caption)
    key = f"plan_editor_{at.session_state['plan_version']}"
    at.session_state[key] = {"edited_rows": {}, "deleted_rows": [0], "added_rows": []}
    at.run()
    _clean(at)
    assert int(at.metric[0].value) == split - 1
    diffs = [df.value for df in at.dataframe if "change" in df.value.columns]
    assert len(diffs) == 1 and list(diffs[0]["change"]) == ["removed"]  # the person's one edit
    at.slider(key="plan_budget").set_value(0.3).run()
    _clean(at)
    assert any("The table holds your edits" in i.value for i in at.info)
    at.button(key="plan_repropose").click().run()
    _clean(at)
    assert not at.info and any("No change from the proposed plan" in c.value for c in at.caption)


def test_the_servers_evidence_memory_is_bounded_and_keeps_one_state_per_run():
    from gradlens.ui import cache

    cache._evidence_store().clear()
    for mtime in range(5):  # a live probe: a new mtime at every step
        cache._remember(("runs/live", float(mtime), None), [])
    cache._remember(("runs/live", 4.0, (0, 1, 2)), [])              # a window of the same state
    assert list(cache._evidence_store()) == [("runs/live", 4.0, None), ("runs/live", 4.0, (0, 1, 2))]
    for i in range(10):
        cache._remember((f"runs/r{i}", 1.0, None), [])
    assert len(cache._evidence_store()) == cache.KEEP
    assert ("runs/r9", 1.0, None) in cache._evidence_store()
    cache._evidence_store().clear()


def test_the_picked_run_lives_in_the_url_and_the_table_shows_its_settings(app_runs, tiny_run):
    write_run(tiny_run, app_runs / "other", steps=2)  # newer: the default pick
    at = _app()
    at.query_params["run"] = "small"
    at.run()
    _clean(at)
    assert at.sidebar.selectbox[0].value == "small"  # the link's run, not the newest
    at.sidebar.selectbox[0].set_value("other").run()
    assert at.query_params["run"] == ["other"] or at.query_params["run"] == "other"
    table = at.dataframe[0].value
    row = table[table["run"] == "small"].iloc[0]
    assert row["corpus"] == "spoken-numbers" and row["k"] == SMALL["sketch_dim"]
    assert row["batch"] == SMALL["batch_size"] and row["training steps between"] == 1
    assert row["created"][:2] == "20"
    assert at.number_input(key="probe_between").value == 0


def test_languages_picked_into_groups_land_in_the_full_width_table(app_runs):
    at = _page("sharing_plan")
    _clean(at)
    module = json.loads(json.dumps(Run(app_runs / "small").modules.name))[5]
    at.selectbox(key="plan_pick_module").set_value(module).run()
    at.number_input(key="plan_pick_n").set_value(2).run()
    at.multiselect(key=f"plan_pick_{module}_2_0").set_value(["spa", "deu"])
    at.multiselect(key=f"plan_pick_{module}_2_1").set_value(["ita"]).run()
    assert any("Not in a group yet: rus" in c.value for c in at.caption)
    at.multiselect(key=f"plan_pick_{module}_2_1").set_value(["ita", "rus"]).run()
    at.button(key="plan_pick_apply").click().run()
    _clean(at)
    work = at.session_state["plan_work"][str(app_runs / "small")]  # what the table now holds
    assert work.modules[module].groups == (("spa", "deu"), ("ita", "rus"))
    assert work.modules[module].edited is True
    assert any(module in str(df.value.to_dict()) for df in at.dataframe)  # the diff lists it
    assert not at.error


def test_a_plan_over_the_budget_says_so_and_saves_only_when_asked(app_runs):
    at = _page("sharing_plan")
    at.slider(key="plan_budget").set_value(0.0).run()
    _clean(at)
    module = Run(app_runs / "small").modules.name[5]
    at.selectbox(key="plan_pick_module").set_value(module).run()
    at.number_input(key="plan_pick_n").set_value(2).run()
    at.multiselect(key=f"plan_pick_{module}_2_0").set_value(["spa", "deu"])
    at.multiselect(key=f"plan_pick_{module}_2_1").set_value(["ita", "rus"]).run()
    at.button(key="plan_pick_apply").click().run()
    _clean(at)
    assert any(e.value.startswith("Over the budget by") for e in at.error)
    assert at.button(key="plan_save").disabled
    at.checkbox(key="plan_over_ok").check().run()
    assert not at.button(key="plan_save").disabled
    at.button(key="plan_save").click().run()
    saved = load_plan(app_runs / "small" / "plan.json")
    assert saved.modules[module].edited and saved.decisions[module].startswith(
        "split by hand into 2 groups (the analysis: ")
    assert not at.get("metric")[1].proto.delta  # no delta arrows on plain figures


def test_two_runs_compare_side_by_side(app_runs, tiny_run):
    shutil.copytree(tiny_run, app_runs / "again", ignore=shutil.ignore_patterns("*.lock", "*.pt"))
    at = _page("compare")
    _clean(at)
    assert at.selectbox(key="cmp_other").value.name in ("small", "again")
    specs = [_spec(c) for c in at.get("plotly_chart")]
    assert sum(" · st · mean" in c for c in specs) == 2  # one tree per run, the same unit (4
    # languages: the mean similarity, whose clades are tested)
    assert sum("Excess divergence" in c for c in specs) == 2
    assert any("both propose the same plan" in c.value for c in at.caption)  # same data
    assert not any("probed different" in w.value for w in at.warning)  # the same probe twice
    trees = [json.loads(c.proto.spec)["layout"]["yaxis"]["range"] for c in at.get("plotly_chart")
             if " · st · mean" in _spec(c)]
    assert trees[0] == trees[1]  # one scale for both sides


def test_runs_that_probed_different_languages_are_compared_with_a_warning(app_runs, tiny_run):
    write_run(tiny_run, app_runs / "fewer", steps=6)
    with h5py.File(app_runs / "fewer" / "grads.h5", "r+") as f:
        f.attrs["model"] = "medium-random"
    at = _page("compare")
    _clean(at)
    other = at.selectbox(key="cmp_other").value.name
    warning = next(w.value for w in at.warning if "probed different" in w.value)
    assert "models (" in warning and ("medium-random" in warning) and other in ("small", "fewer")


def test_one_run_compares_over_its_own_training_in_windows(app_runs, tiny_run):
    """A run probed with training between its steps, cut into windows of its steps: a tree per
    window for the same unit, each window's own ranking, the top modules' excess divergence
    across the windows, and the plans of the first and last window; each window's evidence is
    kept in the run."""
    write_run(tiny_run, app_runs / "trained", steps=27, between=3)   # the newest: picked
    at = _page("compare")
    at.radio(key="cmp_mode").set_value("over its own training").run()
    _clean(at)
    assert [h.value for h in at.subheader][:2] == ["window 1 of 2 · steps 0–13",
                                                   "window 2 of 2 · steps 14–26"]
    assert any("trained 3 step(s) between probe steps" in c.value and "after 42–78" in c.value
               and "pace and trend within it taken out" in c.value for c in at.caption)
    specs = [_spec(c) for c in at.get("plotly_chart")]
    assert sum(" · st · mean" in c for c in specs) == 2
    assert sum("Excess divergence, top modules" in c for c in specs) == 2
    assert any("Excess divergence over the windows" in c for c in specs)
    assert (app_runs / "trained" / "analysis" / "evidence-steps-14-26.npz").exists()
    moved = next(c.value for c in at.caption if c.value.startswith("How far"))
    assert "from steps 0–13 to steps 14–26" in moved and (
        "noise-corrected cosine" in moved or "cannot be told from noise" in moved)
    at.slider(key="cmp_windows").set_value(3).run()
    _clean(at)
    assert [h.value for h in at.subheader][:3] == ["window 1 of 3 · steps 0–8",
                                                   "window 2 of 3 · steps 9–17",
                                                   "window 3 of 3 · steps 18–26"]
    assert sum(" · st · mean" in _spec(c) for c in at.get("plotly_chart")) == 3


def test_over_training_says_when_windows_are_the_same_model_or_too_short(app_runs, tiny_run):
    at = _page("compare")
    at.radio(key="cmp_mode").set_value("over its own training").run()
    _clean(at)
    # 11 steps of a run that trained between them: a window's trend takes 6 of its 9
    assert any("needs at least 18 (9 per window, as many as the paired similarity" in i.value
               for i in at.info)
    write_run(tiny_run, app_runs / "still", steps=6)
    at = _page("compare")
    at.radio(key="cmp_mode").set_value("over its own training").run()
    _clean(at)
    assert any("did not train between its probe steps" in i.value for i in at.info)
    assert [s.key for s in at.slider] == ["cmp_budget"]  # 6 steps make only 2 windows


def test_compare_with_one_run_says_how_to_get_another(app_runs):
    at = _page("compare")
    _clean(at)
    assert any("Only one run" in i.value for i in at.info)


def test_a_live_run_shows_its_elapsed_time_and_what_is_left():
    import datetime as dt

    from gradlens.ui import timing

    start = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    row = {"created_at": start.isoformat()}
    now = start.timestamp() + 125
    assert timing(row, 0, 10, now) == "2 min 5 s elapsed"
    assert timing(row, 5, 10, now) == "2 min 5 s elapsed · about 2 min 5 s left"
    assert timing({}, 1, 2, now) == "elapsed time unknown"


def test_an_experiment_starts_from_the_saved_plan(app_runs):
    plan = new_plan("tiny", SMALL["languages"], str(app_runs / "small"),
                    {"speech_encoder.encoder.layers.1.ffn2": [["spa", "ita"], ["deu", "rus"]]})
    save_plan(plan, app_runs / "small" / "plan.json")
    at = _page("experiments")
    _clean(at)
    at.number_input(key="exp_seeds").set_value(1)
    at.number_input(key="exp_steps").set_value(2)
    at.multiselect(key="exp_arms").set_value(["proposed", "shared"])
    _click(at, "Start the experiment")
    _clean(at)
    # the cost first, with the one-seed warning; nothing submitted before the second click
    cost = next(w.value for w in at.warning if "This experiment trains" in w.value)
    assert "2 jobs (2 arms × 1 seed(s)) of 2 steps each" in cost
    assert "One seed gives no verdict" in cost and not at.success
    assert not list(app_runs.glob("*/experiment.json"))
    _click(at, "Start 2 jobs")
    _clean(at)
    assert any("submitted 2 job(s)" in s.value for s in at.success)
    name = at.selectbox(key="exp_pick").value
    spec = json.loads((app_runs / name / "experiment.json").read_text())
    assert sorted(spec["arms"]) == ["proposed", "shared"] and spec["config"]["steps"] == 2
    assert spec["config"]["corpus"] == "spoken-numbers"  # the corpus the run probed


def test_a_run_trained_between_its_probe_steps_is_read_with_its_caveat(app_runs, tiny_run):
    """Its steps are not exchangeable, as the divergence, alignment and Mantel tests assume
    (docs/results.md §1b, §1e, §1f): the pages that report them or propose a plan say how
    such a run is read instead (§1i); a run probed on a fixed model does not carry the note."""
    write_run(tiny_run, app_runs / "fixed", steps=9)   # the newest: picked
    for page in ("divergence", "sharing_plan", "alignment", "dendrograms"):
        at = _page(page)
        _clean(at)
        assert not any("between its probe steps" in w.value for w in at.warning)
    write_run(tiny_run, app_runs / "trained", steps=11, between=4)   # newer still
    for page in ("divergence", "sharing_plan", "alignment", "dendrograms"):
        at = _page(page)
        _clean(at)
        caveat = next(w.value for w in at.warning if "between its probe steps" in w.value)
        assert "trained 4 step(s)" in caveat and "probe with no training between steps" in caveat
        assert "§1i" in caveat
        # each test says what it reads instead of the steps
        assert ("own pace" in caveat) == (page in ("divergence", "sharing_plan", "dendrograms"))
        assert ("CCA" in caveat) == (page == "alignment")
        assert ("agreement with URIEL" in caveat) == (page == "dendrograms")

def test_the_plan_page_says_how_well_plans_from_other_probes_agree(app_runs):
    at = _page("sharing_plan")
    _clean(at)
    assert any("--against RUN2 RUN3" in c.value for c in at.caption)  # how to find out
    (app_runs / "small" / "plan-agreement.json").write_text(json.dumps(
        {"runs": ["a", "b", "c"], "splits": [["m.1"], ["m.1", "m.2"], []], "mean_jaccard": 0.5,
         "mean_ari": 0.25, "pairs": []}))
    at = _page("sharing_plan")
    _clean(at)
    shown = next(i.value for i in at.info if "other probe(s)" in i.value)
    assert "Against 2 other probe(s)" in shown and "Jaccard 0.50" in shown and "index 0.25" in shown
