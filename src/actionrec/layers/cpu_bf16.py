"""A guard against a CPU bf16 bug: Conv3d weight gradients are garbage when 1 < T < the temporal kernel.

Under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (PyTorch 2.14, oneDNN), the *weight* gradient of a
Conv3d whose input has more than one but fewer time steps than its temporal kernel (T = 2 under a
3x1x1 kernel with padding 1, T = 2..4 under a 5-tap kernel) comes out inf / NaN / off by orders of
magnitude, while the forward pass and the input gradient are right. Every video ResNet meets this shape
in its last stage (R(2+1)D-18 on 16 frames has T = 2 in ``layer4``), so bf16 training on CPU diverges
within an epoch or two. :func:`guard_cpu_bf16_conv3d` makes exactly those convolutions leave autocast
and run in fp32; everything else keeps bf16. Each affected layer costs next to nothing: its T is tiny.
"""

from __future__ import annotations

import torch
from torch import nn


class GuardedConv3d(nn.Conv3d):
    """A Conv3d that runs in fp32 under CPU autocast when ``1 < T < kernel_t`` (same parameters and keys)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.device.type == "cpu"
            and torch.is_autocast_enabled("cpu")
            and 1 < x.shape[2] < self.kernel_size[0]
        ):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


def guard_cpu_bf16_conv3d(model: nn.Module) -> nn.Module:
    """Turn every plain ``nn.Conv3d`` with a temporal kernel > 2 of ``model`` into a :class:`GuardedConv3d`.

    The modules are changed in place (their class only), so parameters, state-dict keys and the
    outputs outside the affected shapes stay exactly as they were.
    """
    for module in model.modules():
        if type(module) is nn.Conv3d and module.kernel_size[0] > 2:
            module.__class__ = GuardedConv3d
    return model
