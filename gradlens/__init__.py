"""gradlens: mine multilingual SeamlessM4T training gradients to decide what languages share.

The library is torch-free (``probes`` holds the torch side); see ``docs/design.md``.
"""

__version__ = "0.1.0"
