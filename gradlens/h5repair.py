"""Clear the stale SWMR-writer flags that a killed probe leaves in an HDF5 superblock.

HDF5 marks the superblock of a file opened for (SWMR) writing; when the writer dies the marks
stay, and the file can then only be opened read-only. This does what ``h5clear -s`` does, for
superblock versions 2 and 3: zero the status-flags byte and rewrite the superblock checksum
(Bob Jenkins' lookup3 ``hashlittle``, as HDF5's ``H5_checksum_metadata``). The caller must know
that no writer is alive (the run store holds an ``flock`` for that).

    python -m gradlens.h5repair runs/<id>/grads.h5
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MASK = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` of ``data`` (the HDF5 metadata checksum)."""
    a = b = c = (0xDEADBEEF + len(data) + initval) & _MASK
    n, i = len(data), 0
    while n > 12:
        a = (a + struct.unpack_from("<I", data, i)[0]) & _MASK
        b = (b + struct.unpack_from("<I", data, i + 4)[0]) & _MASK
        c = (c + struct.unpack_from("<I", data, i + 8)[0]) & _MASK
        a = (a - c) & _MASK; a ^= _rot(c, 4); c = (c + b) & _MASK
        b = (b - a) & _MASK; b ^= _rot(a, 6); a = (a + c) & _MASK
        c = (c - b) & _MASK; c ^= _rot(b, 8); b = (b + a) & _MASK
        a = (a - c) & _MASK; a ^= _rot(c, 16); c = (c + b) & _MASK
        b = (b - a) & _MASK; b ^= _rot(a, 19); a = (a + c) & _MASK
        c = (c - b) & _MASK; c ^= _rot(b, 4); b = (b + a) & _MASK
        n -= 12
        i += 12
    if n == 0:
        return c
    tail = data[i:] + b"\0" * (12 - n)
    a = (a + struct.unpack_from("<I", tail, 0)[0]) & _MASK
    b = (b + struct.unpack_from("<I", tail, 4)[0]) & _MASK
    c = (c + struct.unpack_from("<I", tail, 8)[0]) & _MASK
    c ^= b; c = (c - _rot(b, 14)) & _MASK
    a ^= c; a = (a - _rot(c, 11)) & _MASK
    b ^= a; b = (b - _rot(a, 25)) & _MASK
    c ^= b; c = (c - _rot(b, 16)) & _MASK
    a ^= c; a = (a - _rot(c, 4)) & _MASK
    b ^= a; b = (b - _rot(a, 14)) & _MASK
    c ^= b; c = (c - _rot(b, 24)) & _MASK
    return c


OLD_STYLE = (0, 1)  # superblock versions of HDF5 1.6-style files: no status flags, no checksum


def _head(fh, path: Path) -> bytes:
    """The first 12 bytes of the open file ``fh``: signature, superblock version, sizes;
    ``ValueError`` naming ``path`` when it is no HDF5 file."""
    head = fh.read(12)
    if len(head) < 12 or head[:8] != _SIGNATURE:
        raise ValueError(f"{path}: not an HDF5 file (no HDF5 signature at offset 0)")
    return head


def _verified_superblock(fh, path: Path) -> bytes:
    """The version 2 or 3 superblock at offset 0 of the open file ``fh``, without its checksum,
    the checksum verified; ``ValueError`` naming ``path`` otherwise."""
    head = _head(fh, path)
    version, size_offsets = head[8], head[9]
    if version not in (2, 3):
        raise ValueError(f"{path}: superblock version {version}; only versions 2 and 3 are handled")
    body = head + fh.read(4 * size_offsets)
    raw = fh.read(4)
    if len(body) < 12 + 4 * size_offsets or len(raw) < 4:
        raise ValueError(f"{path}: the file ends inside its superblock")
    if lookup3(body) != struct.unpack("<I", raw)[0]:
        raise ValueError(f"{path}: superblock checksum does not verify; not touching the file")
    return body


def superblock(path: str | Path) -> tuple[int, int] | None:
    """``(status_flags, stored_eof)`` of ``path``'s superblock (read only). ``stored_eof`` is the
    end-of-file address HDF5 recorded: a file shorter than it was cut. ``None`` for a version 0
    or 1 superblock (``OLD_STYLE``: what plain h5py and ``h5repack`` write by default), which
    records neither: such a file holds no SWMR writer, and HDF5 checks its length on opening."""
    path = Path(path)
    with open(path, "rb") as fh:
        if _head(fh, path)[8] in OLD_STYLE:
            return None
        fh.seek(0)
        body = _verified_superblock(fh, path)
    size_offsets = body[9]
    return body[11], int.from_bytes(body[12 + 2 * size_offsets: 12 + 3 * size_offsets], "little")


def clear_status_flags(path: str | Path) -> bool:
    """Zero the superblock's status flags of ``path``; return whether any were set.

    Raises ``ValueError`` naming the file when it is not an HDF5 file with a version 2 or 3
    superblock at offset 0, or when its stored checksum does not verify (then nothing is written).
    """
    path = Path(path)
    with open(path, "r+b") as fh:
        body = _verified_superblock(fh, path)
        if body[11] == 0:
            return False
        fixed = body[:11] + b"\0" + body[12:]
        fh.seek(0)
        fh.write(fixed + struct.pack("<I", lookup3(fixed)))
    return True


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(name, "cleared" if clear_status_flags(name) else "was clean")
