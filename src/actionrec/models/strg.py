"""Space-Time Region Graphs of "Videos as Space-Time Region Graphs" (Wang & Gupta, ECCV 2018,
arXiv 1806.01810), §3 and §4.

A 3D ConvNet backbone gives a (B, C, T', H', W') feature map; every object box of the clip becomes a
graph node: RoIAlign 7 x 7 on its feature frame, max-pooled to one C-vector (§3.1). Nodes are projected
to ``gcn_width`` and go through ``gcn_layers`` graph convolutions ``Z = sum_g G_g X W_g`` (§3.4)
over the similarity graph (§3.2, a softmax of ``phi(x_i)^T phi'(x_j)`` over all nodes of the clip) and
the spatial-temporal graphs (§3.3, IoU of boxes in neighbouring frames, forward and backward, rows
normalised); the graph blocks are :mod:`actionrec.layers.region_graph`. The classifier reads the
concatenation of the average-pooled backbone features and the mean of the valid nodes (§3.4).

The branches are builder arguments, so the paper's ablations (backbone alone, + similarity,
+ spatial-temporal, + both) are recipes: ``similarity=False`` / ``spatial_temporal=False``; with both off
the model is the backbone and its classifier. The graph's last projection starts at zero
(``zero_init_graph``): a fresh graph branch adds exactly nothing, as when fine-tuning the graph on a
trained backbone (§4, the backbone is trained first), and "graph output zeroed == backbone alone" holds.

Input: ``{"rgb": (B, 3, T, H, W), "boxes": (B, T, N, 4), "boxes_mask": (B, T, N)}`` with boxes in
pixels of the clip (what the dataset gives for the card's ``("rgb", "boxes")`` streams). Frames without
boxes and clips without any are fine (the graph then adds zeros). A plain (B, 3, T, H, W) clip is read
as one whole-frame box per frame, so the model also runs where no box file exists.

Departures from the paper: its I3D keeps 16 feature frames at 14 x 14 (§4.1); the zoo's ``i3d_r50``
strides time and space as the non-local paper does (32 x 224^2 -> 4 x 7 x 7), so each feature frame
takes the boxes of the input frame at the centre of its span. The paper's detector (an RPN trained on
COCO, 50 boxes a frame unconfirmed) is ``actionrec boxes``; the residual connection in each graph layer
and the 1/sqrt(d) logit scale are ours.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from actionrec.layers.head import ClassifierHead
from actionrec.layers.region_graph import RegionGraphConv, frame_boxes, iou_adjacency, roi_node_features
from actionrec.models.base import VideoClassifier
from actionrec.models.registry import ModelCard, register_model
from actionrec.models.resnet3d import VideoResNet, small_config
from actionrec.models.resnet_nonlocal import NONLOCAL_5, ResNet3dNonLocal

StrgInput = Tensor | Mapping[str, Tensor]


class RegionGraphBranch(nn.Module):
    """Boxes on a feature map -> (B, width) mean of the valid graph nodes after ``layers`` graph convs."""

    def __init__(
        self,
        in_features: int,
        *,
        width: int,
        layers: int,
        similarity: bool,
        spatial_temporal: bool,
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        self.spatial_temporal = spatial_temporal
        self.node_proj = nn.Linear(in_features, width)
        self.layers = nn.ModuleList(
            RegionGraphConv(width, similarity=similarity, spatial_temporal=spatial_temporal)
            for _ in range(layers)
        )
        self.out = nn.Linear(width, width)
        if zero_init:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, features: Tensor, boxes: Tensor, mask: Tensor, input_size: tuple[int, int]) -> Tensor:
        boxes, mask = frame_boxes(boxes, mask, features.shape[2])  # (B, T', N, 4), (B, T', N)
        nodes = roi_node_features(features, boxes, input_size)  # (B, T', N, C)
        keep = mask[..., None].to(nodes.dtype)  # (B, T', N, 1)
        x = self.node_proj(nodes) * keep  # (B, T', N, D)
        front, back = iou_adjacency(boxes, mask) if self.spatial_temporal else (None, None)
        for layer in self.layers:
            x = layer(x, mask, front, back)
        x = self.out(x) * keep
        return x.sum((1, 2)) / keep.sum((1, 2)).clamp(min=1)  # (B, T', N, D) -> (B, D)


class STRG(VideoClassifier):
    """A backbone with ``forward_features`` -> (B, C, T', H', W') plus an optional region-graph branch."""

    def __init__(
        self,
        backbone: nn.Module,
        num_features: int,
        *,
        num_classes: int = 400,
        similarity: bool = True,
        spatial_temporal: bool = True,
        gcn_layers: int = 3,
        gcn_width: int = 512,
        zero_init_graph: bool = True,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if gcn_layers < 1 or gcn_width < 1:
            raise ValueError(f"need gcn_layers >= 1 and gcn_width >= 1, got {gcn_layers} and {gcn_width}")
        self.num_classes = num_classes
        self.backbone = backbone
        self.graph = (
            RegionGraphBranch(
                num_features,
                width=gcn_width,
                layers=gcn_layers,
                similarity=similarity,
                spatial_temporal=spatial_temporal,
                zero_init=zero_init_graph,
            )
            if similarity or spatial_temporal
            else None
        )
        self.head = ClassifierHead(
            num_features + (gcn_width if self.graph else 0), num_classes, dropout=dropout
        )

    @staticmethod
    def unpack(x: StrgInput) -> tuple[Tensor, Tensor, Tensor]:
        """The clip, (B, T, N, 4) boxes (N >= 1) and their (B, T, N) mask from the model's input."""
        if isinstance(x, Tensor):  # no boxes: one whole-frame box per frame
            b, _, t, h, w = x.shape
            boxes = x.new_tensor([0.0, 0.0, float(w), float(h)]).expand(b, t, 1, 4)
            return x, boxes, torch.ones(b, t, 1, dtype=torch.bool, device=x.device)
        clip, boxes = x["rgb"], x["boxes"]
        mask = x.get("boxes_mask")
        mask = (
            torch.ones(boxes.shape[:3], dtype=torch.bool, device=boxes.device)
            if mask is None
            else mask.bool()
        )
        if boxes.shape[2] == 0:  # no box in the whole batch: one padded slot keeps the shapes non-empty
            boxes = boxes.new_zeros(*boxes.shape[:2], 1, 4)
            mask = mask.new_zeros(*mask.shape[:2], 1)
        return clip, boxes, mask

    def forward_features(self, x: StrgInput) -> Tensor:
        """Input (see the module docstring) -> (B, C [+ gcn_width]) pooled backbone [and graph] features."""
        clip, boxes, mask = self.unpack(x)
        features = self.backbone.forward_features(clip)  # (B, C, T', H', W')
        pooled = features.flatten(2).mean(-1)  # (B, C, T', H', W') -> (B, C)
        if self.graph is None:
            return pooled
        graph = self.graph(features, boxes, mask, (clip.shape[-2], clip.shape[-1]))  # (B, gcn_width)
        return torch.cat([pooled, graph.to(pooled.dtype)], 1)


def _card(**kw: object) -> ModelCard:
    return ModelCard(
        paper="Videos as Space-Time Region Graphs",
        arxiv="1806.01810",
        section="§3, §4.1",
        streams=("rgb", "boxes"),
        **kw,  # type: ignore[arg-type]
    )


_R50_CARD = {
    "num_frames": 32,
    "frame_interval": 2,
    "crop_size": 224,
    "short_side": 256,
    "normalization": "imagenet",
    "published_input": "3x32x224x224",
    "published_dataset": "Something-Something v1",
}


def _r50(
    *,
    num_classes: int,
    nonlocal_blocks: tuple[tuple[int, ...], ...],
    similarity: bool,
    spatial_temporal: bool,
    gcn_layers: int,
    gcn_width: int,
    zero_init_graph: bool,
    dropout: float,
) -> STRG:
    backbone = ResNet3dNonLocal(num_classes=0, arch="i3d", nonlocal_blocks=nonlocal_blocks, dropout=0.0)
    return STRG(
        backbone,
        2048,
        num_classes=num_classes,
        similarity=similarity,
        spatial_temporal=spatial_temporal,
        gcn_layers=gcn_layers,
        gcn_width=gcn_width,
        zero_init_graph=zero_init_graph,
        dropout=dropout,
    )


@register_model(
    _card(
        **_R50_CARD,
        published_top1=43.3,
        notes=(
            "I3D ResNet-50 (i3d_r50) + similarity and spatial-temporal graphs, 3 GCN layers of 512 "
            "(unconfirmed in the paper). Published: 43.3 top-1 on Something-Something v1 (I3D + joint "
            "GCN; I3D alone 41.6). Measured: 33.50M params, 33.15 GMACs at 3x32x224x224 "
            "(RoIAlign not counted), 400 classes."
        ),
    )
)
def strg_i3d_r50(
    *,
    num_classes: int = 400,
    similarity: bool = True,
    spatial_temporal: bool = True,
    gcn_layers: int = 3,
    gcn_width: int = 512,
    zero_init_graph: bool = True,
    dropout: float = 0.5,
) -> STRG:
    return _r50(
        num_classes=num_classes,
        nonlocal_blocks=((), (), (), ()),
        similarity=similarity,
        spatial_temporal=spatial_temporal,
        gcn_layers=gcn_layers,
        gcn_width=gcn_width,
        zero_init_graph=zero_init_graph,
        dropout=dropout,
    )


@register_model(
    _card(
        **_R50_CARD,
        published_top1=46.1,
        notes=(
            "Non-local I3D ResNet-50 (i3d_r50_nl, 5 blocks) + both graphs. Published: 46.1 top-1 on "
            "Something-Something v1 (NL I3D + joint GCN). Measured: "
            "40.85M params, 41.28 GMACs at 3x32x224x224 (RoIAlign not counted), 400 classes."
        ),
    )
)
def strg_i3d_r50_nl(
    *,
    num_classes: int = 400,
    similarity: bool = True,
    spatial_temporal: bool = True,
    gcn_layers: int = 3,
    gcn_width: int = 512,
    zero_init_graph: bool = True,
    dropout: float = 0.5,
) -> STRG:
    return _r50(
        num_classes=num_classes,
        nonlocal_blocks=NONLOCAL_5,
        similarity=similarity,
        spatial_temporal=spatial_temporal,
        gcn_layers=gcn_layers,
        gcn_width=gcn_width,
        zero_init_graph=zero_init_graph,
        dropout=dropout,
    )


@register_model(
    _card(
        num_frames=8,
        crop_size=48,
        short_side=48,
        normalization="kinetics",
        notes=(
            "Not in the paper: the r2plus1d_small backbone (widths 16-128, no temporal stride, 3 x 3 "
            "last features at 48 px) with two GCN layers of 64, for CPU experiments on the synthetic "
            "benchmark (its box files hold the ground-truth objects). Measured: 1.03M params, 0.22 GMACs "
            "at 3x8x48x48 (RoIAlign not counted), 400 classes."
        ),
    )
)
def strg_small(
    *,
    num_classes: int = 400,
    similarity: bool = True,
    spatial_temporal: bool = True,
    gcn_layers: int = 2,
    gcn_width: int = 64,
    zero_init_graph: bool = True,
    dropout: float = 0.0,
) -> STRG:
    backbone = VideoResNet(small_config(), num_classes=0)
    return STRG(
        backbone,
        backbone.num_features,
        num_classes=num_classes,
        similarity=similarity,
        spatial_temporal=spatial_temporal,
        gcn_layers=gcn_layers,
        gcn_width=gcn_width,
        zero_init_graph=zero_init_graph,
        dropout=dropout,
    )
