"""Two-stream networks: a spatial ConvNet on one RGB frame, a temporal ConvNet on stacked optical flow.

Simonyan & Zisserman 2014, "Two-Stream Convolutional Networks for Action Recognition in Videos",
arXiv 1406.2199: §2 (the architecture, Fig. 1), §3.1 (the temporal input: L = 10 consecutive flow
fields, x and y stacked into 2L channels, eq. 1; mean flow subtraction), §5 / Table 1 (CNN-M-2048
towers), §6 (fusion of the towers' softmax scores by averaging, or a linear SVM:
:mod:`actionrec.engine.score_svm`). Cross-modality initialisation of the temporal stream from an RGB
network's first layer (average over RGB, replicate to 2L channels) is TSN's (Wang et al. 2016,
arXiv 1608.00859, §3.2); the two-stream paper trains the temporal net from scratch.

Input layout. The sample's ``flow`` stream holds one flow field (x, y) per sampled frame (flow ``i``
is frame i -> i+1, :mod:`actionrec.data.sources`), so a clip of T = S * L consecutive frames
(dense sampling, interval 1, or TSN segments with ``snippet_len`` L) is S snippets of L flows. The
temporal tower sees each snippet as (2L, H, W) in the order x1, y1, x2, y2, ... (eq. 1), after each
flow field's mean vector is subtracted (§3.1, ``subtract_mean_flow``); the spatial tower sees the
centre RGB frame of each snippet (index L // 2). Scores are averaged over the S snippets.

``two_stream_*`` takes ``{"rgb", "flow"}`` and returns ``log((softmax(s) + softmax(t)) / 2)`` of the
towers' logits s and t: its softmax is exactly the paper's average of the two softmax scores, so the
evaluator's softmax averaging and the late-fusion code read it as the fused prediction. In training
it returns ``{"logits", "step_logits": (B, 2, K), "step_weights": (1, 1)}``: the loss is the mean of
the two towers' cross-entropies (:mod:`actionrec.engine.tasks`), so RGB and flow train jointly
(the paper trains them separately; the sum of independent losses gives each tower the gradient of
its own loss, halved). ``spatial_*`` and ``temporal_*`` are the single towers.

Backbones: ``cnn_m2048`` (the paper's, :mod:`actionrec.layers.cnn_m`; the temporal one without
conv2 LRN), torchvision ``r18`` / ``r50`` / ``vgg16``, and ``small`` (the per-frame twin of
``r2plus1d_small`` for the 48-px synthetic benchmark). ``backbone_weights=PATH`` loads a local RGB
state dict (torchvision's for r18 / r50 / vgg16, :class:`CNNM2048`'s, or a ``single_frame_small``
trunk) into both towers, the temporal tower's first convolution by cross-modality init.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from actionrec.errors import WeightsError
from actionrec.layers.cnn_m import CNNM2048
from actionrec.layers.inflate import cross_modality_init, set_in_channels
from actionrec.layers.stream_fusion import log_mean_softmax
from actionrec.models.base import VideoClassifier
from actionrec.models.registry import ModelCard, register_model
from actionrec.models.resnet3d import VideoResNet, small_config
from actionrec.models.single_frame import read_backbone_state

PAPER = "Two-Stream Convolutional Networks for Action Recognition in Videos (Simonyan & Zisserman, 2014)"
ARXIV = "1406.2199"
BACKBONES = ("cnn_m2048", "r18", "r50", "vgg16", "small")
# The first convolution of each backbone's RGB state dict (cross-modality init) and its classifier.
_FIRST_CONV = {
    "cnn_m2048": "features.0",
    "r18": "conv1",
    "r50": "conv1",
    "vgg16": "features.0",
    "small": "stem.0",
}
_CLASSIFIER = {"cnn_m2048": "fc.", "r18": "fc.", "r50": "fc.", "vgg16": "classifier.6.", "small": "fc."}


# ---------------------------------------------------------------- towers


class _Frames(nn.Module):
    """A per-frame 3D trunk (temporal kernel 1) as a 2D one: (N, C, H, W) -> (N, F, h, w)."""

    def __init__(self, trunk: VideoResNet) -> None:
        super().__init__()
        self.trunk = trunk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk.forward_features(x.unsqueeze(2)).squeeze(2)  # (N, C, 1, H, W) -> (N, F, h, w)


class Tower(nn.Module):
    """One stream's 2D network in four parts, so that a fusion network can cut it at its last conv.

    ``features`` (N, C, H, W) -> (N, channels, h, w), the last ReLU before pool5; ``pool`` the
    pool5 that follows (identity for ResNets); ``neck`` pooled maps -> (N, num_features), dropout
    included; ``fc`` the classifier.
    """

    def __init__(
        self, features: nn.Module, pool: nn.Module, neck: nn.Module, channels: int, width: int
    ) -> None:
        super().__init__()
        self.features, self.pool, self.neck = features, pool, neck
        self.channels, self.num_features = channels, width
        self.fc: nn.Module = nn.Identity()

    def reset(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if num_classes > 0:
            nn.init.normal_(self.fc.weight, 0.0, 0.01)
            nn.init.zeros_(self.fc.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.pool(self.features(x)))  # (N, C, H, W) -> (N, num_features)


def _rgb_net(backbone: str, dropout: float, temporal: bool) -> nn.Module:
    """The backbone as an RGB image network (its first conv is changed after loading weights)."""
    if backbone == "cnn_m2048":
        return CNNM2048(num_classes=0, dropout=dropout, lrn2=not temporal)
    if backbone in ("r18", "r50"):
        return getattr(torchvision.models, {"r18": "resnet18", "r50": "resnet50"}[backbone])()
    if backbone == "vgg16":
        return torchvision.models.vgg16(dropout=dropout)
    if backbone == "small":
        return VideoResNet(small_config(temporal_kernel=1), num_classes=0)
    raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A local state dict (safetensors or torch ``weights_only``); a ``trunk.`` prefix is dropped."""
    return {k.removeprefix("trunk."): v for k, v in read_backbone_state(path).items()}


