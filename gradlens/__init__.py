"""gradlens: mine multilingual SeamlessM4T training gradients to decide what languages share.

Torch is imported only by the code that runs models: ``probes`` (models, capture, the probe
loop) and ``gradlens.train.loop``, ``.mgcm`` and ``.routing``. Everything else (analysis, plans,
jobs, experiments, the CLI's parser, the app's helpers) imports without it, which
``tests/test_boundaries.py`` checks; see ``docs/design.md``.
"""

__version__ = "0.1.0"
