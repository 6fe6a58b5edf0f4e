"""Temporal Segment Networks (TSN).

Wang, Xiong, Wang, Qiao, Lin, Tang and Van Gool, "Temporal Segment Networks: Towards Good Practices for
Deep Action Recognition", ECCV 2016, arXiv 1608.00859.

* §3.1: the video is split into K segments, one short snippet is sampled from each
  (:func:`actionrec.data.sampling.segment_indices`), one ConvNet with shared weights scores every
  snippet and a segmental consensus (:class:`actionrec.layers.consensus.SegmentConsensus`, average
  by default) of the *pre-softmax* snippet scores is the video's prediction.
* §3.2 "Network Inputs": ``rgb`` (one frame a snippet), ``flow`` (L = 5 consecutive flow fields
  stacked as 2L channels ``x1, y1, x2, y2, ...``) and ``rgbdiff``: L + 1 consecutive RGB frames a
  snippet, their L differences ``frame[i+1] - frame[i]`` stacked as 3L channels
  ``(dR1, dG1, dB1, dR2, ...)``, computed here inside the model from the ``rgb`` stream, so the data
  pipeline samples ``snippet_len = L + 1`` frames a segment (as tsn-pytorch's loader does).
* §3.2 "Network Training": cross-modality pre-training (the ImageNet ``conv1`` averaged over its three
  RGB channels and replicated to the new channel count; :func:`actionrec.layers.inflate.cross_modality_init`),
  partial BN (only the first BatchNorm keeps estimating statistics and learning its affine
  parameters; every later one is frozen in eval mode) and dropout after global pooling (0.8 for RGB,
  0.7 for flow; ``rgbdiff`` counts as a temporal stream here and gets 0.7, our choice). The
  classifier is initialised N(0, 0.001) as in tsn-pytorch. With cross-modality pre-training the flow
  network's ``conv1`` learns 5x faster (weights; 10x for a bias), as the released code does (not a
  number of the paper; RGB difference keeps 1x there and here), through
  :meth:`TSN.lr_multipliers` (read by :func:`actionrec.engine.optim.param_groups`).

Backbones: ``r50`` (torchvision ResNet-50, MMAction2's TSN), ``bninception`` (the paper's BN-Inception,
approximated by torchvision's GoogLeNet, which has BN after every conv and no aux heads here; it has
6.6M parameters where BN-Inception has about 10M) and ``small`` (single_frame_small's trunk: the small
video ResNet with time kernel 1, for the 48-px synthetic benchmark). ImageNet weights come from a local
torchvision state-dict file (``backbone_weights=PATH``; nothing is downloaded).

Input: ``rgb`` / ``rgbdiff`` take the rgb stream (B, 3, K * F, H, W), ``flow`` the flow stream
(B, 2, K * L, H, W), F = 1 (rgb) or L + 1 (rgbdiff): segment-major, the F frames of a snippet
consecutive. K is read from the clip (T // F), so a model trained on 3 segments tests on 25 (§4.1);
only weighted consensus fixes K.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torchvision
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from actionrec.layers.consensus import ConsensusKind, SegmentConsensus
from actionrec.layers.inflate import set_in_channels
from actionrec.models.base import VideoClassifier
from actionrec.models.registry import ModelCard, register_model
from actionrec.models.resnet3d import VideoResNet, small_config
from actionrec.models.single_frame import load_backbone_weights
from actionrec.weights.mmaction_tsn import convert_mmaction_tsn, is_mmaction_tsn

_PAPER = (
    "Temporal Segment Networks: Towards Good Practices for Deep Action Recognition (Wang et al., ECCV 2016)"
)
_ARXIV = "1608.00859"
Modality = Literal["rgb", "flow", "rgbdiff"]
MODALITIES: tuple[Modality, ...] = ("rgb", "flow", "rgbdiff")
NUM_SEGMENTS = 3  # K (§4.1)
SNIPPET_LEN = 5  # L: stacked flow fields / RGB differences per snippet (§3.2)
DROPOUT: dict[str, float] = {"rgb": 0.8, "flow": 0.7, "rgbdiff": 0.7}  # §3.2 "Network Training"
CONV1_LR = (5.0, 10.0)  # cross-modality conv1: lr factor of its weight and bias (released solvers)
_CLASSIFIER_KEYS = ("fc.", "aux1.", "aux2.")  # ImageNet heads dropped from a backbone file


# ---------------------------------------------------------------- backbones


@dataclass(frozen=True)
class Backbone:
    """One 2D trunk, read as data: its builder, the modules run in order, the first conv, the width."""

    build: Callable[[], nn.Module]
    stages: tuple[str, ...]
    first_conv: str
    num_features: int
    video: bool = False  # a (time kernel 1) 3D network: frames get a time axis of length 1


def _googlenet() -> nn.Module:
    return torchvision.models.GoogLeNet(aux_logits=False, transform_input=False, init_weights=True)


def _small() -> nn.Module:
    return VideoResNet(small_config(temporal_kernel=1), num_classes=0)


_RESNET_STAGES = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
_GOOGLENET_STAGES = (
    "conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
    "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
    "inception5a", "inception5b",
)  # fmt: skip
BACKBONES: dict[str, Backbone] = {
    "r50": Backbone(torchvision.models.resnet50, _RESNET_STAGES, "conv1", 2048),
    "bninception": Backbone(_googlenet, _GOOGLENET_STAGES, "conv1.conv", 1024),
    "small": Backbone(_small, ("stem", "layer1", "layer2", "layer3", "layer4"), "stem.0", 128, video=True),
}


class FrameTrunk(nn.Module):
    """A 2D CNN up to its last stage, its modules under their own names: (N, C, H, W) -> (N, F, h, w)."""

    def __init__(self, spec: Backbone) -> None:
        super().__init__()
        net = spec.build()
        self.stages = spec.stages
        self.video = spec.video
        self.num_features = spec.num_features
        for name in spec.stages:
            self.add_module(name, getattr(net, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.video:
            x = x.unsqueeze(2)  # (N, C, H, W) -> (N, C, 1, H, W)
        for name in self.stages:
            x = getattr(self, name)(x)
        return x.squeeze(2) if self.video else x


# ---------------------------------------------------------------- the model


class TSNHead(nn.Module):
    """(B, F, K, h, w) snippet features -> (B, classes): spatial average, dropout, FC per snippet,
    consensus of the snippet scores (§3.1). ``pre_logits`` gives the segment-averaged feature (B, F)."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        dropout: float,
        consensus: SegmentConsensus,
        init_std: float,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.init_std = init_std
        self.dropout = nn.Dropout(dropout)
        self.consensus = consensus
        self.fc: nn.Module = self._make_fc(num_classes)

    def _make_fc(self, num_classes: int) -> nn.Module:
        if num_classes <= 0:
            return nn.Identity()
        fc = nn.Linear(self.in_features, num_classes)
        nn.init.normal_(fc.weight, 0.0, self.init_std)
        nn.init.zeros_(fc.bias)
        return fc

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.flatten(3).mean(-1).transpose(1, 2)  # (B, F, K, h, w) -> (B, F, K) -> (B, K, F)
        if pre_logits:
            return x.mean(1)  # (B, K, F) -> (B, F)
        return self.consensus(self.fc(self.dropout(x)))  # (B, K, F) -> (B, K, classes) -> (B, classes)

    def reset(self, num_classes: int) -> None:
        self.fc = self._make_fc(num_classes)


