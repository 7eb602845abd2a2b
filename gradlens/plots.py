"""Figures: pure functions, data in, ``plotly.graph_objects.Figure`` out (no streamlit)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from scipy.cluster.hierarchy import dendrogram as _dendrogram

from gradlens.analysis.clustering import SUPPORTED, ZERO_HEIGHT, Clustering
from gradlens.languages import LANGUAGES
from gradlens.modules import module_label


# 32 distinct colours: one per language of a 32-language run, or per family of the embedded
# corpora (20 families); plotly's default cycle repeats after 10
PALETTE = list(dict.fromkeys(qualitative.D3 + qualitative.Alphabet + qualitative.Dark24))[:32]


def family_colors(families: list[str]) -> dict[str, str]:
    """A stable colour per family, in first-seen order."""
    out: dict[str, str] = {}
    for fam in families:
        if fam not in out:
            out[fam] = PALETTE[len(out) % len(PALETTE)]
    return out


def family_of(lang: str) -> str:
    return LANGUAGES[lang].family if lang in LANGUAGES else "unknown"


def _links(tree: dict, width: float) -> go.Scatter:
    """All of a dendrogram's links as one trace (segments split by gaps): one trace, not one
    per link, keeps big trees light to send and draw."""
    xs: list = []
    ys: list = []
    for x, y in zip(tree["icoord"], tree["dcoord"]):
        xs += [*x, None]
        ys += [*y, None]
    return go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#555", width=width),
                      hoverinfo="skip", showlegend=False)


def _leaf_axis(leaves: list[str], size: int = 12) -> dict:
    """An x axis whose ticks are the leaves' names: always shown (on the page and in every
    export), turned upright and smaller once many would collide (readable at 32 and more)."""
    many = len(leaves) > 12
    return dict(tickvals=[5 + 10 * i for i in range(len(leaves))], ticktext=list(leaves),
                tickangle=-90 if many else 0, tickfont=dict(size=max(8, size - 3) if many else size),
                showgrid=False, zeroline=False, showticklabels=True)


def _node_positions(clustering: Clustering, leaf_order: list[int]) -> list[tuple[float, float]]:
    """``(x, height)`` of each internal node in linkage order, as scipy's dendrogram draws it."""
    L = len(clustering.languages)
    x = {leaf: 5.0 + 10 * i for i, leaf in enumerate(leaf_order)}
    out = []
    for i, (a, b, height, _) in enumerate(clustering.linkage):
        x[L + i] = (x[int(a)] + x[int(b)]) / 2
        out.append((x[L + i], float(height)))
    return out


def dendrogram_figure(clustering: Clustering, title: str = "") -> go.Figure:
    """The language dendrogram of ``clustering``: leaves named and coloured by family, each
    internal node (but the root) labelled with its bootstrap support when it has one."""
    tree = _dendrogram(clustering.linkage, labels=clustering.languages, no_plot=True)
    fig = go.Figure(_links(tree, 1.5))
    nodes = _node_positions(clustering, tree["leaves"])
    if clustering.support is not None and len(clustering.support) > 1:
        support = clustering.support[:-1]
        fig.add_trace(go.Scatter(
            x=[n[0] for n in nodes[:-1]], y=[n[1] for n in nodes[:-1]], mode="text",
            text=[f"{100 * s:.0f}%" for s in support], textposition="top center",
            textfont=dict(size=12, color=["#111" if s >= SUPPORTED else "#888" for s in support]),
            name="bootstrap support of the clade",
            hovertemplate="bootstrap support of this clade: %{text}<extra></extra>"))
    zero = [n for n in nodes if n[1] <= ZERO_HEIGHT]
    if zero:  # never a zero-length branch drawn as a finding
        fig.add_trace(go.Scatter(
            x=[n[0] for n in zero], y=[0.0] * len(zero), mode="markers",
            marker=dict(symbol="line-ew-open", size=28, color="#888", line=dict(width=3)),
            name="not told apart within noise",
            hovertemplate="joined at 0: their noise-corrected similarity is at or above 1 (an "
                          "estimate above 1 is noise), so these cannot be told apart within "
                          "noise<extra></extra>"))
    leaves = tree["ivl"]
    positions = [5 + 10 * i for i in range(len(leaves))]
    families = [family_of(lang) for lang in leaves]
    colors = family_colors(sorted(set(families)))
    for fam in sorted(set(families)):
        idx = [i for i, f in enumerate(families) if f == fam]
        fig.add_trace(go.Scatter(
            x=[positions[i] for i in idx], y=[0.0] * len(idx), mode="markers", name=fam,
            text=[leaves[i] for i in idx], marker=dict(size=12, color=colors[fam]),
            hovertemplate="%{text}<extra>" + fam + "</extra>"))
    fig.update_layout(
        title=title or f"Languages by gradient distance ({clustering.method} linkage)",
        xaxis=_leaf_axis(leaves),
        yaxis=dict(title=("Ward height √(2(1 − similarity))" if clustering.method == "ward"
                          else f"{clustering.method}-linkage distance (1 − similarity)"),
                   rangemode="tozero"),
        legend=dict(title="family"), height=460 + (40 if len(leaves) > 12 else 0),
        margin=dict(l=60, r=20, t=60, b=40))
    return fig


