"""Single-frame baselines: a 2D CNN applied to every frame, frame scores averaged over time.

Karpathy et al. 2014, "Large-scale Video Classification with Convolutional Neural Networks", CVPR 2014
(no arXiv version): §3.1 ("Single-frame" model) and §4.1 (video-level predictions by averaging the
predictions of its parts). The frame network here is a torchvision ResNet (He et al. 2015, "Deep Residual
Learning for Image Recognition", arXiv 1512.03385, Table 1) instead of the paper's AlexNet-style network,
which can start from ImageNet weights in a local torchvision state-dict file.

``single_frame_small`` is the per-frame twin of ``r2plus1d_small``: the same network with temporal
kernel 1 everywhere (and no temporal striding), so no layer mixes frames.

Every model here returns per-frame features from ``forward_features`` and averages per-frame *logits* in
``forward_head``. With a linear classifier this equals classifying the time-averaged feature, except
that dropout draws an independent mask for every frame during training.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from actionrec.errors import WeightsError
from actionrec.layers.resnet_blocks import init_resnet_weights
from actionrec.models.base import VideoClassifier
from actionrec.models.registry import ModelCard, register_model
from actionrec.models.resnet3d import VideoResNet, small_config

_PAPER = "Large-scale Video Classification with Convolutional Neural Networks (Karpathy et al., CVPR 2014)"


class FrameScoreHead(nn.Module):
    """(B, F, T, H, W) per-frame features -> (B, num_classes): spatial pool, classify every frame, average."""

    def __init__(self, in_features: int, num_classes: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_features = in_features
        self.dropout = nn.Dropout(dropout)
        self.fc: nn.Module = self._make_fc(num_classes)

    def _make_fc(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.in_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.flatten(3).mean(-1).transpose(1, 2)  # (B, F, T, H, W) -> (B, F, T) -> (B, T, F)
        if pre_logits:
            return x.mean(1)  # (B, T, F) -> (B, F)
        return self.fc(self.dropout(x)).mean(1)  # (B, T, F) -> (B, T, K) -> (B, K)

    def reset(self, num_classes: int) -> None:
        self.fc = self._make_fc(num_classes)


def read_backbone_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A local 2D backbone state dict: a torch file (``weights_only``, a ``state_dict`` wrapper
    unwrapped) or safetensors. Every frame family reads ImageNet weights through this."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: backbone weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt or non-tensor file
        raise WeightsError(f"{path}: not a state dict ({type(e).__name__}: {e})".splitlines()[0]) from e
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def load_backbone_weights(backbone: nn.Module, path: str | Path, *, drop: tuple[str, ...] = ("fc.",)) -> None:
    """Load a torchvision ImageNet state dict (``torch.save(model.state_dict())``) into a frame backbone.

    Keys starting with ``drop`` (the ImageNet classifier) are left out; every other key must match.
    """
    state = {k: v for k, v in read_backbone_state(path).items() if not k.startswith(drop)}
    try:
        backbone.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if "\n" in str(e) else str(e)
        raise WeightsError(f"{path}: does not fit the frame backbone ({first})") from e


def imagenet_resnet(arch: str, *, backbone_weights: str | Path | None = None) -> nn.Module:
    """A torchvision ResNet without its classifier (``fc`` = identity; ``num_features`` its width),
    with ImageNet weights from a local state-dict file when given. The frame trunk of every 2D family."""
    net = getattr(torchvision.models, arch)()
    net.num_features = net.fc.in_features
    net.fc = nn.Identity()
    if backbone_weights is not None:
        load_backbone_weights(net, backbone_weights)
    return net


class SingleFrameResNet(VideoClassifier):
    """A torchvision 2D ResNet run on every frame, per-frame scores averaged (see the module docstring)."""

    def __init__(
        self,
        arch: str,
        *,
        num_classes: int = 400,
        dropout: float = 0.0,
        backbone_weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.backbone = imagenet_resnet(arch, backbone_weights=backbone_weights)  # classifier: self.head
        self.num_features = self.backbone.num_features
        self.num_classes = num_classes
        self.head = FrameScoreHead(self.num_features, num_classes, dropout=dropout)
        init_resnet_weights(self.head)

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        return b.layer4(b.layer3(b.layer2(b.layer1(x))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) clip -> (B, F, T, h, w) features of every frame."""
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B, C, T, H, W) -> (B*T, C, H, W)
        f = self._trunk(frames)  # (B*T, F, h, w)
        return f.reshape(b, t, *f.shape[1:]).transpose(1, 2)  # (B*T, F, h, w) -> (B, F, T, h, w)


