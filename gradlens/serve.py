"""``python -m gradlens.serve [streamlit run flags]``: serve ``app.py`` with the app's heavy
imports done before the server takes its first visitor.

A Streamlit server imports a page's modules during the first visitor's first script run: numpy,
pandas, h5py, SciPy, Plotly and the analysis take about a second on 2 cores, which
the first page a researcher opens would otherwise wait for. Imported here, in the server's own
process, they are already in ``sys.modules`` when that script runs. Only modules that need no
Streamlit runtime are imported (no ``st.cache_data`` is created outside it). ``gradlens app``
runs this in its own process's place, so stopping it stops the server.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app.py"
WARM = ("numpy", "pandas", "h5py", "scipy.cluster.hierarchy",
        "plotly.graph_objects", "plotly.subplots", "gradlens.plots", "gradlens.store",
        "gradlens.evidence", "gradlens.analysis.allocation", "gradlens.analysis.typology",
        "gradlens.launch", "gradlens.languages")


def main(argv: list[str] | None = None) -> int:
    for name in WARM:
        importlib.import_module(name)
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *(sys.argv[1:] if argv is None else argv)]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