SIMILARITY_LABELS = {"mean": ("Noise-corrected cosine of mean gradients", "cos"),
                     "paired": ("Correlation of paired steps (the same batches), own noise corrected",
                                "r")}


def similarity_figure(clustering: Clustering, title: str = "", kind: str = "mean") -> go.Figure:
    """Heatmap of the language × language similarity, named for its ``kind``
    (``SIMILARITIES``: the mean gradients' cosine or the paired steps' correlation)."""
    order = _dendrogram(clustering.linkage, no_plot=True)["leaves"]  # as the tree orders them
    langs = [clustering.languages[i] for i in order]
    z = np.asarray(clustering.similarity)[np.ix_(order, order)]
    name, symbol = SIMILARITY_LABELS[kind]
    off = z[~np.eye(len(z), dtype=bool)]
    top = max(1e-9, float(np.abs(off).max())) if off.size else 1.0  # the scale fits the values
    fig = go.Figure(go.Heatmap(
        z=z, x=langs, y=langs, zmin=-top, zmax=top, colorscale="RdBu",
        colorbar=dict(title=symbol),
        hovertemplate="%{y} · %{x}: %{z:.2f}<extra>noise-corrected: an estimate can exceed 1"
                      "</extra>"))
    fig.update_layout(title=(f"{name} · {title}" if title else name)
                      + " · ordered as the tree; noise-corrected, so it can exceed 1", height=460,
                      yaxis=dict(autorange="reversed"))
    return fig


def heatmap_figure(z, x: list[str], y: list[str], title: str, colorbar: str, zmin=None,
                   zmax=None, colorscale: str = "Viridis", height: int | None = None) -> go.Figure:
    """A labelled heatmap of ``z`` ``[len(y), len(x)]`` (first row at the top)."""
    fig = go.Figure(go.Heatmap(z=z, x=x, y=y, zmin=zmin, zmax=zmax, colorscale=colorscale,
                               colorbar=dict(title=colorbar),
                               hovertemplate="%{y} · %{x}: %{z:.3f}<extra></extra>"))
    fig.update_layout(title=title, height=height or max(360, 120 + 16 * len(y)),
                      yaxis=dict(autorange="reversed"), margin=dict(l=60, r=20, t=60, b=40))
    return fig


DECISION_COLOURS = {"split": "#d62728", "candidate": "#ff7f0e", "shared": "#1f77b4"}


def ranking_figure(names: list[str], values: list[float], title: str, axis: str,
                   line: float | None = None, highlight: set[str] | None = None,
                   errors: list[tuple[float, float]] | None = None,
                   decisions: dict[str, str] | None = None,
                   hover: list[str] | None = None) -> go.Figure:
    """Horizontal bars, the first name at the top; ``line`` marks a threshold, ``highlight``
    colours chosen names, ``errors`` (below, above) draws an interval on each bar.
    ``decisions`` (name -> split, candidate or shared) colours by the plan's decision instead
    (``DECISION_COLOURS``), and ``hover`` adds a line per bar (its reason)."""
    highlight = highlight or set()
    colors = ([DECISION_COLOURS[decisions.get(n, "shared")] for n in names] if decisions
              else ["#d62728" if n in highlight else "#1f77b4" for n in names])
    error_x = None if errors is None else dict(
        type="data", symmetric=False, array=[e[1] for e in errors],
        arrayminus=[e[0] for e in errors], color="#333")
    fig = go.Figure(go.Bar(x=values, y=[module_label(n) for n in names], orientation="h",
                           marker_color=colors, error_x=error_x,
                           customdata=hover or [""] * len(names),
                           hovertemplate="%{y}: %{x:.3f}" + ("<br>%{customdata}" if hover else "")
                           + "<extra></extra>"))
    if line is not None:
        fig.add_vline(x=line, line_dash="dash", line_color="#555")
    fig.update_layout(title=title, xaxis_title=axis, height=max(320, 100 + 18 * len(names)),
                      yaxis=dict(autorange="reversed"), margin=dict(l=60, r=20, t=60, b=40))
    return fig