class TSN(VideoClassifier):
    """One 2D ConvNet on every snippet, a consensus of the snippet scores (see the module docstring).

    ``partial_bn``: only the first BatchNorm of the backbone trains; the others stay in eval mode
    whatever ``train()`` says, with ``requires_grad`` off on their affine parameters (§3.2). Meant for
    a pretrained backbone (from scratch the frozen layers would keep their initial statistics), so the
    default (None) is on for ``r50`` / ``bninception`` and off for ``small``.
    """

    def __init__(
        self,
        backbone: str,
        *,
        modality: Modality = "rgb",
        num_classes: int = 400,
        num_segments: int = NUM_SEGMENTS,
        snippet_len: int = SNIPPET_LEN,
        consensus: ConsensusKind = "avg",
        topk: int = 1,
        dropout: float | None = None,
        partial_bn: bool | None = None,
        backbone_weights: str | Path | None = None,
        init_std: float = 0.001,
    ) -> None:
        super().__init__()
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        spec = BACKBONES[backbone]
        self.modality = modality
        self.snippet_len = 1 if modality == "rgb" else snippet_len
        self.in_channels = {"rgb": 3, "flow": 2, "rgbdiff": 3}[modality]
        self.num_segments = num_segments
        self.backbone = FrameTrunk(spec)
        if backbone_weights is not None:
            load_backbone_weights(self.backbone, backbone_weights, drop=_CLASSIFIER_KEYS)
        channels = {"rgb": 3, "flow": 2 * self.snippet_len, "rgbdiff": 3 * self.snippet_len}[modality]
        first = self.backbone.get_submodule(spec.first_conv)
        set_in_channels(first, channels, from_rgb=backbone_weights is not None)  # type: ignore[arg-type]
        self.first_conv = spec.first_conv
        self.cross_modality = backbone_weights is not None and modality != "rgb"
        self.fast_conv1 = self.cross_modality and modality == "flow"  # tsn-pytorch: flow only
        self.partial_bn = backbone != "small" if partial_bn is None else partial_bn
        for bn in self._frozen_bns():
            bn.requires_grad_(False)
        self.num_features = spec.num_features
        self.num_classes = num_classes
        p = DROPOUT[modality] if dropout is None else dropout
        agg = SegmentConsensus(consensus, num_segments=num_segments, k=topk)
        self.head = TSNHead(self.num_features, num_classes, dropout=p, consensus=agg, init_std=init_std)

    # ------------------------------------------------------------ practices of §3.2
    def _frozen_bns(self) -> list[_BatchNorm]:
        """Every BatchNorm of the backbone after the first, when partial BN is on."""
        bns = [m for m in self.backbone.modules() if isinstance(m, _BatchNorm)]
        return bns[1:] if self.partial_bn else []

    def train(self, mode: bool = True) -> TSN:
        super().train(mode)
        for bn in self._frozen_bns():
            bn.eval()
        return self

    def lr_multipliers(self) -> dict[str, float]:
        """5x on the cross-modality conv1 weight, 10x on its bias, for flow (the released training code
        does this for flow only; empty for RGB, RGB difference or from scratch)."""
        if not self.fast_conv1:
            return {}
        conv = self.backbone.get_submodule(self.first_conv)
        out = {f"backbone.{self.first_conv}.weight": CONV1_LR[0]}
        if getattr(conv, "bias", None) is not None:
            out[f"backbone.{self.first_conv}.bias"] = CONV1_LR[1]
        return out

    def convert_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weights-loading hook: MMAction2 TSN checkpoints are renamed, ours pass unchanged."""
        return convert_mmaction_tsn(state_dict) if is_mmaction_tsn(state_dict) else state_dict

    # ------------------------------------------------------------ forward
    def snippets(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, K * F, H, W) stream -> (B * K, C', H, W) network inputs, one per snippet (§3.2)."""
        b, c, t, h, w = x.shape
        per = self.snippet_len + (self.modality == "rgbdiff")  # frames a snippet takes from the stream
        if c != self.in_channels or t % per:
            raise ValueError(
                f"TSN {self.modality}: expected (B, {self.in_channels}, K*{per}, H, W), got {tuple(x.shape)}"
            )
        x = x.reshape(b, c, t // per, per, h, w)  # (B, C, K, F, H, W)
        if self.modality == "rgbdiff":
            x = x[:, :, :, 1:] - x[:, :, :, :-1]  # (B, 3, K, L + 1, H, W) -> (B, 3, K, L, H, W)
        x = x.permute(0, 2, 3, 1, 4, 5)  # -> (B, K, L, C, H, W): channels x1, y1, x2, y2, ...
        return x.reshape(b * (t // per), -1, h, w)  # -> (B*K, L*C, H, W)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) stream -> (B, F, K, h, w) features of the K snippets."""
        b = x.shape[0]
        f = self.backbone(self.snippets(x))  # (B*K, C', H, W) -> (B*K, F, h, w)
        return f.reshape(b, -1, *f.shape[1:]).transpose(1, 2)  # -> (B, K, F, h, w) -> (B, F, K, h, w)


# ---------------------------------------------------------------- cards and builders

_INPUTS: dict[str, dict[str, object]] = {
    "r50": {"crop_size": 224, "short_side": 256, "normalization": "imagenet"},
    "bninception": {"crop_size": 224, "short_side": 256, "normalization": "minus_one_one"},
    "small": {"crop_size": 48, "short_side": 48, "normalization": "kinetics"},
}
_BACKBONE_NOTES = {
    "r50": "Backbone: torchvision ResNet-50 (MMAction2's TSN); ImageNet weights via backbone_weights=PATH. ",
    "bninception": "Backbone: torchvision GoogLeNet standing in for BN-Inception (6.6M vs ~10M params); "
    "normalisation x/255*2-1 is what torchvision's GoogLeNet ImageNet weights expect. ",
    "small": "CPU scale: single_frame_small's trunk on 48x48 synthetic clips, trained from scratch "
    "(partial BN off by default). ",
}
_MODALITY_NOTES = {
    "rgb": "RGB: one frame per segment, K = 3, dropout 0.8. ",
    "flow": "Flow: 5 flow fields per segment (sampling.snippet_len = 5) stacked as 10 channels, dropout 0.7; "
    "cross-modality init and 5x/10x conv1 lr when backbone_weights is given. ",
    "rgbdiff": "RGB difference: 6 frames per segment (sampling.snippet_len = 6), 5 differences stacked as 15 "
    "channels computed in the model, dropout 0.7 (our choice; tsn-pytorch trains it with 7 segments). ",
}
_MMACTION = (
    "Published: MMAction2's TSN R50 1x1x3 on Kinetics-400 (configs/recognition/tsn/README.md): 24.33M "
    "params, 72.83 top-1 (their recipe: dropout 0.4, no partial BN), not a number of the paper. "
)
_FRAMES = {"rgb": 1, "flow": SNIPPET_LEN, "rgbdiff": SNIPPET_LEN + 1}


def _card(backbone: str, modality: Modality) -> ModelCard:
    published: dict[str, object] = {}
    if backbone == "r50" and modality == "rgb":
        published = {
            "published_params_m": 24.33,
            "published_input": "3x3x224x224",
            "published_top1": 72.83,
            "published_dataset": "kinetics400",
        }
    flow = modality == "flow"
    note = _BACKBONE_NOTES[backbone] + _MODALITY_NOTES[modality] + (_MMACTION if published else "")
    return ModelCard(
        paper=_PAPER,
        arxiv=_ARXIV,
        section="§3.1 (segments, consensus), §3.2 (inputs, cross-modality init, partial BN, dropout)",
        streams=("flow",) if flow else ("rgb",),
        in_channels=2 if flow else 3,
        num_frames=NUM_SEGMENTS * _FRAMES[modality],
        sampling="segment",
        snippet_len=_FRAMES[modality],
        notes=note.strip(),
        **{**_INPUTS[backbone], **({"normalization": "flow"} if flow else {})},  # type: ignore[arg-type]
        **published,  # type: ignore[arg-type]
    )


def _tsn(backbone: str, modality: Modality, num_classes: int, kwargs: dict[str, Any]) -> TSN:
    return TSN(backbone, modality=modality, num_classes=num_classes, **kwargs)


# Builders take TSN's keyword arguments: num_segments, snippet_len, consensus, topk, dropout, partial_bn,
# backbone_weights, init_std.


@register_model(_card("r50", "rgb"))
def tsn_r50(*, num_classes: int = 400, **kwargs: Any) -> TSN:
    """TSN RGB, ResNet-50."""
    return _tsn("r50", "rgb", num_classes, kwargs)


@register_model(_card("r50", "flow"))
def tsn_r50_flow(*, num_classes: int = 400, **kwargs: Any) -> TSN:
    """TSN flow (5 stacked fields a segment), ResNet-50."""
    return _tsn("r50", "flow", num_classes, kwargs)


@register_model(_card("r50", "rgbdiff"))
def tsn_r50_rgbdiff(*, num_classes: int = 400, **kwargs: Any) -> TSN:
    """TSN RGB difference (6 frames -> 5 differences a segment), ResNet-50."""
    return _tsn("r50", "rgbdiff", num_classes, kwargs)


@register_model(_card("bninception", "rgb"))
def tsn_bninception(*, num_classes: int = 400, **kwargs: Any) -> TSN:
    """TSN RGB, GoogLeNet standing in for BN-Inception."""
    return _tsn("bninception", "rgb", num_classes, kwargs)


@register_model(_card("bninception", "flow"))
def tsn_bninception_flow(*, num_classes: int = 400, **kwargs: Any) -> TSN:
    """TSN flow, GoogLeNet standing in for BN-Inception."""
    return _tsn("bninception", "flow", num_classes, kwargs)


@register_model(_card("bninception", "rgbdiff"))
def tsn_bninception_rgbdiff(*, num_classes: int = 400, **kwargs: Any) -> TSN:
    """TSN RGB difference, GoogLeNet standing in for BN-Inception."""
    return _tsn("bninception", "rgbdiff", num_classes, kwargs)


@register_model(_card("small", "rgb"))
def tsn_small(*, num_classes: int = 400, **kwargs: Any) -> TSN:
    """TSN RGB on single_frame_small's trunk (48-px synthetic benchmark)."""
    return _tsn("small", "rgb", num_classes, kwargs)


@register_model(_card("small", "flow"))
def tsn_small_flow(*, num_classes: int = 400, **kwargs: Any) -> TSN:
    """TSN flow on single_frame_small's trunk."""
    return _tsn("small", "flow", num_classes, kwargs)


@register_model(_card("small", "rgbdiff"))
def tsn_small_rgbdiff(*, num_classes: int = 400, **kwargs: Any) -> TSN:
    """TSN RGB difference on single_frame_small's trunk."""
    return _tsn("small", "rgbdiff", num_classes, kwargs)
