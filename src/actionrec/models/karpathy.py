"""Time-information fusion and the multiresolution CNN of Karpathy et al. 2014.

Karpathy, Toderici, Shetty, Leung, Sukthankar and Fei-Fei, "Large-scale Video Classification with
Convolutional Neural Networks", CVPR 2014 (no arXiv version).

* §3.1 "Time Information Fusion in CNNs" (Figure 1). One 2D frame network; the variants differ only in
  where and how it connects frames:

  - single frame: the network on every frame, frame scores averaged;
  - early fusion: the first convolution spans all T = 10 frames (an 11x11x3xT kernel, valid in time);
  - late fusion: two towers with shared weights on two frames 15 apart (the first and the last frame of
    the clip here), their last-conv features concatenated into the first FC layer;
  - slow fusion: on 10 frames, conv1 has time extent 4 and stride 2 (10 -> 4 steps), conv2 and conv3
    extent 2 and stride 2 (4 -> 2 -> 1), so conv3 and everything above see all 10 frames.
* §3.2 "Multiresolution CNNs" (Figure 2): a context stream on the whole frame at half resolution and a
  fovea stream on the centre region at full resolution (178x178 -> 89x89 each), the last pool removed
  (each stream ends at 7x7x256), concatenated into the first FC layer. Like the single-frame model it
  sees one frame at a time: on a clip it runs on every frame and averages the frame scores. The two
  streams have their own weights.
* §4.1: video-level predictions average the predictions of clips (the evaluator's job).

Every model runs a per-frame trunk whose convolutions have time kernel 1, then :func:`extend_in_time`
gives the convolutions a fusion plan names (kernel and stride in time, valid in time) a time extent,
initialised from the 2D kernel repeated over time and divided by the extent
(:func:`actionrec.layers.inflate.inflate_weight`). The head scores every time step the trunk leaves and
averages the scores: T for single frame and multiresolution, one step for early and slow fusion on their
10 frames (a longer clip gives sliding windows, averaged).

Backbones (one trunk design per width, shared by all its variants):

* ``*_alexnet``: the paper's network (:mod:`actionrec.layers.alexnet`), 170x170 crops of 200x200 frames.
  The paper publishes no parameter counts; the cards' notes give the counts and MACs we measure. The
  paper only subtracts a mean image; the cards use ImageNet mean/std normalisation.
* ``*_r18``: torchvision's ResNet-18 (ImageNet weights from a local state-dict file, as in
  :mod:`actionrec.models.single_frame`, whose ``single_frame_r18`` is the single-frame variant),
  inflated with :func:`actionrec.layers.inflate.inflate`. Mapping of the paper's layers: conv1 -> the
  stem conv, conv2 -> the first conv of ``layer2``, conv3 -> the first conv of ``layer3`` (the first
  stride-2 convs after the stem, as the paper's conv2 and conv3 each follow a 2x pool); the projection
  shortcuts of those blocks stride time with them (layer1 has none to stride). Late fusion and
  multiresolution merge at the classifier, the ResNet's only FC layer, after global average pooling
  (ResNet has no last pool to remove).
* ``*_small``: ``single_frame_small``'s trunk (the small video ResNet with time kernel 1), with the same
  mapping; the fused stem conv is its 1x7x7 pixel conv, the fused conv2 / conv3 the temporal (1x1x1)
  half of the (2+1)D convs. Early and slow fusion keep the paper's 10 frames (2 apart on the synthetic
  benchmark, whose videos have 24-32 frames); late fusion takes 2 frames 15 apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from actionrec.layers.alexnet import AlexNetConfig, AlexNetTrunk, FrameFCHead
from actionrec.layers.inflate import extend_in_time, inflate, inflate_weight
from actionrec.layers.resnet_blocks import init_resnet_weights
from actionrec.models.base import VideoClassifier
from actionrec.models.registry import ModelCard, register_model
from actionrec.models.resnet3d import VideoResNet, small_config
from actionrec.models.single_frame import FrameScoreHead, imagenet_resnet

_PAPER = "Large-scale Video Classification with Convolutional Neural Networks (Karpathy et al., CVPR 2014)"
Builder = Callable[..., nn.Module]
Fusion = Literal["single", "early", "late", "slow", "multires"]
TimePlan = Mapping[str, tuple[int, int]]  # conv name -> (time extent, time stride), valid in time
FUSION_FRAMES = 10  # T of early and slow fusion (§3.1)
LATE_FUSION_GAP = 15  # frames between the two towers of late fusion (§3.1)


# ---------------------------------------------------------------- where time is fused


@dataclass(frozen=True)
class FusionPoints:
    """The layers of one trunk that play the paper's conv1, conv2 and conv3, and the residual shortcuts
    that must stride time alongside conv2 and conv3 (ResNets only)."""

    convs: tuple[str, str, str]
    shortcuts: tuple[str | None, str | None, str | None] = (None, None, None)

    def early(self, frames: int) -> dict[str, tuple[int, int]]:
        """conv1 spans all ``frames`` (§3.1, early fusion)."""
        return {self.convs[0]: (frames, 1)}

    def slow(
        self, extents: tuple[int, ...] = (4, 2, 2), strides: tuple[int, ...] = (2, 2, 2)
    ) -> dict[str, tuple[int, int]]:
        """conv1 extent 4 stride 2, conv2 and conv3 extent 2 stride 2 (§3.1, slow fusion)."""
        plan = {}
        for conv, shortcut, kt, st in zip(self.convs, self.shortcuts, extents, strides):
            plan[conv] = (kt, st)
            if shortcut is not None:
                plan[shortcut] = (1, st)
        return plan


ALEXNET_POINTS = FusionPoints(("conv1", "conv2", "conv3"))
RESNET_POINTS = FusionPoints(
    ("conv1", "layer2.0.conv1", "layer3.0.conv1"), (None, "layer2.0.downsample.0", "layer3.0.downsample.0")
)
SMALL_POINTS = FusionPoints(
    ("stem.0", "layer2.0.conv1.0.3", "layer3.0.conv1.0.3"),
    (None, "layer2.0.downsample.0", "layer3.0.downsample.0"),
)


def load_frame_weights(model: nn.Module, frame_state: Mapping[str, torch.Tensor]) -> None:
    """Load a per-frame model's state (e.g. ``single_frame_alexnet``) into a fused one of the same width.

    Kernels the fused model extends in time are repeated over time and divided by their extent (§3.1's
    fusion models initialised from the frame model, and the "identical frames" check of the tests).
    """
    target = model.state_dict()
    state = {}
    for key, value in frame_state.items():
        want = target.get(key)
        if want is not None and value.ndim == 5 and value.shape[2] == 1 and want.shape[2] != 1:
            value = inflate_weight(value[:, :, 0], want.shape[2])  # (O, I, 1, h, w) -> (O, I, kT, h, w)
        state[key] = value
    model.load_state_dict(state)


# ---------------------------------------------------------------- the models


class ClipFusionNet(VideoClassifier):
    """Single-frame, early and slow fusion: one trunk whose convs span time as its plan says (§3.1)."""

    def __init__(self, trunk: nn.Module, head: nn.Module, *, fusion: Fusion, num_classes: int) -> None:
        super().__init__()
        self.fusion = fusion
        self.trunk = trunk
        self.head = head
        self.num_features = trunk.num_features
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, F, T', h, w): T' = T (single frame), T - 9 (early), 1 at T = 10 (slow)."""
        return self.trunk.forward_features(x)


