"""The (2+1)D convolution (Tran et al. 2018, "A Closer Look at Spatiotemporal Convolutions for Action
Recognition", arXiv 1711.11248, §3.5 and Figure 2).

A full ``t x d x d`` 3D convolution from ``N_in`` to ``N_out`` channels is replaced by a ``1 x d x d``
spatial convolution into ``M`` channels, batch norm, ReLU and a ``t x 1 x 1`` temporal convolution into
``N_out`` channels. ``M`` is chosen so that the factorised block has (about) as many parameters as the
full 3D convolution (§3.5)::

    M = floor(t * d^2 * N_in * N_out / (d^2 * N_in + t * N_out))
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

Stride3 = tuple[int, int, int]


def mid_channels(
    in_channels: int, out_channels: int, *, temporal_kernel: int = 3, spatial_kernel: int = 3
) -> int:
    """The paper's intermediate width ``M`` (§3.5), at least 1."""
    t, d2 = temporal_kernel, spatial_kernel * spatial_kernel
    return max(1, (t * d2 * in_channels * out_channels) // (d2 * in_channels + t * out_channels))


def as_stride3(stride: int | Stride3) -> Stride3:
    """``2`` -> ``(2, 2, 2)``; a (t, h, w) tuple is returned as it is."""
    if isinstance(stride, int):
        return (stride, stride, stride)
    t, h, w = stride
    return (int(t), int(h), int(w))


class Conv2Plus1D(nn.Sequential):
    """Spatial ``1 x d x d`` conv -> BN -> ReLU -> temporal ``t x 1 x 1`` conv (no bias, no final BN).

    The module is an ``nn.Sequential`` whose children 0 (spatial conv), 1 (norm), 2 (ReLU) and 3 (temporal
    conv) give the state-dict keys torchvision's ``Conv2Plus1D`` uses, so its weights load unchanged.
    The spatial stride goes to the spatial conv, the temporal stride to the temporal conv.
    ``mid_channels=None`` uses the paper's formula (:func:`mid_channels`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mid: int | None = None,
        *,
        stride: int | Stride3 = 1,
        spatial_kernel: int = 3,
        temporal_kernel: int = 3,
        norm: Callable[[int], nn.Module] = nn.BatchNorm3d,
    ) -> None:
        st, sh, sw = as_stride3(stride)
        if mid is None:
            mid = mid_channels(
                in_channels, out_channels, temporal_kernel=temporal_kernel, spatial_kernel=spatial_kernel
            )
        pad_s, pad_t = spatial_kernel // 2, temporal_kernel // 2
        super().__init__(
            nn.Conv3d(
                in_channels,
                mid,
                (1, spatial_kernel, spatial_kernel),
                stride=(1, sh, sw),
                padding=(0, pad_s, pad_s),
                bias=False,
            ),
            norm(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(
                mid,
                out_channels,
                (temporal_kernel, 1, 1),
                stride=(st, 1, 1),
                padding=(pad_t, 0, 0),
                bias=False,
            ),
        )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.mid_channels = mid
