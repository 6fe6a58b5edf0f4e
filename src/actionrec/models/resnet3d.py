"""R3D, MCx and R(2+1)D video ResNets.

Tran et al. 2018, "A Closer Look at Spatiotemporal Convolutions for Action Recognition", arXiv 1711.11248:
§3.2 (R3D, full 3D convolutions), §3.3 (MCx, 3D convolutions in the bottom layers and 2D above),
§3.5 ((2+1)D convolutions, the R(2+1)D network) and Table 1 (the 18- and 34-layer architectures).

``r3d_18``, ``mc3_18`` and ``r2plus1d_18`` use torchvision's module names and shapes, so
``model.load_state_dict(torchvision_model.state_dict())`` works unchanged and gives the same logits.
``r2plus1d_34`` follows the paper's width rule (every (2+1)D conv takes its middle width from its own
input and output widths, §3.5), which is also the layout of the released Caffe2 R(2+1)D-34 models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from actionrec.layers.resnet_blocks import (
    BasicBlock,
    BasicStem,
    ConvBuilder,
    Factorized2plus1d,
    Full3d,
    MidRule,
    R2Plus1dStem,
    Spatial2d,
    init_resnet_weights,
    make_stage,
)
from actionrec.models.base import VideoClassifier
from actionrec.models.registry import ModelCard, register_model

_PAPER = "A Closer Look at Spatiotemporal Convolutions for Action Recognition (Tran et al., CVPR 2018)"
_ARXIV = "1711.11248"


@dataclass(frozen=True)
class VideoResNetConfig:
    """A video ResNet of basic blocks, read as data.

    ``convs`` gives the 3x3 convolution of each of the four stages; ``stem`` is ``"3d"`` (one ``t x 7 x 7``
    conv) or ``"2plus1d"`` (``1 x 7 x 7`` into ``stem_mid`` channels, then ``t x 1 x 1``). Stages 2-4 halve
    the spatial size, and the temporal size by ``temporal_stride`` when their conv mixes frames.
    """

    convs: tuple[ConvBuilder, ...] = field(default_factory=lambda: (Factorized2plus1d(),) * 4)
    layers: tuple[int, ...] = (2, 2, 2, 2)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    stem: str = "2plus1d"
    stem_mid: int = 45
    stem_temporal_kernel: int = 3
    stem_pool: bool = False
    mid_rule: MidRule = "conv"
    temporal_stride: int = 2
    in_channels: int = 3


class VideoResNet(VideoClassifier):
    """Stem, four residual stages (``layer1`` .. ``layer4``), global average pool, dropout, ``fc``."""

    def __init__(self, cfg: VideoResNetConfig, *, num_classes: int = 400, dropout: float = 0.0) -> None:
        super().__init__()
        if not len(cfg.convs) == len(cfg.layers) == len(cfg.widths) == 4:
            raise ValueError("a video ResNet has four stages: convs, layers and widths need 4 entries each")
        self.cfg = cfg
        self.stem = self._make_stem(cfg)
        in_ch = cfg.widths[0]
        for i, (conv, n, width) in enumerate(zip(cfg.convs, cfg.layers, cfg.widths)):
            stride = (cfg.temporal_stride if conv.has_time else 1, 2, 2) if i > 0 else (1, 1, 1)
            stage = make_stage(BasicBlock, in_ch, width, n, conv=conv, stride=stride, mid_rule=cfg.mid_rule)
            self.add_module(f"layer{i + 1}", stage)
            in_ch = width * BasicBlock.expansion
        self.num_features = in_ch
        self.num_classes = num_classes
        self.dropout = nn.Dropout(dropout)
        self.fc: nn.Module = self._make_fc(num_classes)
        init_resnet_weights(self)

    @staticmethod
    def _make_stem(cfg: VideoResNetConfig) -> nn.Module:
        kt = cfg.stem_temporal_kernel
        if cfg.stem == "3d":
            return BasicStem(cfg.in_channels, cfg.widths[0], temporal_kernel=kt, pool=cfg.stem_pool)
        if cfg.stem == "2plus1d":
            return R2Plus1dStem(
                cfg.in_channels, cfg.widths[0], mid=cfg.stem_mid, temporal_kernel=kt, pool=cfg.stem_pool
            )
        raise ValueError(f"unknown stem {cfg.stem!r} (3d or 2plus1d)")

    def _make_fc(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) clip -> (B, F, T', H', W') features of the last stage."""
        x = self.stem(x)
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.flatten(2).mean(-1)  # (B, F, T, H, W) -> (B, F)
        if pre_logits:
            return x
        return self.fc(self.dropout(x))

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = self._make_fc(num_classes)
        if num_classes > 0:
            nn.init.normal_(self.fc.weight, 0.0, 0.01)
            nn.init.zeros_(self.fc.bias)