def load_rgb_weights(net: nn.Module, backbone: str, state: dict[str, torch.Tensor], in_channels: int) -> None:
    """Load an RGB state dict into ``net`` (already built for ``in_channels``), the classifier dropped;
    for other than 3 inputs the first conv is cross-modality initialised (mean over RGB, replicated)."""
    drop = _CLASSIFIER[backbone]
    state = {k: v for k, v in state.items() if not k.startswith(drop)}
    key = _FIRST_CONV[backbone] + ".weight"
    if key not in state:
        raise WeightsError(f"backbone {backbone}: the weights hold no {key}")
    if in_channels != state[key].shape[1]:
        state[key] = cross_modality_init(state[key], in_channels)
    own = {k for k in net.state_dict() if not k.startswith(drop)}
    missing, unexpected = own - set(state), set(state) - own
    if missing or unexpected:
        raise WeightsError(
            f"backbone {backbone}: weights do not fit (missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]})"
        )
    net.load_state_dict(state, strict=False)


def build_tower(
    backbone: str,
    *,
    in_channels: int,
    num_classes: int,
    dropout: float = 0.5,
    temporal: bool = False,
    backbone_weights: str | Path | dict[str, torch.Tensor] | None = None,
) -> Tower:
    """A spatial (``in_channels=3``) or temporal (``2L``) tower of ``backbone``, split into its parts."""
    net = _rgb_net(backbone, dropout, temporal)
    if in_channels != 3:
        set_in_channels(net.get_submodule(_FIRST_CONV[backbone]), in_channels, from_rgb=False)  # type: ignore[arg-type]
    if backbone_weights is not None:
        state = backbone_weights if isinstance(backbone_weights, dict) else read_state_dict(backbone_weights)
        load_rgb_weights(net, backbone, dict(state), in_channels)
    tower = _split(backbone, net, dropout)
    tower.reset(num_classes)
    return tower


