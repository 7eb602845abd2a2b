"""Provenance for a bench's figures: one JSON file with the command, date, machine and versions.

    from record import write_json
    write_json(args.json, {"ratio": 1.07})
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "transformers", "numpy", "h5py", "streamlit")


def provenance() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"command": " ".join([Path(sys.executable).name, *sys.argv]),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.platform()}, {os.cpu_count()} cores, "
                       f"{memory / 2**30:.0f} GiB", "python": platform.python_version(),
            "versions": versions}


def write_json(path: str | Path | None, figures: dict) -> None:
    """Write ``figures`` with their provenance to ``path`` (nothing when ``path`` is None)."""
    if not path:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**provenance(), **figures}, indent=1, default=float) + "\n")
