"""Feature-pooling heads over per-frame CNN features (Ng et al. 2015, §3.1, Figure 2).

Ng, Hausknecht, Vijayanarasimhan, Vinyals, Monga and Toderici, "Beyond Short Snippets: Deep Networks for
Video Classification", CVPR 2015, arXiv 1503.08909. Every head takes the frame network's last feature
maps, (B, F, T, h, w), and returns (B, K) logits:

* :class:`ConvPoolingHead` pools over time on the conv maps (per spatial position), then FC layers;
* :class:`LatePoolingHead` runs the FC layers on every frame and pools over time after them;
* :class:`SlowPoolingHead` pools over windows of frames, a shared FC on each window, pools the windows,
  FC; :class:`LocalPoolingHead` stops after the first stage and classifies the concatenated windows;
* :class:`TimeConvHead` convolves over (time, height, width), then pools over time.

``pool`` is ``"max"`` (the paper's best) or ``"avg"``. A max or average over time is a symmetric
function of its inputs, so conv and late pooling give the same output for any order of the frames, by
construction. Slow and local pooling are order-invariant only inside a window; time-domain convolution
is not order-invariant at all.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

POOLS = ("max", "avg")


def pool_time(x: torch.Tensor, how: str, dim: int) -> torch.Tensor:
    """Max or mean over one dimension (the time axis)."""
    if how == "max":
        return x.amax(dim)
    if how == "avg":
        return x.mean(dim)
    raise ValueError(f"pool must be one of {POOLS}, got {how!r}")


def window_pool(x: torch.Tensor, how: str, *, window: int, stride: int) -> torch.Tensor:
    """(B, T, D) -> (B, W, D): max or mean over windows of ``window`` steps, ``stride`` apart."""
    if x.shape[1] < window:
        raise ValueError(f"{x.shape[1]} frames is fewer than the pooling window of {window}")
    windows = x.unfold(1, window, stride)  # (B, T, D) -> (B, W, D, window)
    return pool_time(windows, how, dim=-1)


def num_windows(num_frames: int, *, window: int, stride: int) -> int:
    return (num_frames - window) // stride + 1


def mlp(in_features: int, dims: Sequence[int], dropout: float) -> nn.Sequential:
    """The paper's fully connected layers: Linear, ReLU, Dropout for every width in ``dims``."""
    layers: list[nn.Module] = []
    for d in dims:
        layers += [nn.Linear(in_features, d), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        in_features = d
    return nn.Sequential(*layers)


class _PoolingHead(nn.Module):
    """Shared part: the FC layers' output width and a resettable classifier."""

    def __init__(self, pre_logits_dim: int, num_classes: int, *, pool: str) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        self.pool = pool
        self.pre_logits_dim = pre_logits_dim
        self.fc: nn.Module = self._make_fc(num_classes)

    def _make_fc(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.pre_logits_dim, num_classes) if num_classes > 0 else nn.Identity()

    def reset(self, num_classes: int) -> None:
        self.fc = self._make_fc(num_classes)

    def classify(self, x: torch.Tensor, pre_logits: bool) -> torch.Tensor:
        return x if pre_logits else self.fc(x)


class _MlpPoolingHead(_PoolingHead):
    """A pooling head with FC layers ``fc_dims`` (before or after the pooling)."""

    def __init__(
        self, in_features: int, num_classes: int, *, fc_dims: Sequence[int], pool: str, dropout: float
    ) -> None:
        super().__init__(fc_dims[-1] if fc_dims else in_features, num_classes, pool=pool)
        self.mlp = mlp(in_features, fc_dims, dropout)


class ConvPoolingHead(_MlpPoolingHead):
    """Conv pooling: pool over time at every position of the last conv maps, then FC layers (§3.1)."""

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = pool_time(x, self.pool, dim=2)  # (B, F, T, h, w) -> (B, F, h, w)
        x = x.flatten(2).mean(-1)  # (B, F, h, w) -> (B, F): the backbone's own global average pool
        return self.classify(self.mlp(x), pre_logits)


class LatePoolingHead(_MlpPoolingHead):
    """Late pooling: FC layers on every frame, then pool over time (§3.1)."""

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.flatten(3).mean(-1).transpose(1, 2)  # (B, F, T, h, w) -> (B, F, T) -> (B, T, F)
        x = pool_time(self.mlp(x), self.pool, dim=1)  # (B, T, D) -> (B, D)
        return self.classify(x, pre_logits)


class SlowPoolingHead(_PoolingHead):
    """Slow pooling: pool windows of frames, a shared FC per window, pool the windows, FC (§3.1)."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        fc_dims: Sequence[int],
        pool: str,
        dropout: float,
        window: int,
        stride: int,
    ) -> None:
        if len(fc_dims) < 2:
            raise ValueError("slow pooling needs two FC widths: one per window, one after the second pool")
        super().__init__(fc_dims[-1], num_classes, pool=pool)
        self.window, self.stride = window, stride
        self.local = mlp(in_features, fc_dims[:1], dropout)
        self.top = mlp(fc_dims[0], fc_dims[1:], dropout)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.flatten(3).mean(-1).transpose(1, 2)  # (B, F, T, h, w) -> (B, T, F)
        x = window_pool(x, self.pool, window=self.window, stride=self.stride)  # (B, T, F) -> (B, W, F)
        x = pool_time(self.local(x), self.pool, dim=1)  # (B, W, D) -> (B, D)
        return self.classify(self.top(x), pre_logits)


class LocalPoolingHead(_PoolingHead):
    """Local pooling: the first stage of slow pooling, then one classifier over all windows (§3.1).

    The classifier sees every window's features side by side, so the number of frames is fixed when the
    head is built.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        fc_dims: Sequence[int],
        pool: str,
        dropout: float,
        window: int,
        stride: int,
        num_frames: int,
    ) -> None:
        self.windows = num_windows(num_frames, window=window, stride=stride)
        if self.windows < 1:
            raise ValueError(f"{num_frames} frames is fewer than the pooling window of {window}")
        width = fc_dims[-1] if fc_dims else in_features
        super().__init__(self.windows * width, num_classes, pool=pool)
        self.window, self.stride, self.num_frames = window, stride, num_frames
        self.local = mlp(in_features, fc_dims, dropout)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if x.shape[2] != self.num_frames:
            raise ValueError(f"local pooling was built for {self.num_frames} frames, got {x.shape[2]}")
        x = x.flatten(3).mean(-1).transpose(1, 2)  # (B, F, T, h, w) -> (B, T, F)
        x = window_pool(x, self.pool, window=self.window, stride=self.stride)  # (B, T, F) -> (B, W, F)
        x = self.local(x).flatten(1)  # (B, W, D) -> (B, W*D): the towers side by side
        return self.classify(x, pre_logits)


class TimeConvHead(_PoolingHead):
    """Time-domain convolution: a (window x 3 x 3) conv striding over time, pool over time, FC (§3.1)."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        channels: int,
        window: int,
        stride: int,
        fc_dims: Sequence[int],
        pool: str,
        dropout: float,
    ) -> None:
        super().__init__(fc_dims[-1] if fc_dims else channels, num_classes, pool=pool)
        self.window = window
        self.conv = nn.Conv3d(in_features, channels, (window, 3, 3), stride=(stride, 1, 1), padding=(0, 1, 1))
        self.relu = nn.ReLU(inplace=True)
        self.mlp = mlp(channels, fc_dims, dropout)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if x.shape[2] < self.window:
            raise ValueError(f"{x.shape[2]} frames is fewer than the temporal kernel of {self.window}")
        x = self.relu(self.conv(x))  # (B, F, T, h, w) -> (B, C, T', h, w)
        x = pool_time(x, self.pool, dim=2).flatten(2).mean(-1)  # (B, C, T', h, w) -> (B, C, h, w) -> (B, C)
        return self.classify(self.mlp(x), pre_logits)
