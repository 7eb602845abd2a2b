"""Per-module gradient capture: exact squared norms and the sign-and-fold sketch, on the device.

The layout is ``gradlens.sketch``'s (the numpy reference of the layout and the signs): modules
one after another in a flat vector, each padded to a multiple of the fold width ``p`` (the
largest prime ``<= k`` dividing no parameter dimension, so the fold never lines up with weight
rows), each parameter at its place in its module (``ModuleLayout``). Two captures fill it, the
same sketch and norms from either (``gradient_sketcher`` picks):

- ``FlatSketcher`` (CUDA, and small models on the CPU): every ``.grad`` views one flat buffer
  in the layout; after backward, a few fused passes over it (sign multiply, fold into rows of
  ``p``, one ``index_add_`` of the rows per pass), whatever the number of modules. On a GPU the
  kernel launches of a loop over parameters would cost more than the passes, and on a small
  model the calls would (``docs/design.md``).
- ``HookSketcher`` (large models on the CPU): a post-accumulate-grad hook on every large
  parameter folds its gradient the moment backward has it, through one reused scratch buffer;
  the small parameters go in together at the end, and every gradient is dropped after
  backward. Each gradient is read once, nothing is zeroed or accumulated, and a probed step
  holds the memory of a plain one. On a large model on the CPU the flat buffer's extra passes
  (zero, accumulate, fold) and their page faults cost more than the calls
  (``docs/performance.md``, Medium on the CPU).

Only ``M x k`` numbers leave the device (the last ``k - p`` of each folded row are zero). Never
call ``model.zero_grad()`` inside a capture; between captures, training steps use ``.grad`` as
usual.

    python bench/probe_overhead.py --model tiny
"""

from __future__ import annotations

import functools
import time

import numpy as np
import torch

from gradlens import sketch as ref
from gradlens.modules import kind_of, module_of
from gradlens.store import ModuleTable

_SIGN_CHUNK = 1 << 20


def torch_signs(seed: int, start: int, count: int, device) -> torch.Tensor:
    """``gradlens.sketch.signs`` computed in torch int64 on ``device`` (bitwise identical), in
    place on chunks that stay in cache."""
    out = torch.empty(count, dtype=torch.int8, device=device)
    x = torch.empty(min(count, _SIGN_CHUNK), dtype=torch.int64, device=device)
    t = torch.empty_like(x)
    for lo in range(0, count, _SIGN_CHUNK):
        hi = min(count, lo + _SIGN_CHUNK)
        xs, ts = x[: hi - lo], t[: hi - lo]
        torch.arange(start + lo, start + hi, dtype=torch.int64, device=device, out=xs)
        xs.mul_(ref.GOLDEN).add_(seed & ref.MASK32).bitwise_and_(ref.MASK32)
        for shift, factor in ((16, ref.M1), (13, ref.M2), (16, None)):
            torch.bitwise_right_shift(xs, shift, out=ts)
            xs.bitwise_xor_(ts)
            if factor is not None:
                xs.mul_(factor).bitwise_and_(ref.MASK32)
        xs.bitwise_right_shift_(31).bitwise_and_(1)                  # the top bit: 1 is minus
        out[lo:hi] = 1 - 2 * xs
    return out


class ModuleLayout:
    """The trainable parameters of ``model`` grouped by module, and their layout.

    ``modules`` is the ``ModuleTable``, ``fold`` the fold width ``p``, ``params`` the trainable
    parameters (tied weights once) in layout order, ``by_module[m]`` module ``m``'s, ``starts[m]``
    where module ``m`` starts in the flat layout, ``signs`` the int8 signs of its folded part.
    """

    def __init__(self, model: torch.nn.Module, k: int, seed: int):
        self.k, self.seed = k, seed
        by_module: dict[str, list[torch.nn.Parameter]] = {}
        for name, param in model.named_parameters():  # tied weights appear once (lm_head=shared)
            if param.requires_grad:
                by_module.setdefault(module_of(name), []).append(param)
        self.by_module = list(by_module.values())
        names = list(by_module)
        self.fold = ref.fold_width(k, {d for ps in self.by_module for x in ps for d in x.shape})
        n_params = np.array([sum(x.numel() for x in ps) for ps in self.by_module])
        self.modules = ModuleTable(name=names, n_params=n_params, kind=[kind_of(m) for m in names],
                                   exact=n_params <= k)
        self.starts = ref.offsets(n_params, k, self.fold)
        self.folded_size = int(sum(ref.padded(int(n), self.fold)
                                   for n in n_params[~self.modules.exact]))
        self.device = self.by_module[0][0].device
        self.signs = torch_signs(seed, 0, self.folded_size, self.device)
        self.params = [x for ps in self.by_module for x in ps]

    def module_grad(self, m: int) -> torch.Tensor:
        """Module ``m``'s exact flattened gradient after a plain ``backward()`` (zeros where a
        parameter has none), float32, on the model's device: for tests and references."""
        return torch.cat([(x.grad if x.grad is not None else torch.zeros_like(x)).detach()
                          .reshape(-1).float() for x in self.by_module[m]])

    def module_grads(self) -> list[np.ndarray]:
        """Every module's ``module_grad``, as float64 numpy arrays."""
        return [self.module_grad(m).double().cpu().numpy() for m in range(len(self.modules))]

    def buffers(self) -> dict[str, int]:
        """Bytes of what the capture keeps between steps, by name."""
        return {"signs (int8)": self.signs.nbytes}


