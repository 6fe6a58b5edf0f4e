"""Convolutional two-stream fusion (Feichtenhofer, Pinz & Zisserman 2016, "Convolutional Two-Stream
Network Fusion for Video Action Recognition", arXiv 1604.06573).

§3.1 spatial fusion and §3.2 temporal fusion (:mod:`actionrec.layers.stream_fusion`), assembled as in
§3.5 / Fig. 4 and the released ``cnn_ucf101_fusion.m``: two towers (spatial on the centre RGB frame of
each snippet, temporal on the snippet's L stacked flows, as in :mod:`actionrec.models.two_stream`) run
per snippet up to their last convolution's ReLU (relu5_3 for VGG-16); the S snippets' maps are fused
at every step (``fusion=``: sum, max, concat, conv, bilinear; ``conv`` is the paper's final 3x3x3
Conv3D on the concatenation + ReLU, initialised as its code does), the fused maps are max-pooled
over time and space by a 3D pool5 (window min(5, S) x pool5's, stride 2 in time) and continue
through the spatial tower's remaining layers (fc6, fc7, classifier). The temporal tower is kept
whole, with the same 3D pool5 in place of its pool5, and has its own classifier.

Training: both losses, as the code does (``derOutputs`` on both towers' losses with weight 1): the
model returns ``step_logits`` (fused, temporal) with equal ``step_weights``. Test: "we average the
predictions of the two streams" (§3.5): the output is ``log((softmax(fused) + softmax(temporal)) / 2)``,
whose softmax is that average. Scores over the pooled time steps are averaged.

Where the fused width differs from the tower's (concat: 2C, bilinear: C*C), the spatial tower's first
layer after the fusion (fc6 for CNN-M / VGG; the classifier for ResNets) is rebuilt for it, randomly
initialised; bilinear features go straight to the classifier (no fc6 / fc7: C*C x 4096 would be huge).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from actionrec.layers.stream_fusion import FUSIONS, Pool3d, StreamFusion
from actionrec.models.base import VideoClassifier
from actionrec.models.registry import ModelCard, register_model
from actionrec.models.two_stream import (
    Tower,
    build_tower,
    centre_frames,
    read_state_dict,
    stack_flow,
    tower_output,
)

PAPER = "Convolutional Two-Stream Network Fusion for Video Action Recognition (Feichtenhofer et al., 2016)"
ARXIV = "1604.06573"


def _widen_neck(tower: Tower, width_in: int, dropout: float) -> None:
    """Make ``tower.neck`` take ``width_in`` channels (its first Linear rebuilt) and reset its width."""
    if width_in == tower.channels:
        return
    if width_in == tower.channels**2:  # bilinear: (N, C*C, 1, 1) -> classifier
        tower.neck, tower.num_features = nn.Sequential(nn.Flatten(1), nn.Dropout(dropout)), width_in
        return
    neck = copy.deepcopy(tower.neck)
    linears = [i for i, m in enumerate(neck) if isinstance(m, nn.Linear)]
    if linears:
        old = neck[linears[0]]
        scale = width_in // tower.channels
        neck[linears[0]] = nn.Linear(old.in_features * scale, old.out_features)
    else:
        tower.num_features = width_in  # a global-average neck: the width is the channel count
    tower.neck = neck


def _steps(maps: torch.Tensor, batch: int) -> torch.Tensor:
    """(B*S, C, h, w) per-snippet maps -> (B, C, S, h, w)."""
    return maps.reshape(batch, -1, *maps.shape[1:]).transpose(1, 2)


def _embed_steps(tower: Tower, maps: torch.Tensor) -> torch.Tensor:
    """(B, C, S', h, w) pooled maps -> (B, S', F) through the tower's neck at every step."""
    b, c, s, h, w = maps.shape
    x = tower.neck(maps.transpose(1, 2).reshape(b * s, c, h, w))  # (B*S', F)
    return x.reshape(b, s, -1)