class LateFusionNet(VideoClassifier):
    """Two towers with shared weights on the clip's first and last frames, merged at the first FC (§3.1)."""

    def __init__(self, trunk: nn.Module, head: nn.Module, *, num_classes: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = head
        self.num_features = 2 * trunk.num_features
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, 2F, 1, h, w): frames 0 and T - 1 only."""
        towers = self.trunk.forward_features(x[:, :, [0, -1]])  # (B, C, 2, H, W) -> (B, F, 2, h, w)
        first, last = towers.unbind(2)  # (B, F, 2, h, w) -> 2 x (B, F, h, w)
        return torch.cat([first, last], 1).unsqueeze(2)  # -> (B, 2F, 1, h, w): concatenated for FC1


class MultiresNet(VideoClassifier):
    """Context stream (frame at half resolution) + fovea stream (centre at full resolution), §3.2."""

    def __init__(self, context: nn.Module, fovea: nn.Module, head: nn.Module, *, num_classes: int) -> None:
        super().__init__()
        self.context = context
        self.fovea = fovea
        self.head = head
        self.num_features = context.num_features + fovea.num_features
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, 2F, T, h, w): every frame on its own, both streams concatenated."""
        h, w = x.shape[-2:]
        top, left = (h - h // 2) // 2, (w - w // 2) // 2
        whole = F.avg_pool3d(x, (1, 2, 2))  # (B, C, T, H, W) -> (B, C, T, H/2, W/2): 2x2 box downsample
        centre = x[..., top : top + h // 2, left : left + w // 2]  # -> (B, C, T, H/2, W/2): centre crop
        context = self.context.forward_features(whole)  # (B, F, T, h, w)
        fovea = self.fovea.forward_features(centre)  # (B, F, T, h, w)
        return torch.cat([context, fovea], 1)  # -> (B, 2F, T, h, w), concatenated for FC1


def _assemble(
    fusion: Fusion,
    trunk: Callable[[], nn.Module],
    head: Callable[[int], nn.Module],
    points: FusionPoints,
    *,
    num_classes: int,
    frames: int = FUSION_FRAMES,
) -> VideoClassifier:
    """One model of a width: its ``trunk`` factory, a ``head(in_features)`` factory and fusion points."""
    if fusion == "late":
        t = trunk()
        return LateFusionNet(t, head(2 * t.num_features), num_classes=num_classes)
    if fusion == "multires":
        context, fovea = trunk(), trunk()
        return MultiresNet(context, fovea, head(2 * context.num_features), num_classes=num_classes)
    plans: dict[str, TimePlan] = {"single": {}, "early": points.early(frames), "slow": points.slow()}
    t = extend_in_time(trunk(), plans[fusion])
    return ClipFusionNet(t, head(t.num_features), fusion=fusion, num_classes=num_classes)


# ---------------------------------------------------------------- trunks of the three widths


class ResNetTrunk(nn.Module):
    """A torchvision ResNet up to ``layer4`` (torchvision's names), inflated with time kernel 1 everywhere."""

    def __init__(self, arch: str = "resnet18", *, backbone_weights: str | Path | None = None) -> None:
        super().__init__()
        net = imagenet_resnet(arch, backbone_weights=backbone_weights)
        self.num_features = net.num_features
        net = inflate(net, time_kernel=1)
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            self.add_module(name, getattr(net, name))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, F, T', H/32, W/32)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    forward = forward_features


def _alexnet(fusion: Fusion, *, num_classes: int, dropout: float) -> VideoClassifier:
    cfg = AlexNetConfig()
    if fusion == "multires":
        cfg = replace(cfg, pool_after=(1, 2), grid=7)  # §3.2: the last pool removed, 7x7x256 per stream

    def head(features: int) -> nn.Module:
        return FrameFCHead(features, num_classes, grid=cfg.grid, fc_widths=cfg.fc_widths, dropout=dropout)

    return _assemble(fusion, lambda: AlexNetTrunk(cfg), head, ALEXNET_POINTS, num_classes=num_classes)


def _frame_head(num_classes: int, dropout: float) -> Callable[[int], nn.Module]:
    """Global average pool per frame, classify every time step, average (``single_frame``'s head)."""

    def head(features: int) -> nn.Module:
        h = FrameScoreHead(features, num_classes, dropout=dropout)
        init_resnet_weights(h)
        return h

    return head


def _r18(
    fusion: Fusion, *, num_classes: int, dropout: float, backbone_weights: str | Path | None
) -> VideoClassifier:
    def trunk() -> nn.Module:
        return ResNetTrunk("resnet18", backbone_weights=backbone_weights)

    return _assemble(fusion, trunk, _frame_head(num_classes, dropout), RESNET_POINTS, num_classes=num_classes)


def _small(fusion: Fusion, *, num_classes: int, dropout: float, stem_pool: bool) -> VideoClassifier:
    def trunk() -> nn.Module:
        return VideoResNet(small_config(temporal_kernel=1, stem_pool=stem_pool), num_classes=0)

    return _assemble(fusion, trunk, _frame_head(num_classes, dropout), SMALL_POINTS, num_classes=num_classes)


# ---------------------------------------------------------------- cards and builders

_HIT1 = (
    "Published: video hit@1 on Sports-1M (Table 1, 487 classes, trained from scratch); the abstract confirms "
    "single frame 59.3 and slow fusion 60.9, the other rows are as our reference notes recall them. "
)
_ALEXNET_NOTE = (
    "The paper's AlexNet-like network (conv1 padded by 2, others 'same'); the paper gives no parameter "
    "counts. Measured here (count_params / count_macs, 487 classes): {params:.2f}M parameters, "
    "{gmacs:.2f} GMACs per {input} clip."
)
# Measured, not published: the numbers the cards quote (tests/models/test_karpathy.py re-measures them).
ALEXNET_MEASURED: dict[str, tuple[float, float, str]] = {
    "single_frame_alexnet": (60.28, 1.13, "3x1x170x170"),
    "early_fusion_alexnet": (60.59, 2.08, "3x10x170x170"),
    "late_fusion_alexnet": (98.03, 2.25, "3x2x170x170"),
    "slow_fusion_alexnet": (61.88, 4.21, "3x10x170x170"),
    "multires_alexnet": (129.04, 0.72, "3x1x178x178"),
}


_R18_NOTE = (
    "Frame network: torchvision resnet18 (He et al. 2015, arXiv 1512.03385) instead of the paper's AlexNet, "
    "inflated where time is fused (see the module docstring); ImageNet weights via backbone_weights=PATH "
    "(torchvision state dict). single_frame_r18 is the single-frame variant. "
)

_SMALL_NOTE = (
    "CPU scale: single_frame_small's trunk (small video ResNet, time kernel 1) on 48x48 synthetic clips, "
    "time fused as the module docstring says. "
)

_INPUTS: dict[str, dict[str, object]] = {
    "alexnet": {"crop_size": 170, "short_side": 200, "normalization": "imagenet"},
    "r18": {"crop_size": 224, "short_side": 256, "normalization": "imagenet"},
    "small": {"crop_size": 48, "short_side": 48, "normalization": "kinetics"},
}


def _card(name: str, section: str, note: str, *, hit1: float | None = None, **kwargs: object) -> ModelCard:
    """The card of model ``name``; its width (the name's last word) gives the input and common notes."""
    width = name.rsplit("_", 1)[1]
    fields = {**_INPUTS[width], **kwargs}
    if width == "alexnet":
        params, gmacs, spec = ALEXNET_MEASURED[name]
        note = f"{note} {_HIT1}" + _ALEXNET_NOTE.format(params=params, gmacs=gmacs, input=spec)
        fields |= {"published_top1": hit1, "published_dataset": "sports1m"}
    else:
        note = {"r18": _R18_NOTE, "small": _SMALL_NOTE}[width] + note
    return ModelCard(paper=_PAPER, arxiv="", section=section, notes=note, **fields)  # type: ignore[arg-type]


def _register(section: str, note: str, **kwargs: Any) -> Callable[[Builder], Builder]:
    """``@register_model`` with the card :func:`_card` makes for the builder's name."""

    def wrap(fn: Builder) -> Builder:
        return register_model(_card(fn.__name__, section, note, **kwargs))(fn)

    return wrap


@_register(
    "§3.1 (single-frame model)",
    "One frame a clip; a longer clip is scored frame by frame and averaged.",
    hit1=59.3,
    num_frames=1,
)
def single_frame_alexnet(*, num_classes: int = 487, dropout: float = 0.0) -> VideoClassifier:
    """The paper's AlexNet-like network on every frame, frame scores averaged."""
    return _alexnet("single", num_classes=num_classes, dropout=dropout)


@_register(
    "§3.1 (early fusion), Figure 1",
    "conv1 is 11x11x3x10 (valid in time): 10 frames in, one time step out.",
    hit1=57.7,
    num_frames=FUSION_FRAMES,
)
def early_fusion_alexnet(*, num_classes: int = 487, dropout: float = 0.0) -> VideoClassifier:
    """The first convolution spans all 10 frames of the clip."""
    return _alexnet("early", num_classes=num_classes, dropout=dropout)


@_register(
    "§3.1 (late fusion), Figure 1",
    "Towers on the clip's first and last frames (2 frames 15 apart), concatenated 6x6x256 maps into FC1.",
    hit1=59.3,
    num_frames=2,
    frame_interval=LATE_FUSION_GAP,
)
def late_fusion_alexnet(*, num_classes: int = 487, dropout: float = 0.0) -> VideoClassifier:
    """Two shared-weight towers on the first and last frames, merged at the first FC layer."""
    return _alexnet("late", num_classes=num_classes, dropout=dropout)


@_register(
    "§3.1 (slow fusion), Figure 1",
    "conv1 4x11x11 stride 2, conv2 and conv3 time extent 2 stride 2: 10 -> 4 -> 2 -> 1 time steps.",
    hit1=60.9,
    num_frames=FUSION_FRAMES,
)
def slow_fusion_alexnet(*, num_classes: int = 487, dropout: float = 0.0) -> VideoClassifier:
    """conv1 .. conv3 fuse time progressively; conv3 and above see all 10 frames."""
    return _alexnet("slow", num_classes=num_classes, dropout=dropout)


@_register(
    "§3.2 (multiresolution CNN), Figure 2",
    "178x178 input; context = whole frame at 89x89, fovea = centre 89x89; no pool5, 2 x 7x7x256 into "
    "FC1; separate stream weights. Table 1's 'Single-Frame + Multires'.",
    hit1=60.0,
    num_frames=1,
    crop_size=178,
)
def multires_alexnet(*, num_classes: int = 487, dropout: float = 0.0) -> VideoClassifier:
    """Fovea and context streams of one frame, concatenated into the first FC layer."""
    return _alexnet("multires", num_classes=num_classes, dropout=dropout)


@_register("§3.1 (early fusion)", "conv1 7x7x3x10, valid in time.", num_frames=FUSION_FRAMES)
def early_fusion_r18(
    *, num_classes: int = 400, dropout: float = 0.0, backbone_weights: str | Path | None = None
) -> VideoClassifier:
    """ResNet-18 whose stem conv spans all 10 frames."""
    return _r18("early", num_classes=num_classes, dropout=dropout, backbone_weights=backbone_weights)


@_register(
    "§3.1 (late fusion)",
    "Shared towers on the first and last frames, pooled features concatenated into the classifier.",
    num_frames=2,
    frame_interval=LATE_FUSION_GAP,
)
def late_fusion_r18(
    *, num_classes: int = 400, dropout: float = 0.0, backbone_weights: str | Path | None = None
) -> VideoClassifier:
    """Two shared ResNet-18 towers on frames 15 apart, merged at the classifier."""
    return _r18("late", num_classes=num_classes, dropout=dropout, backbone_weights=backbone_weights)


@_register(
    "§3.1 (slow fusion)",
    "conv1 time extent 4 stride 2, layer2.0.conv1 and layer3.0.conv1 extent 2 stride 2 (their "
    "shortcuts stride 2): 10 -> 4 -> 2 -> 1 time steps.",
    num_frames=FUSION_FRAMES,
)
def slow_fusion_r18(
    *, num_classes: int = 400, dropout: float = 0.0, backbone_weights: str | Path | None = None
) -> VideoClassifier:
    """ResNet-18 fusing time in its stem, layer2 and layer3 as slow fusion's conv1, conv2 and conv3."""
    return _r18("slow", num_classes=num_classes, dropout=dropout, backbone_weights=backbone_weights)


@_register(
    "§3.2 (multiresolution CNN)",
    "Context = frame at half resolution, fovea = centre half at full resolution (112x112 each at 224), "
    "two ResNet-18 streams with their own weights, pooled features concatenated; frame scores averaged.",
    num_frames=8,
    sampling="segment",
)
def multires_r18(
    *, num_classes: int = 400, dropout: float = 0.0, backbone_weights: str | Path | None = None
) -> VideoClassifier:
    """Fovea and context ResNet-18 streams on every frame."""
    return _r18("multires", num_classes=num_classes, dropout=dropout, backbone_weights=backbone_weights)


@_register(
    "§3.1 (early fusion) at CPU scale",
    "The stem's 1x7x7 pixel conv spans all 10 frames (10 frames 2 apart: the paper's T).",
    num_frames=FUSION_FRAMES,
    frame_interval=2,
)
def early_fusion_small(
    *, num_classes: int = 400, dropout: float = 0.0, stem_pool: bool = False
) -> VideoClassifier:
    """single_frame_small's network whose first conv spans the 10-frame clip."""
    return _small("early", num_classes=num_classes, dropout=dropout, stem_pool=stem_pool)


@_register(
    "§3.1 (late fusion) at CPU scale",
    "Shared towers on the first and last frames (2 frames 15 apart), pooled features concatenated.",
    num_frames=2,
    frame_interval=LATE_FUSION_GAP,
)
def late_fusion_small(
    *, num_classes: int = 400, dropout: float = 0.0, stem_pool: bool = False
) -> VideoClassifier:
    """Two shared small towers on the first and last frames, merged at the classifier."""
    return _small("late", num_classes=num_classes, dropout=dropout, stem_pool=stem_pool)


@_register(
    "§3.1 (slow fusion) at CPU scale",
    "Stem conv time extent 4 stride 2, the temporal convs of layer2.0 and layer3.0 extent 2 stride 2 "
    "(10 frames 2 apart: 10 -> 4 -> 2 -> 1 time steps).",
    num_frames=FUSION_FRAMES,
    frame_interval=2,
)
def slow_fusion_small(
    *, num_classes: int = 400, dropout: float = 0.0, stem_pool: bool = False
) -> VideoClassifier:
    """single_frame_small's network fusing time progressively in its stem, layer2 and layer3."""
    return _small("slow", num_classes=num_classes, dropout=dropout, stem_pool=stem_pool)


@_register(
    "§3.2 (multiresolution CNN) at CPU scale",
    "Context = frame at 24x24, fovea = centre 24x24 of the 48x48 frame, separate streams; frame "
    "scores averaged like single_frame_small.",
    num_frames=8,
    frame_interval=3,
)
def multires_small(
    *, num_classes: int = 400, dropout: float = 0.0, stem_pool: bool = False
) -> VideoClassifier:
    """Fovea and context streams of single_frame_small's network on every frame."""
    return _small("multires", num_classes=num_classes, dropout=dropout, stem_pool=stem_pool)
