"""C3D: "Learning Spatiotemporal Features with 3D Convolutional Networks" (Tran, Bourdev, Fergus,
Torresani & Paluri, 2015, arXiv 1412.0767), §3.2-3.3 and Fig. 3.

Eight 3x3x3 convolutions (64, 128, 256, 256, 512, 512, 512, 512 filters, stride 1, padding 1), five
max-pools (pool1 1x2x2 so that time is not merged too early, the others 2x2x2), two 4096-d fully
connected layers with dropout 0.5, and a softmax classifier, on 16 x 112 x 112 RGB clips. pool5 pads
the spatial 7x7 map by one pixel as the released Caffe model does, so fc6 sees 512 x 1 x 4 x 4 = 8192.

Features (§4, "C3D video descriptor"): the paper averages fc6 activations over the 16-frame clips of a
video (then L2-normalises). ``extract(x, layer)`` returns ``"pool5"`` (flattened, 8192-d), ``"fc6"``
or ``"fc7"`` (4096-d, after ReLU, as the Caffe blobs are, since the ReLU runs in place).

Normalisation: the card uses the ``"c3d"`` preset (pixels in [0, 1] minus 0.4, no scaling), the
counterpart of the paper's mean-clip subtraction on [0, 255] pixels. Weights converted from the Caffe
model expect 255 times that range: multiply the normalised clip by 255 before the forward pass.

Other input sizes: an adaptive average pool to 1 x 4 x 4 after pool5 (an identity at 16 x 112 x 112,
like torchvision VGG's 7 x 7 pool) keeps fc6 at 8192 inputs; at least 16 frames are needed.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from actionrec.layers.head import ClassifierHead
from actionrec.models.base import VideoClassifier
from actionrec.models.registry import ModelCard, register_model

# (name, output channels) per convolution; a pool follows the last conv of each group.
CONV_GROUPS: tuple[tuple[tuple[str, int], ...], ...] = (
    (("conv1a", 64),),
    (("conv2a", 128),),
    (("conv3a", 256), ("conv3b", 256)),
    (("conv4a", 512), ("conv4b", 512)),
    (("conv5a", 512), ("conv5b", 512)),
)
FEATURE_LAYERS = ("pool5", "fc6", "fc7")


def _pool(index: int) -> nn.MaxPool3d:
    if index == 0:
        return nn.MaxPool3d((1, 2, 2), stride=(1, 2, 2))
    padding = (0, 1, 1) if index == 4 else 0
    return nn.MaxPool3d(2, stride=2, padding=padding)


def _backbone(in_channels: int) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels = in_channels
    for g, group in enumerate(CONV_GROUPS):
        for name, out in group:
            layers[name] = nn.Conv3d(channels, out, 3, padding=1)
            layers[f"relu{name[4:]}"] = nn.ReLU(inplace=True)
            channels = out
        layers[f"pool{g + 1}"] = _pool(g)
    layers["fit"] = nn.AdaptiveAvgPool3d((1, 4, 4))
    return nn.Sequential(layers)


class C3DHead(nn.Module):
    """pool5 map (B, 512, 1, 4, 4) -> fc6 -> fc7 -> fc8; ``pre_logits`` returns fc7 (after ReLU)."""

    def __init__(self, num_classes: int, *, dropout: float = 0.5, hidden: int = 4096) -> None:
        super().__init__()
        self.fc6 = nn.Linear(512 * 4 * 4, hidden)
        self.fc7 = nn.Linear(hidden, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = ClassifierHead(hidden, num_classes, dropout=0.0)

    def fc6_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.fc6(x.flatten(1)))  # (B, 512, 1, 4, 4) -> (B, 8192) -> (B, 4096)

    def fc7_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.fc7(self.dropout(self.fc6_features(x))))

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.fc7_features(x)
        return x if pre_logits else self.classifier(self.dropout(x))

    def reset(self, num_classes: int) -> None:
        self.classifier.reset(num_classes)


class C3D(VideoClassifier):
    """C3D of §3.3: (B, 3, 16, 112, 112) -> (B, num_classes)."""

    def __init__(self, *, num_classes: int = 400, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.features = _backbone(in_channels)
        self.head = C3DHead(num_classes, dropout=dropout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] < 16:
            raise ValueError(f"C3D needs clips of at least 16 frames, got {x.shape[2]}")
        return self.features(x)  # (B, 3, 16, 112, 112) -> (B, 512, 1, 4, 4)

    @torch.no_grad()
    def extract(self, x: torch.Tensor, layer: str = "fc6") -> torch.Tensor:
        """Clip descriptors (B, D): ``"pool5"`` 8192-d, ``"fc6"`` / ``"fc7"`` 4096-d after ReLU."""
        if layer not in FEATURE_LAYERS:
            raise ValueError(f"C3D feature layer must be one of {FEATURE_LAYERS}, got {layer!r}")
        pool5 = self.forward_features(x)
        if layer == "pool5":
            return pool5.flatten(1)  # (B, 512, 1, 4, 4) -> (B, 8192)
        if layer == "fc6":
            return self.head.fc6_features(pool5)
        return self.head.fc7_features(pool5)


@register_model(
    ModelCard(
        paper="Learning Spatiotemporal Features with 3D Convolutional Networks",
        arxiv="1412.0767",
        section="§3.3, Fig. 3",
        num_frames=16,
        frame_interval=1,
        crop_size=112,
        short_side=128,
        normalization="c3d",
        published_params_m=79.6,
        published_gmacs=38.5,
        published_input="3x16x112x112",
        published_top1=None,
        published_dataset="Sports-1M",
        notes="Params: the released Sports-1M model has 78.0M weights below fc8 plus a 487-way fc8 (80.0M in "
        "all); with the 400-way fc8 used here 79.63M (the figure on this card). The often quoted 38.5 "
        "'GFLOPs' at 3x16x112x112 counts multiply-adds; measured here: 38.55 GMACs.",
    )
)
def c3d(*, num_classes: int = 400, **kw: object) -> C3D:
    return C3D(num_classes=num_classes, **kw)  # type: ignore[arg-type]
