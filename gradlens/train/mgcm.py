"""MGCM: module-level gradient conflict projection, applied during the auxiliary backward pass.

After the primary (ST) backward pass each parameter's ``.grad`` holds ``g_st``. During the
auxiliary (ASR) backward pass a tensor hook catches each parameter's auxiliary gradient before it
is accumulated and holds it only until its module's last parameter has arrived; then, per
module,

    if g_aux . g_st < 0:   g_aux <- g_aux - (g_aux . g_st / |g_st|^2) g_st

and the (projected) auxiliary gradient is added into ``.grad``. Only the modules whose backward
is in flight are held, never a second full copy of the gradients (the flat PCGrad way).
Scale the auxiliary loss (``λ``) before its backward; the projection is linear in it.

    with MGCM(model) as mgcm:      # after loss_st.backward()
        (lam * loss_asr).backward()
    mgcm.conflicts                 # modules projected in this step
"""

from __future__ import annotations

import torch
from torch import nn

from gradlens.modules import module_of


class MGCM:
    """Context manager projecting conflicting auxiliary gradients module by module."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.conflicts: list[str] = []
        self._handles = []

    def __enter__(self) -> "MGCM":
        members: dict[str, list[tuple[str, nn.Parameter]]] = {}
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                members.setdefault(module_of(name.removeprefix("model.")), []).append((name, p))
        self._members = members
        self._pending: dict[str, dict[str, torch.Tensor]] = {}
        self.conflicts = []
        for module, params in members.items():
            for name, p in params:
                self._handles.append(p.register_hook(self._catch(module, name)))
        return self

    def _catch(self, module: str, name: str):
        def hook(grad: torch.Tensor) -> torch.Tensor:
            held = self._pending.setdefault(module, {})
            held[name] = grad.detach()
            if len(held) == len(self._members[module]):
                self._apply(module)
            return torch.zeros_like(grad)  # accumulated as nothing: _apply adds the result
        return hook

    def _apply(self, module: str) -> None:
        held = self._pending.pop(module)
        params = [(n, p) for n, p in self._members[module] if n in held]
        dot = sum(((held[n].float() * p.grad.float()).sum() for n, p in params
                   if p.grad is not None), torch.zeros(()))
        norm = sum(((p.grad.float() ** 2).sum() for n, p in params if p.grad is not None),
                   torch.zeros(()))
        project = bool(dot < 0) and bool(norm > 0)
        if project:
            self.conflicts.append(module)
        with torch.no_grad():
            for n, p in params:
                aux = held[n]
                if project and p.grad is not None:
                    aux = aux - (dot / norm).to(aux.dtype) * p.grad
                if p.grad is None:
                    p.grad = aux.clone()
                else:
                    p.grad.add_(aux)

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for module in list(self._pending):  # modules some of whose parameters got no gradient
            self._apply(module)
