"""Parameter and multiply-accumulate counts, measured on the meta device (no compute, no memory)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def to_device(x: Any, device: torch.device | str) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, tuple | list):
        return type(x)(to_device(v, device) for v in x)
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    return x


def count_macs(model: nn.Module, example: Any, *, device: str = "meta") -> int:
    """Multiply-accumulates of one forward pass (FLOPs / 2, as the papers report GMACs).

    Runs on the meta device by default so that even 100-GMAC models cost milliseconds. The model is
    copied, never moved.
    """
    import copy

    m = copy.deepcopy(model).to(device).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        m(to_device(example, device))
    return counter.get_total_flops() // 2
