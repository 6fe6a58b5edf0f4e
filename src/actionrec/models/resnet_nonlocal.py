"""ResNet-50 video baselines and non-local networks of "Non-local Neural Networks"
(Wang, Girshick, Gupta & He, 2018, arXiv 1711.07971), §4 and Table 1.

Table 1's C2D baseline takes a 32 x 224 x 224 clip (32 frames taken from 64 consecutive ones,
frame interval 2, §4.1) and keeps every convolution 2D (temporal kernel 1); time is reduced only by
strides: conv1 (1x7x7, stride 2,2,2) -> 16x112x112, pool1 (3x3x3 max, stride 2,2,2) -> 8x56x56,
res2 -> 8x56x56, pool2 (3x1x1 max, stride 2,1,1) -> 4x56x56, res3 -> 4x28x28, res4 -> 4x14x14,
res5 -> 4x7x7, global average pool, fc.

I3D (§4.1, "Non-local 3D ConvNet" and Table 2(d)) is the I3D_3x1x1 variant: conv1 inflated to 5x7x7 and
the first 1x1 kernel of a residual block inflated to 3x1x1 in every other block (res2: all three, res3:
blocks 0 and 2, res4: 0, 2, 4, res5: block 1 - the pattern of the released code and of PySlowFast).

The ``_nl`` models add 5 non-local blocks (§4.1 "which stage", Table 2(b)): after blocks 1 and 3 of res3
and blocks 1, 3 and 5 of res4, embedded Gaussian, with phi/g sub-sampled by 1x2x2 max-pooling.

The paper reports R50 costs only relative to the C2D baseline (Table 2), so the cards hold no absolute
published numbers; the values measured here (conv/linear/matmul MACs, 400 classes) are in their notes.

``pretrained_2d=PATH`` initialises the backbone by inflating a torchvision ResNet-50 state dict
(``torch.load(weights_only=True)``): kernels repeated over time and divided by its length.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from actionrec.errors import WeightsError
from actionrec.layers.bottleneck3d import (
    RESNET50_DEPTHS,
    Stem3d,
    cycle_pattern,
    inflate_resnet_state_dict,
    make_stage,
)
from actionrec.layers.head import ClassifierHead
from actionrec.layers.nonlocal_block import NonLocalBlock
from actionrec.models.base import VideoClassifier
from actionrec.models.registry import ModelCard, register_model

STAGE_WIDTHS = ((64, 256), (128, 512), (256, 1024), (512, 2048))  # (inner, out) of res2..res5
# Temporal kernel of each stage's first 1x1 conv, cycled over its blocks (stem kernel separately).
TEMPORAL_PATTERNS: dict[str, tuple[int, tuple[tuple[int, ...], ...]]] = {
    "c2d": (1, ((1,), (1,), (1,), (1,))),
    "i3d": (5, ((3,), (3, 1), (3, 1), (1, 3))),
}
NONLOCAL_5 = ((), (1, 3), (1, 3, 5), ())  # block indices followed by a non-local block, res2..res5


class ResNet3dNonLocal(VideoClassifier):
    """C2D / I3D ResNet-50 of Table 1 with optional non-local blocks after chosen residual blocks."""

    def __init__(
        self,
        *,
        num_classes: int = 400,
        arch: str = "c2d",
        depths: Sequence[int] = RESNET50_DEPTHS,
        nonlocal_blocks: Sequence[Sequence[int]] = ((), (), (), ()),
        nonlocal_mode: str = "embedded_gaussian",
        nonlocal_sub_sample: bool = True,
        in_channels: int = 3,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if arch not in TEMPORAL_PATTERNS:
            raise ValueError(f"arch must be one of {sorted(TEMPORAL_PATTERNS)}, got {arch!r}")
        stem_kernel, patterns = TEMPORAL_PATTERNS[arch]
        self.num_classes = num_classes
        self.stem = Stem3d(
            in_channels,
            64,
            temporal_kernel=stem_kernel,
            temporal_stride=2,
            pool_temporal_kernel=3,
            pool_temporal_stride=2,
        )
        self.pool2 = nn.MaxPool3d((3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
        channels = 64
        for i, ((inner, out), depth, pattern) in enumerate(zip(STAGE_WIDTHS, depths, patterns, strict=True)):
            stage = make_stage(
                channels,
                inner,
                out,
                temporal_kernels=cycle_pattern(pattern, depth),
                spatial_stride=1 if i == 0 else 2,
            )
            setattr(self, f"layer{i + 1}", stage)
            blocks = {
                str(j): NonLocalBlock(out, mode=nonlocal_mode, sub_sample=nonlocal_sub_sample)
                for j in nonlocal_blocks[i]
            }
            setattr(self, f"nonlocal{i + 1}", nn.ModuleDict(blocks))
            channels = out
        self.head = ClassifierHead(channels, num_classes, dropout=dropout)

    def _stage(self, index: int, x: torch.Tensor) -> torch.Tensor:
        nonlocal_blocks: nn.ModuleDict = getattr(self, f"nonlocal{index}")
        for j, block in enumerate(getattr(self, f"layer{index}")):
            x = block(x)
            if str(j) in nonlocal_blocks:
                x = nonlocal_blocks[str(j)](x)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 3, 32, 224, 224) -> (B, 64, 8, 56, 56)
        x = self.pool2(self._stage(1, x))  # -> (B, 256, 4, 56, 56)
        for index in (2, 3, 4):
            x = self._stage(index, x)
        return x  # (B, 2048, 4, 7, 7)

    def load_pretrained_2d(self, path: str | Path) -> int:
        """Inflate a local torchvision ResNet-50 checkpoint into the backbone; returns tensors copied."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as e:
            raise WeightsError(f"{path}: cannot read a torch state dict ({e})") from e
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise WeightsError(f"{path}: expected a state dict, got {type(state).__name__}")
        return inflate_resnet_state_dict(self, state, method="mean", skip_prefixes=("head.", "nonlocal"))


