"""How parameters are grouped into modules, modules into layers and blocks.

A *module* is the unit whose gradient is captured and whose sharing is decided: a sub-module of
a layer (``speech_encoder.encoder.layers.11.ffn2``), a whole adapter layer, the embeddings
(``shared``), or a top-level piece (``speech_encoder.feature_projection``). A sub-module's
pre-norm goes with it (``ffn1_layer_norm`` belongs to ``ffn1``): splitting one without the
other makes no sense. Pure string logic, shared by ``probes`` (which builds the layout) and
the analysis (which aggregates to layers and blocks).
"""

from __future__ import annotations

import re

from gradlens.errors import ConfigError

# Paths that only contain modules; a module key is never one of them.
_CONTAINERS = {"speech_encoder", "speech_encoder.encoder", "speech_encoder.adapter", "text_decoder"}
# Sub-modules whose pre-norm (``<stem>_layer_norm``) is folded into them.
_PRE_NORMED = {"ffn1", "ffn2", "self_attn", "cross_attention", "ffn"}
_LAYER = re.compile(r"^(.*\.layers\.\d+)(?:\.|$)")

GRANULARITIES = ("module", "layer", "block")


def module_of(param_name: str) -> str:
    """The module key of a parameter name from ``named_parameters()``."""
    parts = param_name.split(".")[:-1] or param_name.split(".")
    i = 1
    while i < len(parts):
        head = parts[:i]
        in_layer = len(head) >= 2 and head[-2] == "layers" and "adapter" not in head
        if ".".join(head) in _CONTAINERS or head[-1] == "layers" or in_layer:
            i += 1
            continue
        break
    key = parts[:i]
    stem = key[-1].removesuffix("_layer_norm")
    if len(key) >= 3 and key[-3] == "layers" and stem in _PRE_NORMED:
        key[-1] = stem  # the pre-norm goes with its sub-module
    return ".".join(key)


def layer_of(module: str) -> str:
    """The layer a module belongs to (``...layers.N``), or the module itself outside layers."""
    match = _LAYER.match(module)
    return match.group(1) if match else module


def block_of(module: str) -> str:
    """One of ``speech_encoder``, ``adapter``, ``text_decoder``, ``embeddings``."""
    if module == "shared" or "embed" in module:
        return "embeddings"
    if module.startswith("speech_encoder.adapter"):
        return "adapter"
    return module.split(".")[0]


def kind_of(module: str) -> str:
    """A coarse kind for colouring and filtering: ffn, self_attn, cross_attn, conv, norm, ..."""
    leaf = module.rsplit(".", 1)[-1]
    if block_of(module) == "embeddings":
        return "embedding"
    if block_of(module) == "adapter":
        return "adapter"
    if "cross_attention" in leaf:
        return "cross_attn"
    if "attn" in leaf:
        return "self_attn"
    if "conv" in leaf:
        return "conv"
    if "norm" in leaf:
        return "norm"
    if "ffn" in leaf or leaf.startswith("fc"):
        return "ffn"
    return "other"


def group_key(module: str, granularity: str) -> str:
    """The key of ``module`` at ``granularity`` (one of ``GRANULARITIES``)."""
    if granularity == "module":
        return module
    if granularity == "layer":
        return layer_of(module)
    if granularity == "block":
        return block_of(module)
    raise ConfigError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")


def groups(modules: list[str], granularity: str) -> dict[str, list[int]]:
    """Map each key at ``granularity`` to the indices of its modules, in model order."""
    out: dict[str, list[int]] = {}
    for i, name in enumerate(modules):
        out.setdefault(group_key(name, granularity), []).append(i)
    return out


def module_label(name: str) -> str:
    """A module's name as the pages show it: ``shared`` is SeamlessM4T's embedding module (and
    its tied output head), not "shared by all languages", the word's meaning everywhere else."""
    return "shared (embeddings)" if name == "shared" else name
