"""``python -m gradlens.jobs supervise JOB_DIR -- ENTRY...``: the local backend's detached
supervisor (``gradlens.jobs.local.supervise``)."""

import sys
from pathlib import Path

from gradlens.jobs.local import supervise


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 4 or argv[0] != "supervise" or argv[2] != "--":
        print("usage: python -m gradlens.jobs supervise JOB_DIR -- ENTRY...", file=sys.stderr)
        return 2
    return supervise(Path(argv[1]), argv[3:])


if __name__ == "__main__":
    sys.exit(main())
