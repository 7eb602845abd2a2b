"""Figures are pure functions: data in, go.Figure out, tested without Streamlit."""

import numpy as np
import plotly.graph_objects as go
import pytest

from gradlens.analysis.clustering import cluster_languages
from gradlens.plots import (budget_figure, dendrogram_figure, heatmap_figure, lines_figure, ranking_figure,
                            small_multiples_figure, spectrum_figure)

LANGS = ["spa", "ita", "deu", "rus"]


def test_heatmap_keeps_labels_and_orientation():
    z = np.arange(8).reshape(2, 4)
    fig = heatmap_figure(z, LANGS, ["m1", "m2"], "t", "c", 0, 7)
    assert isinstance(fig, go.Figure)
    assert list(fig.data[0].x) == LANGS and list(fig.data[0].y) == ["m1", "m2"]
    assert fig.layout.yaxis.autorange == "reversed" and fig.data[0].zmax == 7


def test_ranking_highlights_and_marks_the_threshold():
    fig = ranking_figure(["a", "b"], [2.0, 0.5], "t", "ratio", line=1.0, highlight={"a"})
    assert list(fig.data[0].marker.color) == ["#d62728", "#1f77b4"]
    assert fig.layout.shapes[0].x0 == 1.0


def test_budget_bars_are_cumulative_with_the_budget_line():
    fig = budget_figure(["a", "b", "c"], [10, 20, 5], budget=40)
    assert list(fig.data[0].base) == [0, 10, 30] and list(fig.data[0].x) == [10, 20, 5]
    assert fig.layout.shapes[0].x0 == 40 and "35 of 40" in fig.layout.title.text


def test_spectrum_in_degrees():
    fig = spectrum_figure([0.9, 0.2], [0.0, np.pi / 2], ("spa", "deu"))
    assert list(fig.data[0].y) == [0.9, 0.2]
    assert np.allclose(fig.data[1].y, [0, 90]) and fig.layout.title.text == "spa vs deu"
    assert not fig.layout.shapes
    with_chance = spectrum_figure([0.9, 0.2], [0.0, np.pi / 2], ("spa", "deu"), chance=0.38)
    assert with_chance.layout.shapes[0].y0 == 0.38
    assert "chance 0.38" in with_chance.layout.annotations[-1].text


def test_lines_one_per_series():
    fig = lines_figure(range(3), {"spa": [1, 2, 3], "deu": [0, -1, 0]}, "t", "step", "cos", True)
    assert [d.name for d in fig.data] == ["spa", "deu"] and fig.layout.shapes


def test_small_multiples_one_panel_per_unit_and_one_legend_entry_per_family():
    rng = np.random.default_rng(0)
    clusterings = {f"layer {i}": cluster_languages(rng.normal(size=(4, 16)), LANGS)
                   for i in range(5)}
    fig = small_multiples_figure(clusterings, columns=4)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == list(clusterings)
    legend = [d.name for d in fig.data if d.showlegend]
    assert sorted(legend) == ["Germanic", "Romance", "Slavic"]


def test_every_tree_names_its_leaves_and_stays_readable_at_32_languages():
    from gradlens.languages import LANGUAGES

    rng = np.random.default_rng(1)
    fig = dendrogram_figure(cluster_languages(rng.normal(size=(4, 16)), LANGS))
    assert sorted(fig.layout.xaxis.ticktext) == sorted(LANGS) and fig.layout.xaxis.tickangle == 0
    many = sorted(LANGUAGES)[:32]
    big = dendrogram_figure(cluster_languages(rng.normal(size=(32, 64)), many))
    assert sorted(big.layout.xaxis.ticktext) == many
    assert big.layout.xaxis.tickangle == -90 and big.layout.xaxis.tickfont.size >= 8
    panels = small_multiples_figure({f"layer {i}": cluster_languages(rng.normal(size=(32, 64)), many)
                                     for i in range(3)})
    for axis in ("xaxis", "xaxis2", "xaxis3"):
        assert sorted(panels.layout[axis].ticktext) == many


def test_many_series_keep_every_name_in_a_legend_under_the_plot():
    names = [f"l{i}" for i in range(14)]
    fig = lines_figure(range(3), {n: [0, 1, 2] for n in names}, "t", "step", "cos")
    assert [d.name for d in fig.data] == names and fig.layout.legend.orientation == "h"
    assert fig.layout.height > 400