def _split(backbone: str, net: Any, dropout: float) -> Tower:
    gap = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(dropout))
    if backbone == "cnn_m2048":
        return Tower(net.features, net.pool5, net.neck, 512, net.num_features)
    if backbone == "vgg16":
        neck = nn.Sequential(net.avgpool, nn.Flatten(1), *list(net.classifier)[:6])
        return Tower(net.features[:30], net.features[30], neck, 512, 4096)
    if backbone == "small":
        return Tower(_Frames(net), nn.Identity(), gap, net.num_features, net.num_features)
    width = net.fc.in_features
    stem = [net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4]
    return Tower(nn.Sequential(*stem), nn.Identity(), gap, width, width)


# ---------------------------------------------------------------- inputs


def subtract_mean_flow(flow: torch.Tensor) -> torch.Tensor:
    """(B, 2, T, H, W) flow minus each field's mean displacement vector (over H, W), §3.1."""
    return flow - flow.mean(dim=(3, 4), keepdim=True)


def snippets_of(t: int, snippet_len: int) -> int:
    if t % snippet_len:
        raise ValueError(f"a clip of {t} frames is not whole snippets of {snippet_len} (snippet_len)")
    return t // snippet_len


def centre_frames(rgb: torch.Tensor, snippet_len: int) -> torch.Tensor:
    """(B, 3, S*L, H, W) -> (B*S, 3, H, W): the centre frame of each snippet of L frames."""
    b, c, t, h, w = rgb.shape
    s = snippets_of(t, snippet_len)
    x = rgb.reshape(b, c, s, snippet_len, h, w)[:, :, :, snippet_len // 2]  # (B, 3, S, H, W)
    return x.transpose(1, 2).reshape(b * s, c, h, w)


def stack_flow(flow: torch.Tensor, snippet_len: int, *, mean_subtraction: bool = True) -> torch.Tensor:
    """(B, 2, S*L, H, W) -> (B*S, 2L, H, W), channels x1, y1, x2, y2, ... (eq. 1)."""
    if mean_subtraction:
        flow = subtract_mean_flow(flow)
    b, c, t, h, w = flow.shape
    s = snippets_of(t, snippet_len)
    x = flow.reshape(b, c, s, snippet_len, h, w).permute(0, 2, 3, 1, 4, 5)  # (B, S, L, 2, H, W)
    return x.reshape(b * s, snippet_len * c, h, w)


def per_snippet(x: torch.Tensor, batch: int) -> torch.Tensor:
    """(B*S, ...) -> (B, S, ...)."""
    return x.reshape(batch, -1, *x.shape[1:])


# ---------------------------------------------------------------- models


class SingleStream(VideoClassifier):
    """One tower on a clip tensor: ``rgb`` (the centre frame of each snippet) or ``flow`` (stacked)."""

    def __init__(self, tower: Tower, *, stream: str, snippet_len: int, mean_subtraction: bool = True) -> None:
        super().__init__()
        self.tower, self.stream, self.snippet_len = tower, stream, snippet_len
        self.mean_subtraction = mean_subtraction
        self.num_classes = tower.fc.out_features if isinstance(tower.fc, nn.Linear) else 0

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S*L, H, W) -> (B, S, num_features)."""
        if self.stream == "rgb":
            frames = centre_frames(x, self.snippet_len)
        else:
            frames = stack_flow(x, self.snippet_len, mean_subtraction=self.mean_subtraction)
        return per_snippet(self.tower.embed(frames), x.shape[0])

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x.mean(1) if pre_logits else self.tower.fc(x).mean(1)  # (B, S, F) -> (B, S, K) -> (B, K)

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.tower.reset(num_classes)


class TwoStream(VideoClassifier):
    """Spatial and temporal towers on ``{"rgb", "flow"}``, softmax scores averaged (module docstring)."""

    def __init__(
        self,
        backbone: str,
        *,
        num_classes: int = 101,
        dropout: float = 0.5,
        snippet_len: int = 10,
        mean_subtraction: bool = True,
        backbone_weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        state = read_state_dict(backbone_weights) if backbone_weights is not None else None
        kw: dict[str, Any] = {"num_classes": num_classes, "dropout": dropout, "backbone_weights": state}
        self.num_classes = num_classes
        self.snippet_len, self.mean_subtraction = snippet_len, mean_subtraction
        self.spatial = build_tower(backbone, in_channels=3, **kw)
        self.temporal = build_tower(backbone, in_channels=2 * snippet_len, temporal=True, **kw)

    def forward_features(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # type: ignore[override]
        """-> {"spatial": (B, S, F), "temporal": (B, S, F)}."""
        b = x["rgb"].shape[0]
        rgb = centre_frames(x["rgb"], self.snippet_len)
        flow = stack_flow(x["flow"], self.snippet_len, mean_subtraction=self.mean_subtraction)
        return {
            "spatial": per_snippet(self.spatial.embed(rgb), b),
            "temporal": per_snippet(self.temporal.embed(flow), b),
        }

    def forward_head(self, x: dict[str, torch.Tensor], pre_logits: bool = False) -> Any:  # type: ignore[override]
        if pre_logits:
            return torch.cat([x["spatial"].mean(1), x["temporal"].mean(1)], dim=1)  # (B, 2F)
        s = self.spatial.fc(x["spatial"]).mean(1)  # (B, S, F) -> (B, K)
        t = self.temporal.fc(x["temporal"]).mean(1)
        return tower_output(s, t, training=self.training)

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.spatial.reset(num_classes)
        self.temporal.reset(num_classes)


def tower_output(first: torch.Tensor, second: torch.Tensor, *, training: bool) -> Any:
    """Fused logits (log of the mean softmax); in training also both towers' logits as steps."""
    logits = log_mean_softmax(first, second)
    if not (training and torch.is_grad_enabled()):
        return logits
    steps = torch.stack([first, second], dim=1)  # (B, 2, K)
    return {"logits": logits, "step_logits": steps, "step_weights": torch.ones(2, device=steps.device)}


