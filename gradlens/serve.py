"""``python -m gradlens.serve [streamlit run flags]``: serve ``app.py`` with what its first
visitor would wait for done before one comes.

A Streamlit server does a page's first work during the first visitor's first script run, on
top of what the browser needs to load Streamlit and Plotly. Two parts of it are done here:

* The heavy imports (numpy, pandas, h5py, SciPy, Plotly, the analysis: about a second on
  2 cores), in the server's own process before it starts, so they are in ``sys.modules`` when
  that script runs. Only modules that need no Streamlit runtime (no ``st.cache_data`` is
  created outside it).
* Once the server's runtime exists, one thread does the rest, while the researcher's browser
  opens and loads Streamlit: the imports of ``app.py`` and its pages, read from their source;
  the first walk of the call stack (Streamlit's first element walks it, and the first walk
  maps every loaded module to its file: 0.1-0.2 s); and ``ui.warm_first_visit``, which reads
  the newest run's kept evidence and makes the Dendrograms page's opening view (0.4 s). It
  fills the app's own caches: a visitor who comes while it works waits for a value it is
  making (Streamlit's cache) instead of making it again, except the evidence read (0.2 s),
  which has no lock. ``GRADLENS_PREFETCH=0`` turns it off, with the background trees.

``gradlens app`` runs this in its own process's place, so stopping it stops the server.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import threading
import time
from pathlib import Path

from gradlens.paths import made_ahead

APP = Path(__file__).resolve().parent.parent / "app.py"
WARM = ("numpy", "pandas", "h5py", "scipy.cluster.hierarchy",
        "plotly.graph_objects", "plotly.subplots", "gradlens.plots", "gradlens.store",
        "gradlens.evidence", "gradlens.analysis.allocation", "gradlens.analysis.typology",
        "gradlens.launch", "gradlens.languages")
RUNTIME_WAIT_S = 120  # how long the warming thread waits for the server's runtime
# A research server does not reload on save, and Streamlit's watcher is costly here: it watches
# the project folder recursively (.venv and runs/ included), its inotify queue overflows, and
# re-walking the tree after each overflow kept a core busy whenever a page was open (issue 37).
# The toolbar shows a researcher's options only (no "Deploy", which means Streamlit's cloud).
# .streamlit/config.toml says the same for a plain `streamlit run app.py`.
SERVER_FLAGS = ("--server.fileWatcherType", "none", "--server.runOnSave", "false",
                "--client.toolbarMode", "viewer")


def page_imports(app: Path = APP) -> list[str]:
    """The modules ``app`` and the scripts in its ``pages/`` import at their top level, in the
    order they name them."""
    names: list[str] = []
    for script in [app, *sorted((app.parent / "pages").glob("*.py"))]:
        for node in ast.parse(script.read_text(), filename=str(script)).body:
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.append(node.module)
                names += [f"{node.module}.{alias.name}" for alias in node.names  # from gradlens
                          if _in_repo(app.parent, f"{node.module}.{alias.name}")]  # import ui
    return list(dict.fromkeys(names))


def _in_repo(root: Path, name: str) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def warm_first_visit() -> None:
    """The warming thread: waits for the server's runtime, then does what its first visit would
    (the module docstring). A failure costs only the time it would have saved, so it is
    reported in one line and the server serves on."""
    from streamlit import runtime

    deadline = time.monotonic() + RUNTIME_WAIT_S
    while not runtime.exists():
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)
    try:
        for name in page_imports():
            importlib.import_module(name)
        inspect.stack()
        from gradlens import ui

        ui.warm_first_visit(ui.run_paths())
    except Exception as exc:  # noqa: BLE001 - the pages do the same work, and report it
        print(f"gradlens: nothing made ahead of the first visit ({type(exc).__name__}: {exc})",
              file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    from gradlens.launch import reap_inherited_children

    reap_inherited_children()  # the demo's build, started by `gradlens app` before its exec
    for name in WARM:
        importlib.import_module(name)
    from streamlit.web import cli

    if made_ahead():
        threading.Thread(target=warm_first_visit, name="gradlens-warm", daemon=True).start()
    sys.argv = ["streamlit", "run", str(APP), *SERVER_FLAGS,
                *(sys.argv[1:] if argv is None else argv)]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