def test_a_one_point_curve_has_an_axis_from_zero():
    fig = lines_figure([100], {"all": [44.0]}, "dev chrF", "step", "chrF")
    assert fig.layout.xaxis.range[0] == 0 and fig.layout.xaxis.range[1] > 100


def test_step_wide_columns_are_outlined_and_labelled():
    from gradlens.plots import mark_columns

    fig = mark_columns(heatmap_figure(np.zeros((3, 5)), list(range(5)), ["a", "b", "c"], "t", "c"),
                       [1, 3], "step-wide")
    assert [(s.x0, s.x1) for s in fig.layout.shapes] == [(0.5, 1.5), (2.5, 3.5)]
    assert [a.text for a in fig.layout.annotations] == ["step-wide", "step-wide"]


def test_lines_with_intervals_set_their_series_apart_and_keep_the_labels():
    errors = {"a": [(0.1, 0.2), (0.1, 0.1)], "b": [(0.3, 0.3), (0.0, 0.5)]}
    fig = lines_figure(["steps 0–4", "steps 5–8"], {"a": [1.0, 2.0], "b": [1.5, 1.0]}, "t",
                       "window", "excess", errors=errors)
    a, b = fig.data
    assert list(a.error_y.array) == [0.2, 0.1] and list(b.error_y.arrayminus) == [0.3, 0.0]
    assert a.x[0] < 0 < b.x[0] and a.x[1] < 1 < b.x[1]          # apart, around each window
    assert list(fig.layout.xaxis.ticktext) == ["steps 0–4", "steps 5–8"]
    plain = lines_figure(range(2), {"a": [1.0, 2.0]}, "t", "step", "y")
    assert list(plain.data[0].x) == [0, 1] and plain.data[0].error_y.array is None


def test_languages_joined_at_zero_are_named_and_never_drawn_as_a_finding():
    from gradlens.analysis.clustering import cluster_similarity
    from gradlens.plots import dendrogram_figure, similarity_figure

    langs = ["spa", "ita", "por", "deu", "nld"]
    sim = np.array([[1.0, 1.3, 1.1, 0.2, 0.1],   # corrected estimates above 1: clipped
                    [1.3, 1.0, 1.2, 0.1, 0.2],
                    [1.1, 1.2, 1.0, 0.3, 0.2],
                    [0.2, 0.1, 0.3, 1.0, 0.6],
                    [0.1, 0.2, 0.2, 0.6, 1.0]])
    clustering = cluster_similarity(sim, langs)
    assert clustering.untold() == [["spa", "ita", "por"]]
    fig = dendrogram_figure(clustering)
    zero = [t for t in fig.data if t.name == "not told apart within noise"]
    assert len(zero) == 1 and len(zero[0].x) == 2  # the two merges at height 0
    assert "linkage distance (1 − similarity)" in fig.layout.yaxis.title.text
    heat = similarity_figure(clustering).data[0]
    leaves = list(heat.x)  # ordered as the tree: the untold three side by side
    assert {"spa", "ita", "por"} in (set(leaves[:3]), set(leaves[2:]))
    assert heat.zmax == pytest.approx(1.3) and heat.zmin == pytest.approx(-1.3)  # fits the values
    none = cluster_similarity(np.array([[1, .5, .2], [.5, 1, .4], [.2, .4, 1.]]), langs[:3])
    assert none.untold() == []
    assert not [t for t in dendrogram_figure(none).data if t.name == "not told apart within noise"]


def test_the_embedding_module_is_labelled_as_such_not_as_shared_by_all():
    fig = ranking_figure(["shared", "text_decoder.layers.0.ffn"], [0.2, 0.1], "t", "x")
    assert list(fig.data[0].y) == ["shared (embeddings)", "text_decoder.layers.0.ffn"]
    assert list(budget_figure(["shared"], [10], 100).data[0].y) == ["shared (embeddings)"]


def test_thirty_two_languages_get_thirty_two_colours():
    series = {f"l{i}": [1.0, 2.0] for i in range(32)}
    fig = lines_figure([0, 1], series, "dev chrF per language", "step", "chrF")
    assert len({t.line.color for t in fig.data}) == 32
