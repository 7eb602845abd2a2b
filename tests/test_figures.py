"""docs/performance.md's "Current figures" table is what the benches' JSON says."""

import sys

from conftest import ROOT


def test_the_current_figures_table_is_made_from_the_bench_results():
    sys.path.insert(0, str(ROOT / "bench"))
    import figures

    doc = figures.DOC.read_text()
    table = doc.split(figures.START, 1)[1].split(figures.END, 1)[0].strip().splitlines()
    assert table == figures.rows(), "run `python bench/figures.py` after a bench writes its JSON"
    assert len(table) > 8 and all(line.startswith("| ") for line in table)
