"""Figures: pure functions, data in, ``plotly.graph_objects.Figure`` out (no streamlit)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.colors import qualitative
from scipy.cluster.hierarchy import dendrogram as _dendrogram

from gradlens.analysis.clustering import Clustering
from gradlens.languages import LANGUAGES


def family_colors(families: list[str]) -> dict[str, str]:
    """A stable colour per family, in first-seen order."""
    palette = qualitative.D3 + qualitative.Set2
    out: dict[str, str] = {}
    for fam in families:
        if fam not in out:
            out[fam] = palette[len(out) % len(palette)]
    return out


def family_of(lang: str) -> str:
    return LANGUAGES[lang].family if lang in LANGUAGES else "unknown"


def dendrogram_figure(clustering: Clustering, title: str = "") -> go.Figure:
    """The language dendrogram of ``clustering``: leaves marked and coloured by family."""
    tree = _dendrogram(clustering.linkage, labels=clustering.languages, no_plot=True)
    fig = go.Figure()
    for xs, ys in zip(tree["icoord"], tree["dcoord"]):
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#555", width=1.5),
                                 hoverinfo="skip", showlegend=False))
    leaves = tree["ivl"]
    positions = [5 + 10 * i for i in range(len(leaves))]
    families = [family_of(lang) for lang in leaves]
    colors = family_colors(sorted(set(families)))
    for fam in sorted(set(families)):
        idx = [i for i, f in enumerate(families) if f == fam]
        fig.add_trace(go.Scatter(
            x=[positions[i] for i in idx], y=[0.0] * len(idx), mode="markers+text", name=fam,
            text=[leaves[i] for i in idx], textposition="bottom center",
            marker=dict(size=12, color=colors[fam]),
            hovertemplate="%{text}<extra>" + fam + "</extra>"))
    fig.update_layout(
        title=title or f"Languages by gradient distance ({clustering.method} linkage)",
        xaxis=dict(showticklabels=False, zeroline=False, showgrid=False),
        yaxis=dict(title="distance (1 − cos)", rangemode="tozero"),
        legend=dict(title="family"), height=460, margin=dict(l=60, r=20, t=60, b=40))
    return fig


def similarity_figure(clustering: Clustering, title: str = "") -> go.Figure:
    """Heatmap of the language × language cosine similarity."""
    langs = clustering.languages
    fig = go.Figure(go.Heatmap(z=clustering.similarity, x=langs, y=langs, zmin=-1, zmax=1,
                               colorscale="RdBu", colorbar=dict(title="cos")))
    fig.update_layout(title=title or "Cosine similarity of mean gradients", height=460,
                      yaxis=dict(autorange="reversed"))
    return fig
