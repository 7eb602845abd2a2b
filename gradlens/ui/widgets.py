"""Small widgets the pages share: figure downloads and a run's timing line."""

from __future__ import annotations

import shutil

import pandas as pd
import streamlit as st


def span(seconds: float) -> str:
    """A duration as the pages write it: ``"3 min 5 s"``, ``"42 s"``."""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s} s" if m else f"{s} s"


def timing(row: dict, done: int, planned: int, now: float | None = None) -> str:
    """Elapsed time since a run was created and, once a step is done, the time left at that
    pace: ``"3 min 5 s elapsed · about 2 min left"``."""
    import datetime as dt
    import time

    try:
        start = dt.datetime.fromisoformat(row["created_at"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return "elapsed time unknown"
    elapsed = max(0.0, (now or time.time()) - start)
    if done <= 0:
        return f"{span(elapsed)} elapsed"
    return f"{span(elapsed)} elapsed · about {span(elapsed / done * max(0, planned - done))} left"


def png_available() -> bool:
    """PNG export renders through kaleido in the system Chromium."""
    return any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome"))


def downloads(fig, name: str, table: pd.DataFrame | None = None, key: str = "") -> None:
    """PNG, HTML (and CSV of ``table``) download buttons for a figure; files made on click."""
    key = key or name
    row = st.container(horizontal=True)
    if png_available():
        row.download_button("PNG", data=lambda: fig.to_image(format="png", scale=2),
                                file_name=f"{name}.png", mime="image/png", key=f"{key}_png",
                                icon=":material/image:", on_click="ignore")
    else:
        row.caption("PNG needs Chromium (`apt-get install chromium`)")
    row.download_button("HTML", data=lambda: fig.to_html(include_plotlyjs=True),
                            file_name=f"{name}.html", mime="text/html", key=f"{key}_html",
                            icon=":material/code:", on_click="ignore")
    if table is not None:
        row.download_button("CSV", data=table.to_csv().encode("utf-8"),
                                file_name=f"{name}.csv", mime="text/csv", key=f"{key}_csv",
                                icon=":material/table:", on_click="ignore")