def budget_figure(modules: list[str], extra: list[int], budget: int) -> go.Figure:
    """Where a parameter budget goes: cumulative extra parameters per split module."""
    total = 0
    starts = []
    for n in extra:
        starts.append(total)
        total += n
    fig = go.Figure(go.Bar(x=extra, y=[module_label(m) for m in modules], base=starts,
                           orientation="h",
                           hovertemplate="%{y}: +%{x:,} parameters<extra></extra>",
                           name="spent"))
    fig.add_vline(x=budget, line_dash="dash", line_color="#d62728",
                  annotation_text=f"budget {budget:,}", annotation_position="top")
    fig.update_layout(title=f"Extra parameters: {total:,} of {budget:,}",
                      xaxis_title="cumulative extra parameters",
                      height=max(260, 100 + 22 * len(modules)),
                      yaxis=dict(autorange="reversed"), margin=dict(l=60, r=20, t=60, b=40))
    return fig


def spectrum_figure(correlations, angles, pair: tuple[str, str],
                    chance: float | None = None) -> go.Figure:
    """Canonical correlations and principal angles (degrees) of one language pair; ``chance``
    draws the pair's mean correlation with the steps shuffled (what no alignment gives)."""
    from plotly.subplots import make_subplots

    idx = list(range(1, len(correlations) + 1))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("canonical correlations",
                                                        "principal angles (degrees)"))
    fig.add_trace(go.Bar(x=idx, y=list(correlations), name="ρ", marker_color="#1f77b4"), 1, 1)
    fig.add_trace(go.Bar(x=idx, y=[float(a) * 180 / 3.141592653589793 for a in angles],
                         name="θ", marker_color="#ff7f0e"), 1, 2)
    if chance is not None:
        fig.add_hline(y=chance, line_dash="dash", line_color="#d62728", row=1, col=1,
                      annotation_text=f"chance {chance:.2f}", annotation_position="top right")
    fig.update_yaxes(range=[0, 1], row=1, col=1)
    fig.update_yaxes(range=[0, 90], row=1, col=2)
    fig.update_xaxes(title_text="component", dtick=1)
    fig.update_layout(title=f"{pair[0]} vs {pair[1]}", height=380, showlegend=False)
    return fig