# ---------------------------------------------------------------- registry


def _card(stream: str, backbone: str, **extra: Any) -> ModelCard:
    small = backbone == "small"
    frames = 1 if stream == "rgb" else 10
    base: dict[str, Any] = dict(
        paper=PAPER,
        arxiv=ARXIV,
        section="§2-3, Fig. 1; §6 (fusion by averaging)",
        num_frames=frames,
        frame_interval=1,
        crop_size=48 if small else 224,
        short_side=48 if small else 256,
        normalization="kinetics" if small else "imagenet",
        notes=f"{backbone} towers; L = 10 flow fields per snippet (2L channels), mean flow subtracted; "
        "parameters measured, none published for this exact model.",
    )
    if stream == "flow":
        base.update(streams=("flow",), in_channels=2, normalization="flow")
    if stream == "both":
        base.update(streams=("rgb", "flow"), input_kind="two_stream", num_frames=10)
    base.update(extra)
    return ModelCard(**base)


def _register(backbone: str, dropout: float) -> None:
    """Registers two_stream_<b>, spatial_<b> and temporal_<b> (builders made here, one per name)."""

    def two(**kw: Any) -> TwoStream:
        kw.setdefault("dropout", dropout)
        return TwoStream(backbone, **kw)

    def one(stream: str) -> Any:
        def build(
            *,
            num_classes: int = 101,
            dropout: float = dropout,
            snippet_len: int = 1 if stream == "rgb" else 10,
            mean_subtraction: bool = True,
            backbone_weights: str | Path | None = None,
        ) -> SingleStream:
            channels = 3 if stream == "rgb" else 2 * snippet_len
            tower = build_tower(
                backbone,
                in_channels=channels,
                num_classes=num_classes,
                dropout=dropout,
                temporal=stream == "flow",
                backbone_weights=backbone_weights,
            )
            return SingleStream(
                tower, stream=stream, snippet_len=snippet_len, mean_subtraction=mean_subtraction
            )

        return build

    for name, fn, stream in (
        (f"two_stream_{backbone}", two, "both"),
        (f"spatial_{backbone}", one("rgb"), "rgb"),
        (f"temporal_{backbone}", one("flow"), "flow"),
    ):
        fn.__name__ = fn.__qualname__ = name
        fn.__doc__ = f"{name}: see actionrec.models.two_stream ({backbone} towers)."
        register_model(_card(stream, backbone))(fn)


for _backbone, _dropout in (("cnn_m2048", 0.5), ("r18", 0.5), ("r50", 0.5), ("vgg16", 0.5), ("small", 0.0)):
    _register(_backbone, _dropout)
