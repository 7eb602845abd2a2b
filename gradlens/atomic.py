"""Files written whole or not at all: every file gradlens writes in place goes through here.

A reader (the app, a resumed probe, a second job) never sees half a file: the content goes to a
temporary file beside the target, is flushed to disk, and replaces the target in one rename.

    python -c "from gradlens.atomic import write_text; write_text('/tmp/x.json', '{}')"
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: str | Path, suffix: str = ".tmp"):
    """Yield a temporary path beside ``path`` for a writer that needs a file name (h5py,
    ``torch.save``); on success it replaces ``path``, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` whole (the module's description); return ``path``."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole; return ``path``."""
    return write_bytes(path, text.encode("utf-8"))