class ConvFusionNet(VideoClassifier):
    """Two towers fused at their last conv; see the module docstring. Input ``{"rgb", "flow"}``."""

    def __init__(
        self,
        backbone: str,
        *,
        num_classes: int = 101,
        fusion: str = "conv",
        dropout: float = 0.5,
        snippet_len: int = 10,
        pool_frames: int = 5,
        kernel: tuple[int, int, int] = (3, 3, 3),
        init: str = "paper",
        mean_subtraction: bool = True,
        backbone_weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        state = read_state_dict(backbone_weights) if backbone_weights is not None else None
        kw: dict[str, Any] = {"num_classes": num_classes, "dropout": dropout, "backbone_weights": state}
        self.num_classes, self.fusion = num_classes, fusion
        self.snippet_len, self.mean_subtraction = snippet_len, mean_subtraction
        self.spatial = build_tower(backbone, in_channels=3, **kw)
        self.temporal = build_tower(backbone, in_channels=2 * snippet_len, temporal=True, **kw)
        self.fuse = StreamFusion(fusion, self.spatial.channels, kernel=tuple(kernel), init=init)  # type: ignore[arg-type]
        self.pool_fused = Pool3d.like(self.spatial.pool, frames=pool_frames)
        self.pool_temporal = Pool3d.like(self.temporal.pool, frames=pool_frames)
        self.spatial.pool = nn.Identity()  # replaced by the 3D pools (no parameters either way)
        self.temporal.pool = nn.Identity()
        _widen_neck(self.spatial, self.fuse.out_channels, dropout)
        self.spatial.reset(num_classes)

    def forward_features(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # type: ignore[override]
        """-> {"fused": (B, S', F), "temporal": (B, S', F)} at the 3D-pooled time steps."""
        b = x["rgb"].shape[0]
        rgb = centre_frames(x["rgb"], self.snippet_len)  # (B*S, 3, H, W)
        flow = stack_flow(x["flow"], self.snippet_len, mean_subtraction=self.mean_subtraction)
        a = _steps(self.spatial.features(rgb), b)  # (B, C, S, h, w)
        m = _steps(self.temporal.features(flow), b)
        fused = self.pool_fused(self.fuse(a, m))  # (B, C', S', h', w')
        return {
            "fused": _embed_steps(self.spatial, fused),
            "temporal": _embed_steps(self.temporal, self.pool_temporal(m)),
        }

    def forward_head(self, x: dict[str, torch.Tensor], pre_logits: bool = False) -> Any:  # type: ignore[override]
        if pre_logits:
            return torch.cat([x["fused"].mean(1), x["temporal"].mean(1)], dim=1)
        fused = self.spatial.fc(x["fused"]).mean(1)  # (B, S', F) -> (B, K)
        temporal = self.temporal.fc(x["temporal"]).mean(1)
        return tower_output(fused, temporal, training=self.training)

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.spatial.reset(num_classes)
        self.temporal.reset(num_classes)


def _card(backbone: str, fusion: str, snippet_len: int, snippets: int) -> ModelCard:
    small = backbone == "small"
    return ModelCard(
        paper=PAPER,
        arxiv=ARXIV,
        section="§3.1-3.2, §3.5 Fig. 4 (3D conv + 3D pooling fusion after relu5)",
        input_kind="two_stream",
        streams=("rgb", "flow"),
        num_frames=snippet_len * snippets,
        sampling="segment",
        snippet_len=snippet_len,
        crop_size=48 if small else 224,
        short_side=48 if small else 256,
        normalization="kinetics" if small else "imagenet",
        notes=f"{backbone} towers fused by {fusion}; {snippets} snippets of L = {snippet_len} flows "
        "(the paper: 5 frames at a random stride of 5-15, each with 10 flows: sampling mode segment, "
        "num_segments 5, snippet_len 10). Parameters measured; the paper's tables give no totals.",
    )


def _register(name: str, backbone: str, fusion: str, snippet_len: int, snippets: int, dropout: float) -> None:
    def build(
        *,
        num_classes: int = 101,
        fusion: str = fusion,
        dropout: float = dropout,
        snippet_len: int = snippet_len,
        **kw: Any,
    ) -> ConvFusionNet:
        return ConvFusionNet(
            backbone, num_classes=num_classes, fusion=fusion, dropout=dropout, snippet_len=snippet_len, **kw
        )

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{name}: {backbone} towers fused by {fusion} (see actionrec.models.conv_fusion)."
    register_model(_card(backbone, fusion, snippet_len, snippets))(build)


_register("conv_fusion_vgg16", "vgg16", "conv", 10, 5, 0.85)
_register("conv_fusion_cnn_m2048", "cnn_m2048", "conv", 10, 5, 0.85)
_register("conv_fusion_small", "small", "conv", 5, 4, 0.0)
for _kind in FUSIONS:
    _register(f"conv_fusion_small_{_kind}", "small", _kind, 5, 4, 0.0)