def _build(
    *,
    num_classes: int,
    arch: str,
    nonlocal_blocks: Sequence[Sequence[int]] = ((), (), (), ()),
    pretrained_2d: str | Path | None = None,
    **kw: object,
) -> ResNet3dNonLocal:
    model = ResNet3dNonLocal(num_classes=num_classes, arch=arch, nonlocal_blocks=nonlocal_blocks, **kw)  # type: ignore[arg-type]
    if pretrained_2d is not None:
        model.load_pretrained_2d(pretrained_2d)
    return model


def _card(notes: str) -> ModelCard:
    return ModelCard(
        paper="Non-local Neural Networks",
        arxiv="1711.07971",
        section="§4, Table 1, Table 2(d)",
        num_frames=32,
        frame_interval=2,
        crop_size=224,
        short_side=256,
        normalization="imagenet",
        published_input="3x32x224x224",
        published_dataset="Kinetics-400",
        notes=notes,
    )


@register_model(
    _card(
        "C2D ResNet-50 baseline (Table 1), 71.8 top-1 val (Table 2). "
        "Measured: 24.33M params, 20.44 GMACs at 3x32x224x224."
    )
)
def c2d_r50(*, num_classes: int = 400, **kw: object) -> ResNet3dNonLocal:
    return _build(num_classes=num_classes, arch="c2d", **kw)  # type: ignore[arg-type]


@register_model(
    _card(
        "I3D_3x1x1 ResNet-50 (conv1 5x7x7, 3x1x1 in 9 of 16 blocks). "
        "Measured: 28.04M params, 33.13 GMACs at 3x32x224x224."
    )
)
def i3d_r50(*, num_classes: int = 400, **kw: object) -> ResNet3dNonLocal:
    return _build(num_classes=num_classes, arch="i3d", **kw)  # type: ignore[arg-type]


@register_model(
    _card(
        "C2D ResNet-50 + 5 embedded-Gaussian non-local blocks (res3: 2, res4: 3). "
        "Measured: 31.69M params, 28.57 GMACs at 3x32x224x224."
    )
)
def c2d_r50_nl(*, num_classes: int = 400, **kw: object) -> ResNet3dNonLocal:
    return _build(num_classes=num_classes, arch="c2d", nonlocal_blocks=NONLOCAL_5, **kw)  # type: ignore[arg-type]


@register_model(
    _card(
        "I3D_3x1x1 ResNet-50 + 5 non-local blocks (res3: 2, res4: 3). "
        "Measured: 35.40M params, 41.26 GMACs at 3x32x224x224."
    )
)
def i3d_r50_nl(*, num_classes: int = 400, **kw: object) -> ResNet3dNonLocal:
    return _build(num_classes=num_classes, arch="i3d", nonlocal_blocks=NONLOCAL_5, **kw)  # type: ignore[arg-type]
