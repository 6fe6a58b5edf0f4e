"""Stems and residual blocks for 3D ResNets, parameterised by the convolution they use.

The blocks follow He et al. 2016 ("Deep Residual Learning for Image Recognition", arXiv 1512.03385,
§3.3 and Figure 5); Tran et al. 2018 ("A Closer Look at Spatiotemporal Convolutions for Action
Recognition", arXiv 1711.11248, §3 and Table 1) build R3D, MCx and R(2+1)D from them by changing only
the 3x3 convolution: a full 3D conv (:class:`Full3d`), a spatial-only conv (:class:`Spatial2d`, the "2D"
layers of MCx) or a (2+1)D conv (:class:`Factorized2plus1d`).

Module names (``conv1.0``, ``conv1.1``, ``downsample.0`` ...) follow torchvision's video ResNets so that
its state dicts load unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from torch import nn

from actionrec.layers.conv2plus1d import Conv2Plus1D, Stride3, as_stride3, mid_channels

Norm = Callable[[int], nn.Module]
MidRule = Literal["conv", "block"]


class ConvBuilder(Protocol):
    """Makes the 3x3(x3) convolution of a block.

    ``mid_ref`` is the (in, out) pair a factorised conv computes its middle width from (see ``mid_rule`` of
    the blocks); other convs ignore it. ``has_time`` says whether the conv mixes frames, so that a network
    knows whether a stage may stride over time.
    """

    has_time: bool

    def __call__(
        self, in_channels: int, out_channels: int, *, stride: Stride3, mid_ref: tuple[int, int]
    ) -> nn.Module: ...


@dataclass(frozen=True)
class Full3d:
    """A ``t x d x d`` 3D convolution (R3D, C3D)."""

    temporal_kernel: int = 3
    spatial_kernel: int = 3

    @property
    def has_time(self) -> bool:
        return self.temporal_kernel > 1

    def __call__(
        self, in_channels: int, out_channels: int, *, stride: Stride3, mid_ref: tuple[int, int]
    ) -> nn.Module:
        k = (self.temporal_kernel, self.spatial_kernel, self.spatial_kernel)
        pad = tuple(s // 2 for s in k)
        return nn.Conv3d(in_channels, out_channels, k, stride=stride, padding=pad, bias=False)


@dataclass(frozen=True)
class Spatial2d:
    """A ``1 x d x d`` convolution: a 2D conv applied to every frame (the top layers of MCx)."""

    spatial_kernel: int = 3

    @property
    def has_time(self) -> bool:
        return False

    def __call__(
        self, in_channels: int, out_channels: int, *, stride: Stride3, mid_ref: tuple[int, int]
    ) -> nn.Module:
        return Full3d(1, self.spatial_kernel)(in_channels, out_channels, stride=stride, mid_ref=mid_ref)


@dataclass(frozen=True)
class Factorized2plus1d:
    """A (2+1)D convolution whose middle width comes from ``mid_ref`` by the paper's formula."""

    temporal_kernel: int = 3
    spatial_kernel: int = 3
    norm: Norm = nn.BatchNorm3d

    @property
    def has_time(self) -> bool:
        return self.temporal_kernel > 1

    def __call__(
        self, in_channels: int, out_channels: int, *, stride: Stride3, mid_ref: tuple[int, int]
    ) -> nn.Module:
        t, d = self.temporal_kernel, self.spatial_kernel
        mid = mid_channels(*mid_ref, temporal_kernel=t, spatial_kernel=d)
        return Conv2Plus1D(
            in_channels, out_channels, mid, stride=stride, spatial_kernel=d, temporal_kernel=t, norm=self.norm
        )


def projection(
    in_channels: int, out_channels: int, stride: Stride3, norm: Norm = nn.BatchNorm3d
) -> nn.Sequential:
    """The 1x1x1 conv + norm shortcut of a block that changes width or resolution."""
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False), norm(out_channels)
    )


def _shortcut(in_channels: int, out_channels: int, stride: Stride3, norm: Norm) -> nn.Module | None:
    if stride != (1, 1, 1) or in_channels != out_channels:
        return projection(in_channels, out_channels, stride, norm)
    return None


