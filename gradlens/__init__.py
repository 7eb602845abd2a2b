"""gradlens: mine multilingual SeamlessM4T training gradients to decide what languages share.

This package imports without torch: the run store, analysis, plans, training settings, jobs,
experiments, the CLI and the app's helpers. The code that runs models (models, capture, the
probe loop, training) is the ``probes`` package, which depends on this one and never the other
way round, save the CLI's lazy calls at its edge; ``tests/test_boundaries.py`` checks both, and
``docs/design.md`` draws them.
"""

__version__ = "0.1.0"
