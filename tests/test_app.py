"""AppTest of the home page and the dendrogram page on a real tiny run."""

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, SMALL

APP = str(ROOT / "app.py")


@pytest.fixture
def app_runs(tiny_run, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run, runs / "small", ignore=shutil.ignore_patterns("*.lock", "*.pt"))
    monkeypatch.setenv("GRADLENS_RUNS", str(runs))
    return runs


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60)


def test_home_lists_the_run(app_runs):
    at = _app().run()
    assert not at.exception
    df = at.dataframe[0].value
    assert list(df["run"]) == ["small"] and df["languages"][0] == " ".join(SMALL["languages"])
    assert at.sidebar.selectbox[0].value == "small"


def test_dendrogram_page_draws_the_tree_and_partition(app_runs):
    at = _app().run()
    at.switch_page("pages/dendrograms.py").run()
    assert not at.exception and not at.error
    charts = at.get("plotly_chart")
    assert len(charts) == 3  # dendrogram, similarity, small multiples per layer
    assert '"name":"Romance"' in charts[0].proto.spec and '"name":"Slavic"' in charts[0].proto.spec
    assert any("Partition:" in m.value for m in at.markdown)
    at.radio(key="dend_granularity").set_value("block").run()
    assert at.selectbox(key="dend_unit_block").options == ["embeddings", "speech_encoder", "adapter",
                                                            "text_decoder"]
    at.slider(key="dend_groups").set_value(4).run()
    partition = next(m.value for m in at.markdown if "Partition:" in m.value)
    assert partition.count("{") == 4


def test_no_runs_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADLENS_RUNS", str(tmp_path / "empty"))
    at = _app().run()
    assert not at.exception
    assert any("python -m gradlens demo" in i.value for i in at.info)
    at.switch_page("pages/dendrograms.py").run()
    assert not at.exception and any("No run picked" in i.value for i in at.info)


def test_a_broken_run_shows_a_message_not_a_traceback(tmp_path, monkeypatch):
    (tmp_path / "runs" / "broken").mkdir(parents=True)
    (tmp_path / "runs" / "broken" / "grads.h5").write_bytes(b"\x89HDF\r\n\x1a\ngarbage")
    monkeypatch.setenv("GRADLENS_RUNS", str(tmp_path / "runs"))
    at = _app().run()
    assert not at.exception
    assert any("not a readable HDF5 file" in w.value for w in at.warning)
    at.switch_page("pages/dendrograms.py").run()
    assert not at.exception and any("cannot be read" in e.value for e in at.error)