def _build(cfg: VideoResNetConfig, num_classes: int, dropout: float) -> VideoResNet:
    return VideoResNet(cfg, num_classes=num_classes, dropout=dropout)


_CLIP16 = {"num_frames": 16, "crop_size": 112, "short_side": 128, "normalization": "kinetics"}
_PUB16 = {"published_input": "3x16x112x112", "published_dataset": "kinetics400"}
_TABLE2 = "the paper's Table 2 (16-frame clips, trained from scratch on Kinetics, video top-1 over 10 clips)"
_TV = "torchvision.models.video"

_R3D_NOTES = f"Published: {_TABLE2}. Weight-compatible with {_TV}.r3d_18 (acc@1 63.2, 5 clips)."
_MC3_NOTES = (
    "MC3: 3D convs in conv1 and conv2_x, 2D (1x3x3) convs in conv3_x to conv5_x. "
    f"Published: {_TABLE2}. Weight-compatible with {_TV}.mc3_18 (acc@1 63.96, 5 clips)."
)
_R21D_18_NOTES = (
    f"Published: {_TV}.r2plus1d_18's documented numbers (31.5M params, 40.5 GMACs, acc@1 67.46 with "
    "5 clips), whose layout this model copies (mid_rule='block'). With mid_rule='conv' it is the paper's "
    f"R(2+1)D-18: 33.3M params, 41.5 GFLOPs, video top-1 68.5 ({_TABLE2})."
)
_R21D_34_NOTES = (
    "Published: 63.6M params, 152 GFLOPs (multiply-adds) per 32x112x112 clip and top-1 72.0 for RGB "
    "trained from scratch on Kinetics, as the paper reports them in its Kinetics comparison and SlowFast "
    "(arXiv 1812.03982, Table 2) quotes them. Layout of the released Caffe2 / IG-65M R(2+1)D-34 models."
)
_SMALL_NOTES = (
    "Not in the paper: widths 16/32/64/128, one block per stage, no stem pool and no temporal striding, "
    "for CPU-scale experiments on the synthetic benchmark (8 frames, 48x48). Its per-frame twin is "
    "single_frame_small."
)


def _card(section: str, **kwargs: Any) -> ModelCard:
    return ModelCard(paper=_PAPER, arxiv=_ARXIV, section=section, **kwargs)


@register_model(
    _card(
        "§3.2 (R3D), Table 1 (18 layers)",
        **_CLIP16,
        **_PUB16,
        published_params_m=33.4,
        published_gmacs=40.7,
        published_top1=64.7,
        notes=_R3D_NOTES,
    )
)
def r3d_18(*, num_classes: int = 400, dropout: float = 0.0, in_channels: int = 3) -> VideoResNet:
    """R3D-18: full 3x3x3 convolutions everywhere."""
    cfg = VideoResNetConfig(convs=(Full3d(),) * 4, stem="3d", in_channels=in_channels)
    return _build(cfg, num_classes, dropout)


@register_model(
    _card(
        "§3.3 (MCx), Table 1 (18 layers)",
        **_CLIP16,
        **_PUB16,
        published_params_m=11.7,
        published_gmacs=43.3,
        published_top1=65.2,
        notes=_MC3_NOTES,
    )
)
def mc3_18(*, num_classes: int = 400, dropout: float = 0.0, in_channels: int = 3) -> VideoResNet:
    """MC3-18: 3D convolutions in the stem and the first stage, 2D (1x3x3) convolutions above."""
    convs = (Full3d(), Spatial2d(), Spatial2d(), Spatial2d())
    cfg = VideoResNetConfig(convs=convs, stem="3d", in_channels=in_channels)
    return _build(cfg, num_classes, dropout)