def lines_figure(x, series: dict[str, list[float]], title: str, xaxis: str, yaxis: str,
                 zero_line: bool = False,
                 errors: dict[str, list[tuple[float, float]]] | None = None) -> go.Figure:
    """One line per named series over ``x``; ``errors`` (below, above) per point draws each
    series' intervals, the series then set a little apart at each ``x`` so that their
    intervals do not hide one another."""
    errors = errors or {}

    def bars(name: str):
        if name not in errors:
            return None
        return dict(type="data", symmetric=False, array=[e[1] for e in errors[name]],
                    arrayminus=[e[0] for e in errors[name]])

    x = list(x)
    n = len(series)
    at = {k: ([i + 0.3 * (j - (n - 1) / 2) / max(n - 1, 1) for i in range(len(x))]
              if errors else x) for j, k in enumerate(series)}
    fig = go.Figure([go.Scatter(x=at[k], y=list(v), mode="lines+markers", name=k,
                                line=dict(color=PALETTE[j % len(PALETTE)]),
                                marker=dict(color=PALETTE[j % len(PALETTE)]),
                                error_y=bars(k), text=x if errors else None,
                                hovertemplate="%{text}: %{y:.3f}<extra>" + k + "</extra>"
                                if errors else None)
                     for j, (k, v) in enumerate(series.items())])
    if errors:
        fig.update_xaxes(tickvals=list(range(len(x))), ticktext=x)
    if zero_line:
        fig.add_hline(y=0, line_dash="dash", line_color="#555")
    fig.update_layout(title=title, xaxis_title=xaxis, yaxis_title=yaxis, height=400)
    if len(series) > 8:  # every series named: the legend goes under the plot, in rows
        fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
                          height=420 + 22 * -(-len(series) // 8))
    x = [v for v in x if v is not None]
    if len(set(x)) == 1 and isinstance(x[0], (int, float)):  # one point: an axis from 0 to it
        fig.update_xaxes(range=[0, x[0] * 1.1 + 1])
    return fig


def mark_columns(fig: go.Figure, columns: list, text: str) -> go.Figure:
    """Outline whole columns of a heatmap (e.g. steps where most modules conflict at once) and
    label each above the plot, so a step-wide effect reads as one."""
    for c in columns:
        fig.add_vrect(x0=c - 0.5, x1=c + 0.5, line=dict(color="#111", width=2),
                      fillcolor="rgba(0,0,0,0)", layer="above")
        fig.add_annotation(x=c, y=1.0, yref="paper", yanchor="bottom", text=text,
                           showarrow=False, font=dict(size=10))
    return fig


def arms_figure(names: list[str], means: list[float], lows: list[float | None],
                highs: list[float | None], title: str, yaxis: str,
                labels: list[str] | None = None) -> go.Figure:
    """One bar per arm at its mean, with its interval as an error bar (none where a bound is
    missing, e.g. one seed); ``labels`` annotate the bars (e.g. fewer parameters)."""
    up = [h - m if h is not None else 0 for m, h in zip(means, highs)]
    down = [m - lo if lo is not None else 0 for m, lo in zip(means, lows)]
    fig = go.Figure(go.Bar(x=names, y=means, text=labels, textposition="outside",
                           error_y=dict(type="data", symmetric=False, array=up, arrayminus=down),
                           marker_color=["#1f77b4" if i == 0 else "#9aa5b1"
                                         for i in range(len(names))]))
    fig.update_layout(title=title, yaxis_title=yaxis, height=380, showlegend=False)
    return fig


def grouped_bars_figure(table, title: str, yaxis: str) -> go.Figure:
    """One bar per column (e.g. a job) in each row's group (e.g. a language)."""
    fig = go.Figure([go.Bar(x=list(table.index), y=list(table[col]), name=str(col))
                     for col in table.columns])
    fig.update_layout(title=title, barmode="group", yaxis_title=yaxis, height=400,
                      legend=dict(orientation="h", y=-0.2))
    return fig


def small_multiples_figure(clusterings: dict[str, Clustering], columns: int = 4) -> go.Figure:
    """One small dendrogram per unit (e.g. per layer, lowest to highest), leaves named and
    coloured by family, so the reader sees how the clustering changes with depth."""
    from plotly.subplots import make_subplots

    names = list(clusterings)
    rows = max(1, -(-len(names) // columns))
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=names,
                        horizontal_spacing=0.03, vertical_spacing=0.12)
    all_langs = next(iter(clusterings.values())).languages if clusterings else []
    colors = family_colors(sorted({family_of(x) for x in all_langs}))
    shown: set[str] = set()
    for i, name in enumerate(names):
        r, c = i // columns + 1, i % columns + 1
        tree = _dendrogram(clusterings[name].linkage, labels=clusterings[name].languages,
                           no_plot=True)
        fig.add_trace(_links(tree, 1.0), r, c)
        leaves = tree["ivl"]
        for fam in sorted({family_of(x) for x in leaves}):
            idx = [j for j, x in enumerate(leaves) if family_of(x) == fam]
            fig.add_trace(go.Scatter(
                x=[5 + 10 * j for j in idx], y=[0.0] * len(idx), mode="markers", name=fam,
                text=[leaves[j] for j in idx], marker=dict(size=7, color=colors[fam]),
                legendgroup=fam, showlegend=fam not in shown,
                hovertemplate="%{text}<extra>" + fam + "</extra>"), r, c)
            shown.add(fam)
        fig.update_xaxes(**_leaf_axis(leaves, size=10), row=r, col=c)
    fig.update_layout(height=(260 if len(all_langs) <= 12 else 290) * rows + 60,
                      margin=dict(l=40, r=20, t=60, b=20), legend=dict(title="family"))
    return fig


def validation_figure(modules: list[dict], predictor: str, label: str, title: str) -> go.Figure:
    """Predicted against realised: one point per module at its ``predictor`` (x) and its
    proposed groups' benefit (y; ``validation.summarise``'s modules), the plan's modules in the
    first colour; every other grouping's benefit of the same module as an open marker above it,
    so a prediction that is right for the wrong groups shows. Hover names the module."""
    fig = go.Figure()
    groupings = list(dict.fromkeys(g for m in modules for g in m["benefit"]))
    for j, g in enumerate(groupings):
        for in_plan in ((True, False) if g == "proposed" else (None,)):
            mine = [m for m in modules if g in m["benefit"] and m["predictors"][predictor] is not None
                    and (in_plan is None or m["in_plan"] == in_plan)]
            if not mine:
                continue
            name = (f"proposed groups ({'in' if in_plan else 'not in'} the plan)"
                    if g == "proposed" else f"{g} groups")
            fig.add_trace(go.Scatter(
                x=[m["predictors"][predictor] for m in mine],
                y=[m["benefit"][g]["mean"] for m in mine], mode="markers", name=name,
                text=[module_label(m["module"]) for m in mine],
                marker=dict(size=11 if g == "proposed" else 8,
                            symbol="circle" if g == "proposed" else "circle-open",
                            color=PALETTE[0 if in_plan else 1 if g == "proposed" else j + 2]),
                hovertemplate="%{text}<br>" + label + " %{x:.3g}<br>benefit %{y:.4f}<extra>"
                              + name + "</extra>"))
    fig.add_hline(y=0, line_dash="dash", line_color="#555")
    fig.update_layout(title=title, xaxis_title=label, height=440,
                      yaxis_title="realised benefit: dev ST loss, shared − split",
                      legend=dict(orientation="h", y=-0.2))
    return fig
