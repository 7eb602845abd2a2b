"""Every page loads in a real headless Chromium with no exception on it; screenshots are kept
in ``test-artifacts/`` for a person to look at."""

import shutil

import pytest

from browser import (PAGES, ROOT, browser_page, chromium_path, inotify_watchers, served_app,
                     wait_rendered)

pytestmark = [pytest.mark.browser, pytest.mark.integration,
              pytest.mark.skipif(chromium_path() is None,
                                 reason="needs Debian's chromium (tests/setup.sh installs it)")]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def app_url(tiny_run, tmp_path_factory):
    runs = tmp_path_factory.mktemp("browser") / "runs"
    shutil.copytree(tiny_run, runs / "small", ignore=shutil.ignore_patterns("*.lock", "*.pt"))
    with served_app(runs, runs.parent / "app.log") as url:
        yield url


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_renders_without_an_exception(app_url, path):
    ARTIFACTS.mkdir(exist_ok=True)
    with browser_page() as page:
        page.goto(f"{app_url}/{path}")
        wait_rendered(page)
        page.get_by_text(PAGES[path], exact=False).first.wait_for(timeout=60_000)
        if path in ("dendrograms", "divergence", "alignment", "conflicts"):
            page.wait_for_selector(".js-plotly-plot", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / f"page-{path or 'runs'}.png"), full_page=True)
        assert page.locator('[data-testid="stException"]').count() == 0
        assert "Traceback" not in page.inner_text("body")


def test_a_deep_link_as_a_fresh_servers_first_request_goes_through_the_app(tiny_run, tmp_path):
    """Streamlit would run pages/divergence.py alone (no run picker, no navigation) here."""
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run, runs / "small", ignore=shutil.ignore_patterns("*.lock", "*.pt"))
    with served_app(runs, tmp_path / "app.log") as url, browser_page() as page:
        page.goto(f"{url}/divergence")
        wait_rendered(page)
        page.wait_for_selector(".js-plotly-plot", timeout=60_000)
        assert "Self and cross divergence" in page.inner_text("body")
        assert page.get_by_text("Subspace alignment").count() >= 1  # app.py's navigation
        assert page.locator('[data-testid="stException"]').count() == 0
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text().split()
        assert "Runs" in nav and "app" not in nav  # the home entry's title on every path


@pytest.mark.parametrize("how", ["gradlens app", "streamlit run app.py"])
def test_a_served_page_watches_no_files_and_offers_no_deploy(tiny_run, tmp_path, how):
    """Streamlit's watcher walked the project folder (.venv and runs/ too) again at each inotify
    overflow and kept a core busy while any tab was open; a research server does not reload on
    save, so both ways of serving the app leave it off (gradlens.serve, .streamlit/config.toml)."""
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run, runs / "small", ignore=shutil.ignore_patterns("*.lock", "*.pt"))
    script = None if how == "gradlens app" else ROOT / "app.py"
    with served_app(runs, tmp_path / "app.log", script) as url, browser_page() as page:
        page.goto(f"{url}/divergence")
        wait_rendered(page)
        assert inotify_watchers(url.pid) == 0
        assert page.get_by_text("Deploy", exact=True).count() == 0  # no Streamlit cloud button


def test_the_pages_show_each_decision_and_no_unexplained_zero_branch(app_url):
    """Issue 37 in a real browser: the Divergence page shows each module's decision and its
    reason beside its bar (the bars' hover); the Dendrograms page never draws
    a branch joined at 0 without the note that those languages cannot be told apart."""
    with browser_page() as page:
        page.goto(f"{app_url}/divergence")
        wait_rendered(page)
        page.wait_for_selector(".js-plotly-plot", timeout=60_000)
        page.wait_for_function("""() => [...document.querySelectorAll('.js-plotly-plot')]
            .some(p => JSON.stringify(p.data.map(t => t.customdata || [])).includes('kept shared')
                       || JSON.stringify(p.data.map(t => t.customdata || [])).includes('split into'))""",
                               timeout=60_000)  # the bars carry each module's reason

        page.goto(f"{app_url}/dendrograms")
        wait_rendered(page)
        page.wait_for_selector(".js-plotly-plot", timeout=60_000)
        traces = page.evaluate("""() => document.querySelector('.js-plotly-plot').data
            .map(t => t.name || '')""")
        joined = "not told apart within noise" in traces
        assert joined == ("Joined at 0 (grey bars on the tree)" in page.inner_text("body"))
        assert page.locator('[data-testid="stException"]').count() == 0


def test_while_the_demo_builds_the_home_page_says_so_and_not_that_there_is_nothing(tmp_path):
    """Issue 37 item 4 in a real browser: the demo's build in progress (its log and a live
    process id) is what the Runs page shows, not "No runs yet … make the demo run"."""
    import os

    runs = tmp_path / "runs"
    (runs / "demo").mkdir(parents=True)
    (runs / "demo" / "probe.log").write_text("step 200/400 deu loss 2.1\r")
    (runs / "demo" / "probe.pid").write_text(str(os.getpid()))  # a live process
    with served_app(runs, tmp_path / "app.log") as url, browser_page() as page:
        page.goto(url)
        wait_rendered(page)
        page.get_by_text("step 200 of 400", exact=False).first.wait_for(timeout=60_000)
        body = page.inner_text("body")
        assert "No run is finished yet" in body and "Make the demo run" not in body
        assert page.locator('[data-testid="stException"]').count() == 0
