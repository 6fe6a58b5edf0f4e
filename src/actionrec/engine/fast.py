"""The fastest inference path the hardware runs well: autocast precision + channels-last memory layout.

Precision ``auto`` is :func:`actionrec.engine.precision.resolve_precision`, the same resolver the
trainer uses: bf16 autocast on CPUs with native bf16 (AMX / AVX512-BF16) and on CUDA, fp32 elsewhere.
Weights and inputs go to ``channels_last_3d`` so oneDNN and cuDNN pick their blocked / NDHWC kernels.

The wrapped model runs in eval mode under ``torch.inference_mode``; its outputs are returned as
float32 whatever precision computed them. Inputs may be a tensor, a tuple/list (SlowFast's
``(slow, fast)``) or a dict (two-stream's ``{"rgb": ..., "flow": ...}``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from actionrec.engine.precision import (
    PRECISIONS,
    Precision,
    autocast_dtype,
    cpu_has_fast_bf16,
    resolve_precision,
)

__all__ = [
    "PRECISIONS",
    "FastInference",
    "Precision",
    "cpu_has_fast_bf16",
    "fast_inference",
    "resolve_precision",
    "to_device",
]


def map_tensors(x: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Apply ``fn`` to every tensor inside nested tuples, lists and dicts (named tuples kept)."""
    if isinstance(x, torch.Tensor):
        return fn(x)
    if isinstance(x, dict):
        return {k: map_tensors(v, fn) for k, v in x.items()}
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # named tuple
        return type(x)(*(map_tensors(v, fn) for v in x))
    if isinstance(x, (tuple, list)):
        return type(x)(map_tensors(v, fn) for v in x)
    return x


def to_channels_last(t: torch.Tensor) -> torch.Tensor:
    """5-D tensors to ``channels_last_3d``, 4-D to ``channels_last``, others unchanged."""
    if t.ndim == 5:
        return t.contiguous(memory_format=torch.channels_last_3d)
    if t.ndim == 4:
        return t.contiguous(memory_format=torch.channels_last)
    return t


def to_device(x: Any, device: torch.device | str, channels_last: bool = False) -> Any:
    """Move every tensor of a tensor tree to ``device``; 5-D clips optionally to ``channels_last_3d``."""

    def move(t: torch.Tensor) -> torch.Tensor:
        t = t.to(device, non_blocking=True)
        return t.contiguous(memory_format=torch.channels_last_3d) if channels_last and t.ndim == 5 else t

    return map_tensors(x, move)


def model_to_channels_last(model: nn.Module) -> nn.Module:
    """Move the 5-D / 4-D parameters and buffers of ``model`` to channels-last in place (values unchanged)."""
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.ndim in (4, 5):
                t.data = to_channels_last(t.data)
    return model


def model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


class FastInference(nn.Module):
    """Wraps a model so that ``forward`` runs in eval mode, without autograd, at ``precision``."""

    def __init__(self, model: nn.Module, *, precision: str, channels_last: bool) -> None:
        super().__init__()
        self.model = model.eval()
        self.device = model_device(model)
        self.precision = precision
        self.channels_last = channels_last
        for attr in ("card", "model_name", "num_classes"):
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))
        if channels_last:
            model_to_channels_last(model)

    def _prepare(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self.device, non_blocking=True)
        if t.is_floating_point():
            t = t.float()
        return to_channels_last(t) if self.channels_last else t

    def forward(self, x: Any) -> Any:
        x = map_tensors(x, self._prepare)
        dtype = autocast_dtype(self.precision, self.device)
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None),
        ):
            out = self.model(x)
        return map_tensors(out, lambda t: t.float() if t.is_floating_point() else t)

    def train(self, mode: bool = True) -> FastInference:
        if mode:
            raise RuntimeError("FastInference is for inference only; train the wrapped model instead")
        return super().train(False)


def fast_inference(model: nn.Module, *, precision: str = "auto", channels_last: bool = True) -> nn.Module:
    """Wrap ``model`` for inference (see the module docstring).

    The model is put in eval mode and its 4-D/5-D weights are moved to the channels-last layout in
    place (values unchanged); a model already wrapped is unwrapped first, so wrapping twice is safe.
    """
    if isinstance(model, FastInference):
        model = model.model
    resolved = resolve_precision(precision, model_device(model))
    return FastInference(model, precision=resolved, channels_last=channels_last)
