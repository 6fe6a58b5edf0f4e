"""SlowFast networks: "SlowFast Networks for Video Recognition" (Feichtenhofer, Fan, Malik & He, 2019,
arXiv 1812.03982), §3 and Table 1 (the ResNet-50 instantiation).

- Slow pathway: ``T`` frames taken every ``tau`` raw frames, ResNet-50 widths, temporal kernel 1 in
  conv1/res2/res3 and 3 (on the first 1x1 of each bottleneck) in res4/res5 - "non-degenerate temporal
  convolutions" only where features are semantic enough (§3.1, Table 1).
- Fast pathway: ``alpha * T`` frames (every ``tau / alpha``), ``beta = 1/8`` of the channels, a 5x7x7 stem
  and temporal kernel 3 in every stage, no temporal down-sampling (§3.2).
- Lateral connections (§3.3): after pool1, res2, res3 and res4 a time-strided convolution (``5x1x1``,
  stride ``alpha``, ``2 * beta * C`` output channels, BN, ReLU) maps Fast features to the Slow frame
  rate; they are fused into the Slow pathway by concatenation.
- Head: global average pooling of each pathway, concatenated, dropout 0.5, fc (§3.4).

``forward`` takes the ``(slow, fast)`` tuple of one sampler call
(:func:`actionrec.data.sampling.slowfast_indices`), or a single fast-rate clip (B, 3, alpha*T, H, W)
which it slices into the Slow pathway itself (``x[:, :, ::alpha]``, the same frames the sampler picks).

Also here: the Slow-only and Fast-only baselines of the paper's ablations (§4.2, Table 5), i.e. one
pathway with no lateral connections. The published SlowFast costs (Table 2: 36.1 and 65.7 GFLOPs per
view) are multiply-adds of one 256x256 test crop (3-crop testing, §4), not of a 224x224 crop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from actionrec.layers.bottleneck3d import RESNET50_DEPTHS, Stem3d, conv_bn, cycle_pattern, make_stage
from actionrec.layers.head import ClassifierHead
from actionrec.models.base import VideoClassifier
from actionrec.models.registry import ModelCard, register_model

# (stem temporal kernel, temporal kernel of res2..res5), Table 1.
SLOW_KERNELS = (1, (1, 1, 3, 3))
FAST_KERNELS = (5, (3, 3, 3, 3))
STAGE_MULTIPLIERS = ((1, 4), (2, 8), (4, 16), (8, 32))  # (inner, out) widths of res2..res5 / stem width


class Pathway(nn.Module):
    """Stem and res2..res5 of one pathway; ``extra_in[i]`` fused channels enter stage ``i`` (0: res2)."""

    def __init__(
        self,
        width: int,
        *,
        kernels: tuple[int, Sequence[int]],
        depths: Sequence[int] = RESNET50_DEPTHS,
        extra_in: Sequence[int] = (0, 0, 0, 0),
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        stem_kernel, stage_kernels = kernels
        self.stem = Stem3d(in_channels, width, temporal_kernel=stem_kernel)
        channels = width
        stages = []
        for i, ((m_inner, m_out), depth, kt) in enumerate(
            zip(STAGE_MULTIPLIERS, depths, stage_kernels, strict=True)
        ):
            stages.append(
                make_stage(
                    channels + extra_in[i],
                    width * m_inner,
                    width * m_out,
                    temporal_kernels=cycle_pattern([kt], depth),
                    spatial_stride=1 if i == 0 else 2,
                )
            )
            channels = width * m_out
        self.stages = nn.ModuleList(stages)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x


class Lateral(nn.Module):
    """Time-strided convolution Fast -> Slow (§3.3): (B, C, alpha*T, H, W) -> (B, 2*C, T, H, W)."""

    def __init__(self, channels: int, *, alpha: int, kernel: int = 5, ratio: int = 2) -> None:
        super().__init__()
        self.conv, self.bn = conv_bn(channels, channels * ratio, (kernel, 1, 1), stride=(alpha, 1, 1))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


def _pool_time(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=2, keepdim=True)  # (B, C, T, H, W) -> (B, C, 1, H, W)


class SlowFast(VideoClassifier):
    """Two pathways with lateral connections; ``forward_features`` -> (B, 2048 + 256, 1, H/32, W/32)."""

    def __init__(
        self,
        *,
        num_classes: int = 400,
        alpha: int = 8,
        beta_inv: int = 8,
        fusion_kernel: int = 5,
        fusion_ratio: int = 2,
        depths: Sequence[int] = RESNET50_DEPTHS,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.alpha = alpha
        fast_width = 64 // beta_inv
        fast_channels = [fast_width] + [fast_width * m for _, m in STAGE_MULTIPLIERS[:3]]  # pool1, res2..res4
        self.laterals = nn.ModuleList(
            Lateral(c, alpha=alpha, kernel=fusion_kernel, ratio=fusion_ratio) for c in fast_channels
        )
        self.slow = Pathway(
            64, kernels=SLOW_KERNELS, depths=depths, extra_in=[c * fusion_ratio for c in fast_channels]
        )
        self.fast = Pathway(fast_width, kernels=FAST_KERNELS, depths=depths)
        self.head = ClassifierHead(
            self.slow.out_channels + self.fast.out_channels, num_classes, dropout=dropout
        )

    def split(self, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(slow, fast)`` from a tuple/list or from one fast-rate clip (slow = every alpha-th frame)."""
        if isinstance(x, tuple | list):
            if len(x) != 2:
                raise ValueError(f"SlowFast takes a (slow, fast) pair, got {len(x)} tensors")
            return x[0], x[1]
        return x[:, :, :: self.alpha], x  # (B, C, alpha*T, H, W) -> (B, C, T, H, W)

    def forward_features(self, x: Any) -> torch.Tensor:
        slow, fast = self.split(x)
        slow, fast = self.slow.stem(slow), self.fast.stem(fast)
        for i, (slow_stage, fast_stage) in enumerate(zip(self.slow.stages, self.fast.stages, strict=True)):
            if i < len(self.laterals):
                slow = torch.cat([slow, self.laterals[i](fast)], dim=1)  # fuse along channels
            slow, fast = slow_stage(slow), fast_stage(fast)
        return torch.cat([_pool_time(slow), _pool_time(fast)], dim=1)  # (B, Cs + Cf, 1, H, W)


