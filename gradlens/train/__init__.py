"""A training job's settings and spec (``config``): torch-free. The loop that runs them is
``probes.training`` (``python -m probes.training SPEC --out DIR``)."""
