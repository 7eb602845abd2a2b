"""Per-module gradient capture: exact squared norms and the sign-and-fold sketch, on device.

Every parameter's ``.grad`` is a view into one flat buffer, laid out module by module and
padded to a multiple of the fold width ``p`` (the largest prime ``<= k`` dividing no parameter
dimension, so the fold never lines up with weight rows; ``gradlens.sketch`` is the numpy
reference of the layout and the signs). Backward accumulates straight into the buffer, and the
capture is a few fused passes over it, whatever the number of modules: sign multiply, fold
into rows of ``p``, sum the rows of each module (one ``index_add``), and the same for the
squares, ``CAPTURE_CHUNK`` values at a time so that the float32 temporaries stay at 64 MB
whatever the model (unchunked, they were the size of the model's gradient: 3.3 GB on Medium).
Only ``M x k`` numbers leave the device (the last ``k - p`` of each row are zero).

Never call ``model.zero_grad()`` (it would replace the views): use ``FlatGradients.zero()``.

    python bench/probe_overhead.py --model tiny
"""

from __future__ import annotations

import numpy as np
import torch

from gradlens import sketch as ref
from gradlens.modules import kind_of, module_of
from gradlens.store import ModuleTable

_SIGN_CHUNK = 1 << 24
CAPTURE_CHUNK = 1 << 24  # gradient values per pass of the capture: bounds its temporaries


def torch_signs(seed: int, start: int, count: int, device) -> torch.Tensor:
    """``gradlens.sketch.signs`` computed in torch int64 on ``device`` (bitwise identical)."""
    out = torch.empty(count, dtype=torch.int8, device=device)
    for lo in range(0, count, _SIGN_CHUNK):
        hi = min(count, lo + _SIGN_CHUNK)
        x = torch.arange(start + lo, start + hi, dtype=torch.int64, device=device)
        x = (x * ref.GOLDEN + (seed & ref.MASK32)) & ref.MASK32
        x ^= x >> 16
        x = (x * ref.M1) & ref.MASK32
        x ^= x >> 13
        x = (x * ref.M2) & ref.MASK32
        x ^= x >> 16
        out[lo:hi] = (1 - 2 * ((x >> 31) & 1)).to(torch.int8)
    return out


class FlatGradients:
    """Give every trainable parameter of ``model`` a ``.grad`` that views one flat buffer.

    ``modules`` is the ``ModuleTable`` of the layout, ``fold`` the fold width ``p``;
    ``capture()`` returns ``(sketch [M, k], sq_norm [M])`` as float32 tensors on the model's
    device.
    """

    def __init__(self, model: torch.nn.Module, k: int, seed: int):
        self.k, self.seed = k, seed
        by_module: dict[str, list[tuple[str, torch.nn.Parameter]]] = {}
        for name, param in model.named_parameters():  # tied weights appear once (lm_head=shared)
            if param.requires_grad:
                by_module.setdefault(module_of(name), []).append((name, param))
        names = list(by_module)
        self.fold = p = ref.fold_width(k, {d for ps in by_module.values() for _, x in ps
                                           for d in x.shape})
        n_params = np.array([sum(x.numel() for _, x in by_module[m]) for m in names])
        self.modules = ModuleTable(name=names, n_params=n_params, kind=[kind_of(m) for m in names],
                                   exact=n_params <= k)
        starts = ref.offsets(n_params, k, p)
        folded = np.flatnonzero(~self.modules.exact)                 # laid out first
        exact = np.flatnonzero(self.modules.exact)                    # then one row of k each
        self.folded_size = int(sum(ref.padded(int(n_params[m]), p) for m in folded))
        total = self.folded_size + k * len(exact)
        first = next(iter(by_module.values()))[0][1]
        device, dtype = first.device, first.dtype
        self.exact_index = torch.as_tensor(exact, device=device)
        self.flat = torch.zeros(total, dtype=dtype, device=device)
        self.params = []
        for m, start in zip(names, starts):
            offset = int(start)
            for _, param in by_module[m]:
                param.grad = self.flat[offset: offset + param.numel()].view_as(param)
                self.params.append(param)
                offset += param.numel()
        self.signs = torch_signs(seed, 0, self.folded_size, device)
        rows_per_module = [ref.padded(int(n_params[m]), p) // p for m in folded]
        self.row_module = torch.repeat_interleave(
            torch.as_tensor(folded, device=device), torch.tensor(rows_per_module, device=device,
                                                                 dtype=torch.long))

    def zero(self) -> None:
        self.flat.zero_()

    def check_views(self) -> None:
        """Raise if anything replaced a ``.grad`` view (e.g. ``zero_grad(set_to_none=True)``)."""
        lo, hi = self.flat.data_ptr(), self.flat.data_ptr() + self.flat.numel() * self.flat.element_size()
        for p in self.params:
            if p.grad is None or not lo <= p.grad.data_ptr() < hi:
                raise RuntimeError("a parameter's .grad no longer views the flat buffer; "
                                   "use FlatGradients.zero() instead of zero_grad()")

    @torch.no_grad()
    def capture(self) -> tuple[torch.Tensor, torch.Tensor]:
        M, k, p = len(self.modules), self.k, self.fold
        rows = self.flat[: self.folded_size].view(-1, p)
        signs = self.signs.view(-1, p)
        exact = self.flat[self.folded_size:].view(-1, k).float()
        sketch = torch.zeros(M, k, dtype=torch.float32, device=self.flat.device)
        sq = torch.zeros(M, dtype=torch.float32, device=self.flat.device)
        head = sketch[:, :p]
        step = max(1, CAPTURE_CHUNK // p)
        for lo in range(0, rows.shape[0], step):
            part, owner = rows[lo: lo + step], self.row_module[lo: lo + step]
            head.index_add_(0, owner, (part * signs[lo: lo + step]).float())
            sq.index_add_(0, owner, part.float().square().sum(1))
        sketch[self.exact_index] = exact
        sq[self.exact_index] = exact.square().sum(1)
        return sketch, sq

    def module_slices(self) -> list[slice]:
        """Where each module's gradient lies in the flat buffer."""
        starts = ref.offsets(self.modules.n_params, self.k, self.fold)
        return [slice(int(s), int(s) + int(n)) for s, n in zip(starts, self.modules.n_params)]

    def module_grads(self) -> list[np.ndarray]:
        """The exact flattened gradient of each module (for tests and references), float64."""
        flat = self.flat.detach().double().cpu().numpy()
        return [flat[where].copy() for where in self.module_slices()]
