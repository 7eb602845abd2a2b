"""``python -m gradlens.train SPEC [--out DIR]``: the training entry point the job backends run."""

import sys

from gradlens.train.loop import main

sys.exit(main())