class FrameNet(VideoClassifier):
    """A 3D ResNet with temporal kernel 1 everywhere (a 2D network per frame), frame scores averaged."""

    def __init__(self, trunk: VideoResNet, *, num_classes: int = 400, dropout: float = 0.0) -> None:
        super().__init__()
        self.trunk = trunk
        self.num_features = trunk.num_features
        self.num_classes = num_classes
        self.head = FrameScoreHead(self.num_features, num_classes, dropout=dropout)
        init_resnet_weights(self.head)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) clip -> (B, F, T, h, w): frames never mix, so T is kept."""
        return self.trunk.forward_features(x)


def _frame_card(arch: str, params_m: float, gmacs: float, params_1000: float) -> ModelCard:
    return ModelCard(
        paper=_PAPER,
        arxiv="",
        section="§3.1 (single-frame model), §4.1 (averaged predictions)",
        num_frames=8,
        sampling="segment",
        crop_size=224,
        short_side=256,
        normalization="imagenet",
        published_params_m=params_m,
        published_gmacs=gmacs,
        published_input="3x1x224x224",
        notes=f"Frame network: torchvision {arch} (He et al. 2015, arXiv 1512.03385). Published: "
        f"torchvision's documented {params_1000}M params (1000 classes; {params_m}M with a 400-way fc) and "
        f"{gmacs} GMACs per 224x224 frame; MACs grow linearly with the number of frames. Works with segment "
        "(TSN-style) or dense sampling; ImageNet weights via backbone_weights=PATH (torchvision state dict).",
    )


@register_model(_frame_card("resnet18", 11.38, 1.81, 11.69))
def single_frame_r18(
    *, num_classes: int = 400, dropout: float = 0.0, backbone_weights: str | Path | None = None
) -> SingleFrameResNet:
    """ResNet-18 on every frame; ``backbone_weights`` is a local torchvision ImageNet state-dict file."""
    return SingleFrameResNet(
        "resnet18", num_classes=num_classes, dropout=dropout, backbone_weights=backbone_weights
    )


@register_model(_frame_card("resnet50", 24.33, 4.09, 25.56))
def single_frame_r50(
    *, num_classes: int = 400, dropout: float = 0.0, backbone_weights: str | Path | None = None
) -> SingleFrameResNet:
    """ResNet-50 on every frame; ``backbone_weights`` is a local torchvision ImageNet state-dict file."""
    return SingleFrameResNet(
        "resnet50", num_classes=num_classes, dropout=dropout, backbone_weights=backbone_weights
    )


@register_model(
    ModelCard(
        paper=_PAPER,
        arxiv="",
        section="§3.1 (single-frame model) at CPU scale",
        num_frames=8,
        crop_size=48,
        short_side=48,
        normalization="kinetics",
        notes="The frame-model baseline of the synthetic demo: r2plus1d_small with temporal kernel 1 "
        "everywhere and no temporal striding (each (2+1)D conv becomes a 1x3x3 conv then a 1x1x1 conv).",
    )
)
def single_frame_small(
    *, num_classes: int = 400, dropout: float = 0.0, in_channels: int = 3, stem_pool: bool = False
) -> FrameNet:
    """The per-frame twin of ``r2plus1d_small``: same widths and depth, no temporal kernels."""
    cfg = small_config(temporal_kernel=1, in_channels=in_channels, stem_pool=stem_pool)
    trunk = VideoResNet(cfg, num_classes=0)
    return FrameNet(trunk, num_classes=num_classes, dropout=dropout)
