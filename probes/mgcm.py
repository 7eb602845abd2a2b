"""MGCM: module-level gradient conflict projection, applied during the auxiliary backward pass.

After the primary (ST) backward pass each parameter's ``.grad`` holds ``g_st``. During the
auxiliary (ASR) backward pass a tensor hook catches each parameter's auxiliary gradient before it
is accumulated and holds it only until its module's last parameter has arrived; then, per
module,

    if g_aux . g_st < 0:   g_aux <- g_aux - (g_aux . g_st / |g_st|^2) g_st

and the (projected) auxiliary gradient is added into ``.grad`` in place,
``(1 - c) g_st + g_aux``, with no full-size temporary; the hook hands autograd a broadcast zero
to accumulate. Only the modules whose backward is in flight are held, never a second full copy
of the gradients (the flat PCGrad way). The projection decisions stay on the device; the list
of projected modules is read once, when the context exits.
Scale the auxiliary loss (``λ``) before its backward; the projection is linear in it.

    with MGCM(model) as mgcm:      # after loss_st.backward()
        (lam * loss_asr).backward()
    mgcm.conflicts                 # modules projected in this step
    mgcm.peak_held_bytes           # the most auxiliary gradient kept waiting at once
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
        self._coefs: list[tuple[str, torch.Tensor]] = []
        self.conflicts = []
        self.held_bytes = self.peak_held_bytes = 0
        for module, params in members.items():
            for name, p in params:
                self._handles.append(p.register_hook(self._catch(module, name)))
        return self

    def _catch(self, module: str, name: str):
        def hook(grad: torch.Tensor) -> torch.Tensor:
            held = self._pending.setdefault(module, {})
            held[name] = grad
            self.held_bytes += grad.numel() * grad.element_size()
            if len(held) == len(self._members[module]):
                self._apply(module)
            else:  # kept past its arrival, waiting for the module's other parameters
                self.peak_held_bytes = max(self.peak_held_bytes, self.held_bytes)
            # accumulated as nothing (_apply adds the result): a broadcast zero, no allocation
            return grad.new_zeros(()).expand_as(grad)
        return hook

    def _apply(self, module: str) -> None:
        """Project and add the module's held auxiliary gradients: in place, no full-size
        temporaries, and no host sync (the decision stays on the device until ``__exit__``)."""
        held = self._pending.pop(module)
        self.held_bytes -= sum(g.numel() * g.element_size() for g in held.values())
        params = [(n, p) for n, p in self._members[module] if n in held]
        with torch.no_grad():
            dot = norm = None
            for n, p in params:
                if p.grad is not None:
                    g = p.grad.reshape(-1).float()
                    d = torch.dot(held[n].reshape(-1).float(), g)
                    q = torch.dot(g, g)
                    dot, norm = (d, q) if dot is None else (dot + d, norm + q)
            if dot is None:
                coef = None
            else:
                coef = torch.where((dot < 0) & (norm > 0), dot / norm.clamp_min(1e-30),
                                   torch.zeros_like(dot))
                self._coefs.append((module, coef))
            for n, p in params:
                aux = held[n]
                if p.grad is None:
                    p.grad = aux.detach().clone()
                else:  # g_st + (g_aux - coef g_st) = (1 - coef) g_st + g_aux
                    p.grad.mul_((1.0 - coef).to(p.grad.dtype))
                    p.grad.add_(aux.to(p.grad.dtype))

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for module in list(self._pending):  # modules some of whose parameters got no gradient
            self._apply(module)
        if self._coefs:  # one host sync for the whole pass
            flags = torch.stack([c for _, c in self._coefs]).ne(0).tolist()
            self.conflicts = [m for (m, _), f in zip(self._coefs, flags) if f]
