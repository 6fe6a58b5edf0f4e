"""I3D: Inception-v1 inflated to 3D (Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model
and the Kinetics Dataset", 2017, arXiv 1705.07750, §2.4 and Fig. 3).

The layer table follows DeepMind's released network (kinetics-i3d) name for name, so their weights
load exactly: TensorFlow "SAME" padding everywhere (:mod:`actionrec.layers.same_pad`), BatchNorm
with eps 1e-3 and no scale (only a shift), convolutions without bias except the logits, and a head
that average-pools (2, 7, 7) with stride 1, applies a 1x1x1 convolution and averages the logits over
the remaining time steps. ``i3d_two_stream`` averages the logits of an RGB and a flow network (§2.5).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from actionrec.layers.same_pad import Conv3dSame, MaxPool3dSame
from actionrec.models.base import VideoClassifier
from actionrec.models.registry import ModelCard, register_model

# Mixed block widths: (branch 0 1x1, branch 1 1x1 -> 3x3, branch 2 1x1 -> 3x3, branch 3 pool -> 1x1).
_MIXED: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
# Max-pools before each stage: name -> (kernel, stride), both (T, H, W).
_POOLS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "MaxPool3d_2a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_3a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_4a_3x3": ((3, 3, 3), (2, 2, 2)),
    "MaxPool3d_5a_2x2": ((2, 2, 2), (2, 2, 2)),
}
FEATURE_DIM = 1024


class BatchNormShift3d(nn.BatchNorm3d):
    """BatchNorm without a learned scale (gamma = 1), only a shift ``bias`` — DeepMind's I3D setting."""

    def __init__(self, num_features: int, *, eps: float = 1e-3, momentum: float = 0.01) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, affine=False)
        self.bias = nn.Parameter(torch.zeros(num_features))


class Unit3d(nn.Sequential):
    """Conv3d (SAME, no bias) -> BatchNorm (shift only) -> ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int | tuple[int, int, int] = 1,
        *,
        stride: int | tuple[int, int, int] = 1,
    ) -> None:
        super().__init__(
            OrderedDict(
                [
                    ("conv", Conv3dSame(in_channels, out_channels, kernel, stride=stride, bias=False)),
                    ("bn", BatchNormShift3d(out_channels)),
                    ("relu", nn.ReLU(inplace=True)),
                ]
            )
        )


class Mixed(nn.Module):
    """Inflated Inception block: four branches concatenated over channels (Fig. 3, right)."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3b = widths
        self.b0 = Unit3d(in_channels, c0)
        self.b1a = Unit3d(in_channels, c1a)
        self.b1b = Unit3d(c1a, c1b, 3)
        self.b2a = Unit3d(in_channels, c2a)
        self.b2b = Unit3d(c2a, c2b, 3)
        self.b3a = MaxPool3dSame(3, stride=1)
        self.b3b = Unit3d(in_channels, c3b)
        self.out_channels = c0 + c1b + c2b + c3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x)))
        return torch.cat(branches, dim=1)


class I3DHead(nn.Module):
    """AvgPool (2, 7, 7) stride 1 VALID -> dropout -> 1x1x1 conv with bias -> mean over (T, H, W).

    The pooling window is clipped to the feature map, so inputs smaller than 64 x 224 x 224 work too
    (at 224 pixels the spatial output is 1 x 1, as in DeepMind's network).
    """

    def __init__(self, in_features: int, num_classes: int, *, dropout: float = 0.5) -> None:
        super().__init__()
        self.in_features = in_features
        self.dropout = nn.Dropout(dropout)
        self.logits: nn.Conv3d | None = None
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        self.logits = nn.Conv3d(self.in_features, num_classes, 1, bias=True) if num_classes > 0 else None

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        kernel = (min(2, x.shape[2]), min(7, x.shape[3]), min(7, x.shape[4]))
        x = F.avg_pool3d(x, kernel, stride=1)  # (B, C, T, H, W) -> (B, C, T', H', W')
        if pre_logits or self.logits is None:
            return x.mean(dim=(2, 3, 4))  # (B, C, T', H', W') -> (B, C)
        x = self.logits(self.dropout(x))  # (B, C, T', H', W') -> (B, N, T', H', W')
        return x.mean(dim=(2, 3, 4))  # (B, N, T', H', W') -> (B, N): logits averaged over time


