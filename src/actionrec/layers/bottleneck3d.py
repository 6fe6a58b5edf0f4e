"""3D ResNet building blocks with a per-block temporal kernel.

The bottleneck follows "Deep Residual Learning for Image Recognition" (He et al., 2016, arXiv
1512.03385, §3.3, Fig. 5 right) with the spatial stride on the 3x3 convolution (torchvision's
"ResNet v1.5"). Its first 1x1 convolution may be inflated to ``kt x 1 x 1`` as in the I3D ResNets of
"Non-local Neural Networks" (Wang et al., 2018, arXiv 1711.07971, §4.1, Table 1) and in both
pathways of "SlowFast Networks for Video Recognition" (Feichtenhofer et al., 2019, arXiv 1812.03982,
§3.4, Table 1). Which blocks get which temporal kernel is data: a short pattern cycled over the
blocks of a stage (``cycle_pattern``), like PySlowFast's temporal kernel basis.

Module names mirror torchvision's ResNet (``conv1``/``bn1``/.../``downsample``) so that a 2D
ResNet-50 state dict maps onto these blocks key for key (see ``inflate_resnet_state_dict``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from actionrec.errors import WeightsError
from actionrec.layers.inflate import inflate_weight

RESNET50_DEPTHS = (3, 4, 6, 3)


def cycle_pattern(pattern: Sequence[int], depth: int) -> list[int]:
    """Repeat ``pattern`` over ``depth`` blocks: ``cycle_pattern([3, 1], 4) == [3, 1, 3, 1]``."""
    if not pattern:
        raise ValueError("temporal kernel pattern must not be empty")
    return [pattern[i % len(pattern)] for i in range(depth)]


def conv_bn(
    in_channels: int,
    out_channels: int,
    kernel: tuple[int, int, int],
    *,
    stride: tuple[int, int, int] = (1, 1, 1),
) -> tuple[nn.Conv3d, nn.BatchNorm3d]:
    """A bias-free 3D convolution with 'same' padding and its BatchNorm."""
    padding = tuple(k // 2 for k in kernel)
    conv = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=False)
    return conv, nn.BatchNorm3d(out_channels)


class Bottleneck3d(nn.Module):
    """``kt x 1 x 1`` -> ``1 x 3 x 3`` (spatial stride) -> ``1 x 1 x 1``, plus the (projected) shortcut."""

    def __init__(
        self,
        in_channels: int,
        inner_channels: int,
        out_channels: int,
        *,
        temporal_kernel: int = 1,
        spatial_stride: int = 1,
        temporal_stride: int = 1,
    ) -> None:
        super().__init__()
        stride = (temporal_stride, spatial_stride, spatial_stride)
        self.conv1, self.bn1 = conv_bn(in_channels, inner_channels, (temporal_kernel, 1, 1))
        self.conv2, self.bn2 = conv_bn(inner_channels, inner_channels, (1, 3, 3), stride=stride)
        self.conv3, self.bn3 = conv_bn(inner_channels, out_channels, (1, 1, 1))
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if in_channels != out_channels or stride != (1, 1, 1):
            self.downsample = nn.Sequential(*conv_bn(in_channels, out_channels, (1, 1, 1), stride=stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        y += shortcut  # in place, as in resnet_blocks (a fresh buffer per block costs page faults)
        return self.relu(y)


def make_stage(
    in_channels: int,
    inner_channels: int,
    out_channels: int,
    *,
    temporal_kernels: Sequence[int],
    spatial_stride: int,
) -> nn.Sequential:
    """One residual stage; block ``i`` uses ``temporal_kernels[i]``, the first block strides."""
    blocks = []
    for i, kt in enumerate(temporal_kernels):
        blocks.append(
            Bottleneck3d(
                in_channels if i == 0 else out_channels,
                inner_channels,
                out_channels,
                temporal_kernel=kt,
                spatial_stride=spatial_stride if i == 0 else 1,
            )
        )
    return nn.Sequential(*blocks)


class Stem3d(nn.Module):
    """``kt x 7 x 7`` convolution (spatial stride 2), BN, ReLU, then a 3D max-pool (spatial stride 2)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        temporal_kernel: int = 1,
        temporal_stride: int = 1,
        pool_temporal_kernel: int = 1,
        pool_temporal_stride: int = 1,
    ) -> None:
        super().__init__()
        self.conv, self.bn = conv_bn(
            in_channels, out_channels, (temporal_kernel, 7, 7), stride=(temporal_stride, 2, 2)
        )
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool3d(
            (pool_temporal_kernel, 3, 3),
            stride=(pool_temporal_stride, 2, 2),
            padding=(pool_temporal_kernel // 2, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.bn(self.conv(x))))


def _torchvision_key(key: str) -> str:
    """Our backbone key -> torchvision ResNet key (``stem.conv`` -> ``conv1``, ``stem.bn`` -> ``bn1``)."""
    if key.startswith("stem.conv."):
        return "conv1." + key[len("stem.conv.") :]
    if key.startswith("stem.bn."):
        return "bn1." + key[len("stem.bn.") :]
    return key


def inflate_resnet_state_dict(
    model: nn.Module,
    state_2d: Mapping[str, torch.Tensor],
    *,
    method: str = "mean",
    rename: Callable[[str], str] = _torchvision_key,
    skip_prefixes: Sequence[str] = ("head.", "nonlocal"),
) -> int:
    """Copy a torchvision ResNet state dict into ``model`` in place, inflating 2D kernels over time.

    Every key of ``model`` outside ``skip_prefixes`` must have a 2D counterpart under ``rename(key)``
    whose shape matches after inflation; otherwise :class:`WeightsError` names the first bad key.
    Returns the number of tensors copied.
    """
    own = model.state_dict()
    copied = 0
    for key, target in own.items():
        if key.startswith(tuple(skip_prefixes)):
            continue
        src_key = rename(key)
        if src_key not in state_2d:
            raise WeightsError(f"2D ResNet state dict has no tensor {src_key!r} (needed for {key!r})")
        src = state_2d[src_key]
        if target.ndim == 5 and src.ndim == 4:
            src = inflate_weight(src, target.shape[2], method=method)
        if tuple(src.shape) != tuple(target.shape):
            raise WeightsError(
                f"{src_key!r} has shape {tuple(src.shape)}, {key!r} needs {tuple(target.shape)}"
            )
        target.copy_(src.to(target.dtype))
        copied += 1
    return copied
