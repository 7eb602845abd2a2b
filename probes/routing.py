"""A SeamlessM4T model routed by a sharing plan: one copy of a listed module per language group.

Every parameter of a listed module (as ``gradlens.modules.module_of`` names them) gets one
``nn.Parameter`` per group, initialised from the shared weights; ``set_language`` puts the
group's copies in place (in every place the parameter is used, so tied weights stay tied), and
a batch of one language then runs through them. Unlisted modules stay shared. A checkpoint is a
safetensors file of every distinct tensor plus the plan.

    python -c "from probes.routing import RoutedModel; help(RoutedModel)"
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gradlens.modules import module_of
from gradlens.paths import PLAN_FILE as PLAN
from gradlens.plan import SharingPlan, load_plan, save_plan

WEIGHTS = "model.safetensors"


def _places(model: nn.Module) -> dict[int, list[tuple[nn.Module, str]]]:
    """Every (module, attribute) holding each parameter, keyed by the parameter's id."""
    out: dict[int, list[tuple[nn.Module, str]]] = {}
    for module in model.modules():
        for attr, p in module._parameters.items():
            if p is not None:
                out.setdefault(id(p), []).append((module, attr))
    return out


def _groups(plan: SharingPlan) -> dict:
    """What a checkpoint's weights depend on: each split module's groups, in their order."""
    return {k: e.groups for k, e in plan.modules.items()}


class RoutedModel(nn.Module):
    """``model`` with the plan's modules copied per language group.

    ``routes[key][g]`` holds group ``g``'s copies of module ``key``'s parameters (names with
    ``.`` written as ``/``). ``group_of[key][lang]`` is a language's group.
    """

    def __init__(self, model: nn.Module, plan: SharingPlan):
        super().__init__()
        names = dict(model.named_parameters())
        known = sorted({module_of(n) for n in names})
        plan.check(known, "plan")
        self.model = model
        self.plan = plan
        self.languages = list(plan.languages)
        self.routes = nn.ModuleDict()
        self.group_of: dict[str, dict[str, int]] = {}
        self._param_names: dict[str, list[str]] = {}
        places = _places(model)
        self._places: dict[str, list[list[tuple[nn.Module, str]]]] = {}
        for key, entry in plan.modules.items():
            members = [n for n in names if module_of(n) == key]
            self._param_names[key] = members
            self._places[key] = [places[id(names[n])] for n in members]
            self.group_of[key] = {lang: g for g, group in enumerate(entry.groups) for lang in group}
            copies = nn.ModuleList()
            for _ in entry.groups:
                holder = nn.Module()
                for n in members:
                    holder.register_parameter(n.replace(".", "/"),
                                              nn.Parameter(names[n].detach().clone()))
                copies.append(holder)
            self.routes[key.replace(".", "/")] = copies
        self.language: str | None = None
        self.set_language(self.languages[0])

    def copies(self, key: str, group: int) -> dict[str, nn.Parameter]:
        """Group ``group``'s parameters of module ``key``, by their names in the model."""
        holder = self.routes[key.replace(".", "/")][group]
        return {n: holder._parameters[n.replace(".", "/")] for n in self._param_names[key]}

    def set_language(self, lang: str) -> None:
        """Put ``lang``'s group copies in place for the next forward and backward."""
        if lang not in self.languages:
            raise ValueError(f"language {lang!r} is not in the plan ({self.languages})")
        for key in self._param_names:
            params = self.copies(key, self.group_of[key][lang])
            for name, places in zip(self._param_names[key], self._places[key]):
                for module, attr in places:
                    module._parameters[attr] = params[name]
        self.language = lang

    def forward(self, *args, language: str | None = None, **kwargs):
        if language is not None and language != self.language:
            self.set_language(language)
        return self.model(*args, **kwargs)

    # -- checkpoints ------------------------------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        """Every distinct parameter and buffer once: shared ones by their model names, copies
        as ``route::<module>::<group>::<parameter>``."""
        routed = {n for names in self._param_names.values() for n in names}
        out = {n: p.detach() for n, p in self.model.named_parameters() if n not in routed}
        out.update({n: b.detach() for n, b in self.model.named_buffers()})
        for key, names in self._param_names.items():
            for g in range(len(self.routes[key.replace(".", "/")])):
                for n, p in self.copies(key, g).items():
                    out[f"route::{key}::{g}::{n}"] = p.detach()
        return {k: v.contiguous() for k, v in out.items()}

    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` and ``plan.json`` into ``directory`` (atomically each)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / (WEIGHTS + ".tmp")
        save_file({k: v.cpu() for k, v in self.tensors().items()}, str(tmp))
        tmp.replace(directory / WEIGHTS)
        save_plan(self.plan, directory / PLAN)
        return directory

    def load(self, directory: str | Path) -> None:
        """Load a checkpoint written by ``save`` for the same plan and architecture."""
        from safetensors.torch import load_file

        directory = Path(directory)
        if _groups(load_plan(directory / PLAN)) != _groups(self.plan):
            raise ValueError(f"{directory}: the checkpoint was trained with another plan")
        saved = load_file(str(directory / WEIGHTS))
        mine = self.tensors()
        missing, extra = sorted(set(mine) - set(saved)), sorted(set(saved) - set(mine))
        if missing or extra:
            raise ValueError(f"{directory / WEIGHTS}: missing {missing[:5]}, unexpected {extra[:5]}")
        with torch.no_grad():
            for k, t in mine.items():
                t.copy_(saved[k].to(t.device, t.dtype))
