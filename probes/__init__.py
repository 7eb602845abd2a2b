"""The torch side of gradlens: SeamlessM4T models, per-module gradient capture, the probe loop,
and training from a sharing plan (routing, MGCM, the loop, the tiny model's pre-training).

It imports ``gradlens`` (the run store, corpora, plans, settings); ``gradlens`` reaches it only
through the CLI's lazy imports and the job subprocess ``python -m probes.training``."""