class I3D(VideoClassifier):
    """Inflated Inception-v1 taking a (B, C, T, H, W) clip; ``features`` names follow DeepMind's."""

    def __init__(self, *, num_classes: int = 400, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_channels = in_channels
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            [
                ("Conv3d_1a_7x7", Unit3d(in_channels, 64, 7, stride=2)),
                ("MaxPool3d_2a_3x3", MaxPool3dSame(*_POOLS["MaxPool3d_2a_3x3"])),
                ("Conv3d_2b_1x1", Unit3d(64, 64)),
                ("Conv3d_2c_3x3", Unit3d(64, 192, 3)),
            ]
        )
        channels = 192
        for name, widths in _MIXED.items():
            pool = {
                "Mixed_3b": "MaxPool3d_3a_3x3",
                "Mixed_4b": "MaxPool3d_4a_3x3",
                "Mixed_5b": "MaxPool3d_5a_2x2",
            }.get(name)
            if pool:
                layers[pool] = MaxPool3dSame(*_POOLS[pool])
            block = Mixed(channels, widths)
            layers[name] = block
            channels = block.out_channels
        self.features = nn.Sequential(layers)
        self.head = I3DHead(channels, num_classes, dropout=dropout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, C, T, H, W) -> (B, 1024, T/8, H/32, W/32)

    def convert_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Map DeepMind (pickle / TF names) and pytorch-i3d layouts onto this module's names."""
        from actionrec.weights.deepmind import convert_i3d_state_dict

        return convert_i3d_state_dict(state_dict, in_channels=self.in_channels)


class I3DTwoStream(VideoClassifier):
    """RGB and flow I3D networks whose logits are averaged; input ``{"rgb": clip, "flow": clip}``."""

    def __init__(self, *, num_classes: int = 400, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.rgb = I3D(num_classes=num_classes, in_channels=3, dropout=dropout)
        self.flow = I3D(num_classes=num_classes, in_channels=2, dropout=dropout)

    def forward_features(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return {"rgb": self.rgb.forward_features(x["rgb"]), "flow": self.flow.forward_features(x["flow"])}

    def forward_head(self, x: dict[str, torch.Tensor], pre_logits: bool = False) -> torch.Tensor:  # type: ignore[override]
        rgb = self.rgb.forward_head(x["rgb"], pre_logits=pre_logits)
        flow = self.flow.forward_head(x["flow"], pre_logits=pre_logits)
        if pre_logits:
            return torch.cat([rgb, flow], dim=1)  # (B, 1024) x 2 -> (B, 2048)
        return (rgb + flow) / 2

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.rgb.reset_classifier(num_classes)
        self.flow.reset_classifier(num_classes)

    def convert_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-stream conversion; RGB-only weights also initialise the flow stream (cross-modality)."""
        from actionrec.weights.deepmind import convert_two_stream_state_dict

        return convert_two_stream_state_dict(state_dict)


_CARD = dict(
    paper="Quo Vadis, Action Recognition? A New Model and the Kinetics Dataset (Carreira & Zisserman, 2017)",
    arxiv="1705.07750",
    section="§2.4, Fig. 3 (Inflated Inception-v1)",
    num_frames=64,
    fps=25.0,
    max_frames=250,
    sampling="fps",
    crop_size=224,
    short_side=256,
    normalization="minus_one_one",
    published_gmacs=108.0,
    published_input="3x64x224x224",
    published_dataset="Kinetics-400 test",
)


@register_model(
    ModelCard(
        **_CARD,
        in_channels=3,
        published_params_m=12.69,
        published_top1=68.4,
        notes="DeepMind's rgb_scratch weights (no ImageNet pretraining). Table 1 rounds to 12M parameters; "
        "12.69M is the trainable count of DeepMind's released RGB checkpoint (12,704,544 numbers with "
        "the BN statistics).",
    )
)
def i3d_inception_v1(*, num_classes: int = 400, **kwargs: Any) -> I3D:
    return I3D(num_classes=num_classes, in_channels=3, **kwargs)


@register_model(
    ModelCard(
        **{**_CARD, "published_gmacs": None, "published_input": "2x64x224x224"},
        in_channels=2,
        streams=("flow",),
        published_params_m=12.67,
        notes="Optical-flow stream (x, y TV-L1 flow scaled to [-1, 1]); 2 input channels. 12.67M = the "
        "RGB checkpoint's count less one third of Conv3d_1a's kernel; the paper gives GMACs for RGB only. "
        "No headline accuracy recorded here: no flow weights ship with the project.",
    )
)
def i3d_inception_v1_flow(*, num_classes: int = 400, **kwargs: Any) -> I3D:
    return I3D(num_classes=num_classes, in_channels=2, **kwargs)


@register_model(
    ModelCard(
        **{**_CARD, "published_gmacs": 216.0, "published_input": "3x64x224x224 + 2x64x224x224"},
        input_kind="two_stream",
        streams=("rgb", "flow"),
        in_channels=3,
        published_params_m=25.36,
        notes="Two-stream I3D: logits of the RGB and flow networks averaged. Table 1 rounds to 25M "
        "parameters; 25.36M is the sum of the two released checkpoints.",
    )
)
def i3d_two_stream(*, num_classes: int = 400, **kwargs: Any) -> I3DTwoStream:
    return I3DTwoStream(num_classes=num_classes, **kwargs)