@register_model(
    _card(
        "§3.5 (R(2+1)D), Table 1 (18 layers)",
        **_CLIP16,
        **_PUB16,
        published_params_m=31.5,
        published_gmacs=40.5,
        published_top1=67.463,
        notes=_R21D_18_NOTES,
    )
)
def r2plus1d_18(
    *, num_classes: int = 400, dropout: float = 0.0, in_channels: int = 3, mid_rule: MidRule = "block"
) -> VideoResNet:
    """R(2+1)D-18. ``mid_rule="block"`` (default) is torchvision's layout, ``"conv"`` the paper's."""
    cfg = VideoResNetConfig(mid_rule=mid_rule, in_channels=in_channels)
    return _build(cfg, num_classes, dropout)


@register_model(
    _card(
        "§3.5 (R(2+1)D), §4.3, Table 1 (34 layers)",
        num_frames=32,
        crop_size=112,
        short_side=128,
        normalization="kinetics",
        published_params_m=63.6,
        published_gmacs=152.0,
        published_input="3x32x112x112",
        published_top1=72.0,
        published_dataset="kinetics400",
        notes=_R21D_34_NOTES,
    )
)
def r2plus1d_34(
    *, num_classes: int = 400, dropout: float = 0.0, in_channels: int = 3, mid_rule: MidRule = "conv"
) -> VideoResNet:
    """R(2+1)D-34: stages of 3, 4, 6 and 3 basic blocks with (2+1)D convolutions."""
    cfg = VideoResNetConfig(layers=(3, 4, 6, 3), mid_rule=mid_rule, in_channels=in_channels)
    return _build(cfg, num_classes, dropout)


SMALL_WIDTHS = (16, 32, 64, 128)
SMALL_LAYERS = (1, 1, 1, 1)


def small_config(
    *,
    temporal_kernel: int = 3,
    in_channels: int = 3,
    widths: tuple[int, ...] = SMALL_WIDTHS,
    layers: tuple[int, ...] = SMALL_LAYERS,
    stem_pool: bool = False,
    temporal_stride: int = 1,
) -> VideoResNetConfig:
    """The CPU-scale R(2+1)D (one block per stage, narrow); ``temporal_kernel=1`` gives its per-frame twin.

    The stem's middle width keeps the released models' ratio 45/64. The stem has no max-pool: the 4x
    reduction of 224-px ResNets leaves a small object a few pixels wide in ``layer1``, and on the synthetic
    benchmark the pooled stem could not tell rotate_cw from rotate_ccw (47.5 % on the pair, 84 % top-1,
    against 90.7 % without it). Time is not strided (``temporal_stride=1``): an 8-frame clip keeps its 8
    steps in every stage; striding by 2 in stages 2-4 ran 1.4x faster and reached 83 % (one run each,
    10 epochs, 8 x 48^2 clips).
    """
    conv = Factorized2plus1d(temporal_kernel=temporal_kernel)
    return VideoResNetConfig(
        convs=(conv,) * 4,
        layers=layers,
        widths=widths,
        stem_mid=max(1, round(45 * widths[0] / 64)),
        stem_temporal_kernel=temporal_kernel,
        temporal_stride=temporal_stride if temporal_kernel > 1 else 1,
        in_channels=in_channels,
        stem_pool=stem_pool,
    )


@register_model(
    _card(
        "§3.5 (R(2+1)D) at reduced width and depth",
        num_frames=8,
        crop_size=48,
        short_side=48,
        normalization="kinetics",
        notes=_SMALL_NOTES,
    )
)
def r2plus1d_small(
    *,
    num_classes: int = 400,
    dropout: float = 0.0,
    in_channels: int = 3,
    widths: tuple[int, ...] = SMALL_WIDTHS,
    layers: tuple[int, ...] = SMALL_LAYERS,
    stem_pool: bool = False,
    temporal_stride: int = 1,
) -> VideoResNet:
    """A narrow, shallow R(2+1)D (0.95M parameters) for quick CPU training on 8 x 48 x 48 clips."""
    cfg = small_config(
        in_channels=in_channels,
        widths=tuple(widths),
        layers=tuple(layers),
        stem_pool=stem_pool,
        temporal_stride=temporal_stride,
    )
    return _build(cfg, num_classes, dropout)