class BasicBlock(nn.Module):
    """Two 3x3(x3) convs with a residual connection; the first one carries the stride.

    ``mid_rule`` decides the middle width of factorised convs: ``"conv"`` computes it from each conv's own
    (in, out) widths, as the paper's formula (§3.5) and the released Caffe2 models do; ``"block"`` uses the
    block's (in_channels, planes) for both convs, as torchvision's ``r2plus1d_18`` does (its second conv in
    the first block of stages 2-4 is therefore narrower, 31.5M parameters instead of 33.3M).
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        planes: int,
        *,
        conv: ConvBuilder,
        stride: int | Stride3 = 1,
        mid_rule: MidRule = "conv",
        norm: Norm = nn.BatchNorm3d,
    ) -> None:
        super().__init__()
        stride = as_stride3(stride)
        second_ref = (in_channels, planes) if mid_rule == "block" else (planes, planes)
        self.conv1 = nn.Sequential(
            conv(in_channels, planes, stride=stride, mid_ref=(in_channels, planes)),
            norm(planes),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(conv(planes, planes, stride=(1, 1, 1), mid_ref=second_ref), norm(planes))
        self.downsample = _shortcut(in_channels, planes, stride, norm)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.conv2(self.conv1(x))
        out += shortcut  # in place: a fresh activation-sized buffer per block cost MC3-18 9 % (page faults)
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1x1 reduce -> 3x3(x3) ``conv`` -> 1x1x1 expand (x4), with a residual connection.

    ``temporal_kernel_a`` gives the first conv a ``t x 1 x 1`` kernel (the inflated "3x1x1" first conv of
    I3D-style ResNets and the SlowFast pathways); ``stride_in_1x1`` moves the stride from the middle conv to
    the first one (the original Caffe2 ResNet layout).
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        *,
        conv: ConvBuilder,
        stride: int | Stride3 = 1,
        mid_rule: MidRule = "conv",
        norm: Norm = nn.BatchNorm3d,
        temporal_kernel_a: int = 1,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        stride = as_stride3(stride)
        s1, s2 = (stride, (1, 1, 1)) if stride_in_1x1 else ((1, 1, 1), stride)
        out = planes * self.expansion
        ka = (temporal_kernel_a, 1, 1)
        self.conv1 = nn.Sequential(
            nn.Conv3d(in_channels, planes, ka, stride=s1, padding=(temporal_kernel_a // 2, 0, 0), bias=False),
            norm(planes),
            nn.ReLU(inplace=True),
        )
        ref = (in_channels, planes) if mid_rule == "block" else (planes, planes)
        self.conv2 = nn.Sequential(
            conv(planes, planes, stride=s2, mid_ref=ref), norm(planes), nn.ReLU(inplace=True)
        )
        self.conv3 = nn.Sequential(nn.Conv3d(planes, out, 1, bias=False), norm(out))
        self.downsample = _shortcut(in_channels, out, stride, norm)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.conv3(self.conv2(self.conv1(x)))
        out += shortcut  # in place, as in BasicBlock
        return self.relu(out)


def make_stage(
    block: type[BasicBlock] | type[Bottleneck],
    in_channels: int,
    planes: int,
    num_blocks: int,
    *,
    conv: ConvBuilder,
    stride: int | Stride3 = 1,
    per_block: Sequence[dict[str, Any]] | None = None,
    **block_kwargs: Any,
) -> nn.Sequential:
    """``num_blocks`` blocks; the first takes ``stride`` (and the projection shortcut).

    ``per_block[i]`` adds or overrides keyword arguments of block ``i`` (for example an alternating
    ``temporal_kernel_a`` or ``conv``).
    """
    blocks = []
    for i in range(num_blocks):
        kwargs = {"conv": conv, **block_kwargs, **(per_block[i] if per_block else {})}
        blocks.append(block(in_channels, planes, stride=stride if i == 0 else 1, **kwargs))
        in_channels = planes * block.expansion
    return nn.Sequential(*blocks)


class BasicStem(nn.Sequential):
    """Conv ``t x 7 x 7`` (stride 1x2x2) -> BN -> ReLU, optionally a 1x3x3 max-pool (stride 1x2x2).

    With ``temporal_kernel=3`` this is the R3D / MCx stem (Tran et al. 2018, Table 1, "conv1").
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 64,
        *,
        temporal_kernel: int = 3,
        spatial_kernel: int = 7,
        temporal_stride: int = 1,
        pool: bool = False,
        norm: Norm = nn.BatchNorm3d,
    ) -> None:
        k = (temporal_kernel, spatial_kernel, spatial_kernel)
        layers: list[nn.Module] = [
            nn.Conv3d(
                in_channels,
                out_channels,
                k,
                stride=(temporal_stride, 2, 2),
                padding=tuple(s // 2 for s in k),
                bias=False,
            ),
            norm(out_channels),
            nn.ReLU(inplace=True),
        ]
        if pool:
            layers.append(_stem_pool())
        super().__init__(*layers)


def _stem_pool() -> nn.Module:
    return nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))


class R2Plus1dStem(nn.Sequential):
    """The factorised stem of R(2+1)D: ``1 x 7 x 7`` conv (stride 1x2x2) into ``mid`` channels, BN, ReLU,
    ``t x 1 x 1`` conv, BN, ReLU, optionally a 1x3x3 max-pool (stride 1x2x2). The released models use
    ``mid=45`` for 64 output channels and no pool."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 64,
        *,
        mid: int = 45,
        temporal_kernel: int = 3,
        spatial_kernel: int = 7,
        pool: bool = False,
        norm: Norm = nn.BatchNorm3d,
    ) -> None:
        pad_s = spatial_kernel // 2
        layers: list[nn.Module] = [
            nn.Conv3d(
                in_channels,
                mid,
                (1, spatial_kernel, spatial_kernel),
                stride=(1, 2, 2),
                padding=(0, pad_s, pad_s),
                bias=False,
            ),
            norm(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(
                mid, out_channels, (temporal_kernel, 1, 1), padding=(temporal_kernel // 2, 0, 0), bias=False
            ),
            norm(out_channels),
            nn.ReLU(inplace=True),
        ]
        if pool:
            layers.append(_stem_pool())
        super().__init__(*layers)


def init_resnet_weights(module: nn.Module) -> None:
    """Kaiming-normal (fan-out) convs, unit/zero norms, small-normal linear layers (He et al. 2015)."""
    for m in module.modules():
        if isinstance(m, nn.Conv3d | nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d | nn.BatchNorm2d | nn.GroupNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
