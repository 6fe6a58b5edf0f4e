"""TensorFlow "SAME" padding for 3D convolution and max-pooling.

TensorFlow's ``padding="SAME"`` makes the output ``ceil(in / stride)`` long and pads
``total = max((ceil(in / stride) - 1) * stride + k - in, 0)`` per axis, with the odd element at the
end (``total // 2`` before, the rest after). PyTorch's symmetric ``padding=`` cannot express that for
even totals (e.g. a 7x7x7 stride-2 convolution on 224 pixels pads 2 before and 3 after), so weights
trained in TensorFlow — DeepMind's I3D ("Quo Vadis, Action Recognition?", Carreira & Zisserman 2017,
arXiv 1705.07750) — only reproduce exactly with the asymmetric pad computed from the input size.
Max-pooling pads with ``-inf`` so that padded positions never win, as TensorFlow does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _triple(v: int | tuple[int, ...]) -> tuple[int, int, int]:
    t = (v, v, v) if isinstance(v, int) else tuple(v)
    return (int(t[0]), int(t[1]), int(t[2]))


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding of one axis under TensorFlow "SAME"."""
    effective = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def same_pad_amounts(
    shape: torch.Size | tuple[int, ...],
    kernel: tuple[int, int, int],
    stride: tuple[int, int, int],
    dilation: tuple[int, int, int] = (1, 1, 1),
) -> tuple[int, int, int, int, int, int]:
    """``F.pad`` amounts (W before/after, H before/after, T before/after) for a (B, C, T, H, W) input."""
    t, h, w = shape[-3:]
    pt = same_padding(t, kernel[0], stride[0], dilation[0])
    ph = same_padding(h, kernel[1], stride[1], dilation[1])
    pw = same_padding(w, kernel[2], stride[2], dilation[2])
    return (*pw, *ph, *pt)


class Conv3dSame(nn.Conv3d):
    """``nn.Conv3d`` with TensorFlow "SAME" padding computed from each input's size.

    Symmetric pads go through the convolution's own ``padding`` (no copy); asymmetric ones are
    applied with ``F.pad`` first. The parameters are those of ``nn.Conv3d`` (``weight``, ``bias``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int, int],
        *,
        stride: int | tuple[int, int, int] = 1,
        dilation: int | tuple[int, int, int] = 1,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=0,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = same_pad_amounts(
            x.shape, _triple(self.kernel_size), _triple(self.stride), _triple(self.dilation)
        )
        if pads[0::2] == pads[1::2]:  # symmetric on every axis: let the convolution pad
            return F.conv3d(
                x,
                self.weight,
                self.bias,
                self.stride,
                (pads[4], pads[2], pads[0]),
                self.dilation,
                self.groups,
            )
        x = F.pad(x, pads)
        return F.conv3d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MaxPool3dSame(nn.MaxPool3d):
    """``nn.MaxPool3d`` with TensorFlow "SAME" padding (pads with ``-inf``, so padding never wins)."""

    def __init__(self, kernel_size: int | tuple[int, int, int], stride: int | tuple[int, int, int]) -> None:
        super().__init__(kernel_size, stride=stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = same_pad_amounts(x.shape, _triple(self.kernel_size), _triple(self.stride))
        if any(pads):
            x = F.pad(x, pads, value=float("-inf"))
        return F.max_pool3d(x, self.kernel_size, self.stride, 0)