HOOKS_FROM = 50_000_000  # trainable values from which the CPU's capture is the hooks


def gradient_sketcher(model: torch.nn.Module, k: int, seed: int):
    """The capture that suits the model: ``HookSketcher`` for a large model on the CPU, where
    each memory pass over the gradient costs more than the calls; ``FlatSketcher`` on CUDA,
    where kernel launches cost more than passes, and for a small model on the CPU, where
    per-call overhead does (both measured side by side in ``docs/performance.md``). Both give
    the same sketch and norms."""
    params = [p for p in model.parameters() if p.requires_grad]
    large = sum(p.numel() for p in params) >= HOOKS_FROM
    cpu = params[0].device.type == "cpu"
    return (HookSketcher if cpu and large else FlatSketcher)(model, k, seed)


class HookSketcher(ModuleLayout):
    """Sketch every module's gradient as ``capture`` runs backward (large models on the CPU).

    ``capture(loss)`` runs the backward pass and returns ``(sketch [M, k], sq_norm [M])`` as
    float32 tensors on the model's device, leaving every ``.grad`` at ``None``.

    A parameter of more than ``SMALL`` values is folded by its hook the moment backward has its
    gradient, whole rows at a time. The rest (biases, norms, modules
    stored exactly, a tiny model's weights: a few MB on Medium) keep their gradients to the end
    of backward and go in together: one multiply and one ``index_add_`` through their
    precomputed places in the flattened ``[M, k]`` sketch, so that per-call overhead stays far
    below the arithmetic.
    """

    SMALL = 1 << 16
    chunk = 1 << 20  # gradient values folded per call: the scratch buffer, which stays in cache

    def __init__(self, model: torch.nn.Module, k: int, seed: int):
        super().__init__(model, k, seed)
        device, p = self.device, self.fold
        self._hooks = []
        self._small: list[torch.nn.Parameter] = []
        places, signs, small = [], [], np.zeros(len(self.modules), dtype=np.int64)
        for m, params in enumerate(self.by_module):
            exact = bool(self.modules.exact[m])
            offset = 0 if exact else int(self.starts[m])     # where the parameter's values go
            for param in params:
                n = param.numel()
                if exact or n <= self.SMALL:
                    place = torch.arange(offset, offset + n, device=device)
                    places.append(m * k + (place if exact else place % p))
                    small[m] += n
                    signs.append(torch.ones(n, device=device) if exact
                                 else self.signs[offset: offset + n].float())
                    self._small.append(param)
                else:
                    self._hooks.append(param.register_post_accumulate_grad_hook(
                        functools.partial(self._fold, m, offset)))
                offset += n
        def cat(xs, dtype):
            return torch.cat(xs) if xs else torch.zeros(0, dtype=dtype, device=device)

        self._small_place = cat(places, torch.long)
        self._small_signs = cat(signs, torch.float32)
        ends = np.cumsum(small)
        self._small_spans = [(m, int(ends[m] - small[m]), int(ends[m]))
                             for m in np.flatnonzero(small)]
        self._out: tuple[torch.Tensor, torch.Tensor] | None = None
        self.fold_seconds = 0.0  # the last capture's own time: hooks and the small parameters
        self._scratch = torch.empty(max(1, self.chunk // p) * p, dtype=torch.float32,
                                    device=device)

    def buffers(self) -> dict[str, int]:
        return {**super().buffers(), "scratch": self._scratch.nbytes,
                "places of the small parameters": self._small_place.nbytes
                + self._small_signs.nbytes}

    def capture(self, loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``loss.backward()``, sketching every gradient; every ``.grad`` is None after it."""
        sketch = torch.zeros(len(self.modules), self.k, dtype=torch.float32, device=self.device)
        sq = torch.zeros(len(self.modules), dtype=torch.float32, device=self.device)
        rows = max(1, self.chunk // self.fold)
        if self._scratch.numel() != rows * self.fold:
            self._scratch = torch.empty(rows * self.fold, dtype=torch.float32, device=self.device)
        for param in self.params:
            param.grad = None
        self._out = (sketch, sq)
        self.fold_seconds = 0.0
        try:
            loss.backward()
            t0 = time.perf_counter()
            if self._small:
                part = torch.cat([(x.grad if x.grad is not None else torch.zeros_like(x))
                                  .detach().reshape(-1).float() for x in self._small])
                part *= self._small_signs
                sketch.view(-1).index_add_(0, self._small_place, part)
                for m, lo, hi in self._small_spans:                # each module's are together
                    sq[m] += torch.dot(part[lo:hi], part[lo:hi])
            self.fold_seconds += time.perf_counter() - t0
        finally:
            self._out = None
            for param in self.params:  # nothing of this step's gradients outlives it, even
                param.grad = None      # after a failed backward
        return sketch, sq

    def _fold(self, m: int, offset: int, param) -> None:
        """The hook of a large parameter (backward records nothing in it). Coordinate
        ``offset + j`` of the flat layout: sign ``signs[offset + j]``, bucket
        ``(offset + j) mod p`` of module ``m`` (each folded module starts at a multiple of
        ``p``): a partial first row, whole rows ``scratch``-full at a time, a partial last row."""
        if self._out is None:
            return
        t0 = time.perf_counter()
        sketch, sq = self._out
        # the gradient stays until backward ends: freed at once, its pages would go back to
        # the system and the allocations that follow fault them in again (slower than the fold)
        g = param.grad.detach().reshape(-1)
        if g.dtype != torch.float32:
            g = g.float()
        p, n, row = self.fold, g.numel(), sketch[m]
        signs = self.signs[offset: offset + n]
        total = sq[m]                                              # a view: += writes sq
        first = min(n, (-offset) % p)                              # to the next row boundary
        if first:
            part, bucket = g[:first] * signs[:first], offset % p
            row[bucket: bucket + first] += part
            total += torch.dot(part, part)
        j, whole = first, self._scratch.numel()
        while n - j >= p:
            end = j + min(whole, (n - j) // p * p)
            part = self._scratch[: end - j]
            torch.mul(g[j:end], signs[j:end], out=part)
            row[:p] += part.view(-1, p).sum(0)
            total += torch.dot(part, part)                         # signs square to 1
            j = end
        if j < n:
            part = g[j:] * signs[j:]
            row[: n - j] += part
            total += torch.dot(part, part)
        self.fold_seconds += time.perf_counter() - t0

    def close(self) -> None:
        """Remove the hooks."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []


class FlatSketcher(ModuleLayout):
    """The capture for CUDA and small CPU models: every ``.grad`` views one flat buffer in the
    layout, and the sketch and squared norms are a few fused passes over it after backward,
    ``chunk`` values at a time (whatever the number of modules: one ``index_add_`` per pass), so
    that the calls do not grow with the parameters (``docs/design.md``).

    ``capture(loss)`` re-attaches the views, zeroes the buffer, runs the backward pass and
    folds; the views stay until something replaces them (a training step's
    ``zero_grad(set_to_none=True)``; the next capture attaches them again).
    """

    chunk = 1 << 24  # gradient values per pass: its float32 temporaries stay at 64 MB

    def __init__(self, model: torch.nn.Module, k: int, seed: int):
        super().__init__(model, k, seed)
        p, device = self.fold, self.device
        folded = np.flatnonzero(~self.modules.exact)                 # laid out first
        exact = np.flatnonzero(self.modules.exact)                    # then one row of k each
        total = self.folded_size + k * len(exact)
        self.exact_index = torch.as_tensor(exact, device=device)
        self.flat = torch.zeros(total, dtype=self.params[0].dtype, device=device)
        self._views = []
        for m, start in enumerate(self.starts):
            offset = int(start)
            for param in self.by_module[m]:
                self._views.append(self.flat[offset: offset + param.numel()].view_as(param))
                offset += param.numel()
        rows_per_module = [ref.padded(int(self.modules.n_params[m]), p) // p for m in folded]
        self.row_module = torch.repeat_interleave(
            torch.as_tensor(folded, device=device),
            torch.tensor(rows_per_module, device=device, dtype=torch.long))

    def capture(self, loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for param, view in zip(self.params, self._views):
            param.grad = view
        self.flat.zero_()
        loss.backward()
        lo, hi = self.flat.data_ptr(), self.flat.data_ptr() + self.flat.nbytes
        if any(not lo <= param.grad.data_ptr() < hi for param in self.params):
            raise RuntimeError("a parameter's .grad stopped viewing the flat buffer during "
                               "backward")
        return self.fold_buffer()

    @torch.no_grad()
    def fold_buffer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Sketch and squared norms of what the buffer holds now."""
        M, k, p = len(self.modules), self.k, self.fold
        rows = self.flat[: self.folded_size].view(-1, p)
        signs = self.signs.view(-1, p)
        exact = self.flat[self.folded_size:].view(-1, k).float()
        sketch = torch.zeros(M, k, dtype=torch.float32, device=self.flat.device)
        sq = torch.zeros(M, dtype=torch.float32, device=self.flat.device)
        head = sketch[:, :p]
        step = max(1, self.chunk // p)
        for lo in range(0, rows.shape[0], step):
            part, owner = rows[lo: lo + step], self.row_module[lo: lo + step]
            head.index_add_(0, owner, (part * signs[lo: lo + step]).float())
            sq.index_add_(0, owner, part.float().square().sum(1))
        sketch[self.exact_index] = exact
        sq[self.exact_index] = exact.square().sum(1)
        return sketch, sq

    def buffers(self) -> dict[str, int]:
        return {**super().buffers(), "flat gradient buffer": self.flat.nbytes,
                "row owners": self.row_module.nbytes}

    def close(self) -> None:
        """Nothing to remove (no hooks)."""