class SingleRate(VideoClassifier):
    """Slow-only or Fast-only: one pathway, (B, 3, T, H, W) -> (B, num_classes)."""

    def __init__(
        self,
        *,
        num_classes: int = 400,
        width: int = 64,
        kernels: tuple[int, Sequence[int]] = SLOW_KERNELS,
        depths: Sequence[int] = RESNET50_DEPTHS,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.pathway = Pathway(width, kernels=kernels, depths=depths)
        self.head = ClassifierHead(self.pathway.out_channels, num_classes, dropout=dropout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pathway(x)  # (B, C, T, H/32, W/32)


_PAPER = dict(
    paper="SlowFast Networks for Video Recognition",
    arxiv="1812.03982",
    crop_size=224,
    short_side=256,
    normalization="kinetics",
    published_dataset="Kinetics-400",
)


@register_model(
    ModelCard(
        **_PAPER,
        section="§3, Table 1; Table 2",
        input_kind="slowfast",
        alpha=8,
        num_frames=32,
        frame_interval=2,
        published_params_m=34.5,
        published_gmacs=36.1,
        published_top1=75.6,
        published_input="slow 3x4x256x256 + fast 3x32x256x256",
        notes="T x tau = 4 x 16 (fast: 32 frames every 2nd of 64), alpha 8, beta 1/8; 36.1 GFLOPs per "
        "256x256 view (Table 2), 30 views; lateral kernel 5. Measured: 34.48M params, 36.10 GMACs at 256x256 "
        "(27.64 at 224x224).",
    )
)
def slowfast_r50_4x16(*, num_classes: int = 400, **kw: Any) -> SlowFast:
    return SlowFast(num_classes=num_classes, alpha=8, **kw)


@register_model(
    ModelCard(
        **_PAPER,
        section="§3, Table 1; Table 2",
        input_kind="slowfast",
        alpha=4,
        num_frames=32,
        frame_interval=2,
        published_params_m=34.5,
        published_gmacs=65.7,
        published_top1=77.0,
        published_input="slow 3x8x256x256 + fast 3x32x256x256",
        notes="T x tau = 8 x 8 (fast: 32 frames every 2nd of 64), alpha 4, beta 1/8; 65.7 GFLOPs per 256x256 "
        "view (Table 2), 30 views; lateral kernel 7 as in the released SLOWFAST_8x8_R50 model (the paper's "
        "text says 5; fusion_kernel=5 gives 34.48M / 65.30). Measured: 34.57M params, 65.71 GMACs at "
        "256x256 (50.31 at 224x224).",
    )
)
def slowfast_r50_8x8(*, num_classes: int = 400, **kw: Any) -> SlowFast:
    kw.setdefault("fusion_kernel", 7)
    return SlowFast(num_classes=num_classes, alpha=4, **kw)


@register_model(
    ModelCard(
        **_PAPER,
        section="§4.2, Table 5 (Slow-only baseline)",
        num_frames=8,
        frame_interval=8,
        published_gmacs=54.5,
        published_input="3x8x256x256",
        notes="Slow pathway alone, T x tau = 8 x 8; 54.5 GFLOPs per 256x256 view. Measured: 32.45M params, "
        "54.52 GMACs at 8x256x256 (41.74 at 8x224x224).",
    )
)
def slow_only_r50(*, num_classes: int = 400, **kw: Any) -> SingleRate:
    return SingleRate(num_classes=num_classes, width=64, kernels=SLOW_KERNELS, **kw)


@register_model(
    ModelCard(
        **_PAPER,
        section="§4.2, Table 5 (Fast-only baseline)",
        num_frames=32,
        frame_interval=2,
        published_input="3x32x256x256",
        notes="Fast pathway alone (beta = 1/8 channels, 32 frames every 2nd), no published cost used. "
        "Measured: 0.62M params, 6.90 GMACs at 32x256x256 (5.28 at 32x224x224).",
    )
)
def fast_only_r50(*, num_classes: int = 400, **kw: Any) -> SingleRate:
    return SingleRate(num_classes=num_classes, width=8, kernels=FAST_KERNELS, **kw)
