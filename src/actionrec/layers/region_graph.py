"""Region graphs of "Videos as Space-Time Region Graphs" (Wang & Gupta, ECCV 2018, arXiv 1806.01810).

The pieces of §3, each usable alone:

- :func:`frame_boxes` picks, for each frame of the backbone's last feature map, the boxes of one input
  frame: the backbone strides time (32 input frames -> 4 feature frames for the I3D ResNet-50), so
  feature frame ``t`` of ``T'`` takes the input frame at the centre of the frames it covers,
  ``floor((t + 0.5) * T / T')``. Boxes of different frames have no correspondence, so they are chosen,
  not averaged (the paper runs its detector on every other frame and so has one frame per feature frame).
- :func:`roi_node_features` (§3.1): RoIAlign 7 x 7 of each box on its feature frame, max-pooled to one
  vector per box; boxes given in input pixels are scaled to the feature map (its size over the clip's,
  per axis), so any backbone stride works.
- :func:`iou_adjacency` (§3.3, spatial-temporal graph): ``G_front[t](i, j) = IoU(box i at t, box j at
  t + 1)`` normalised over ``j`` to rows of sum 1, and ``G_back[t]`` the same from frame ``t + 1`` back
  to ``t``; padded boxes have no edges, a box overlapping nothing has a zero row.
- :func:`masked_softmax` / :class:`SimilarityGraph` (§3.2): ``G(i, j) = softmax_j(phi(x_i)^T
  phi'(x_j))`` over every valid node of the clip (scaled by ``1/sqrt(d)``, a choice of ours for stable
  logits); padded nodes are never attended, a row with no valid node is zero (never NaN).
- :class:`RegionGraphConv` (§3.4): ``Z = sum_g G_g X W_g`` over the graphs switched on, then
  LayerNorm and ReLU (as the paper), with a residual connection (ours; ``residual=False`` drops it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import roi_align


def frame_boxes(boxes: Tensor, mask: Tensor, feature_frames: int) -> tuple[Tensor, Tensor]:
    """(B, T, N, 4) boxes and (B, T, N) mask -> those of the ``feature_frames`` frames each feature
    frame stands for (the centre input frame of its span), (B, T', N, 4) and (B, T', N)."""
    t_in = boxes.shape[1]
    index = ((torch.arange(feature_frames, device=boxes.device) + 0.5) * t_in / feature_frames).long()
    index = index.clamp_(max=t_in - 1)
    return boxes[:, index], mask[:, index]


def roi_node_features(
    features: Tensor, boxes: Tensor, input_size: tuple[int, int], *, output_size: int = 7
) -> Tensor:
    """One vector per box: features (B, C, T', H', W') and boxes (B, T', N, 4) ``x1, y1, x2, y2`` in
    pixels of an ``input_size`` (H, W) clip -> (B, T', N, C), RoIAlign ``output_size``^2 then max."""
    b, c, t, h, w = features.shape
    n = boxes.shape[2]
    scale = boxes.new_tensor([w / input_size[1], h / input_size[0]] * 2)
    maps = features.transpose(1, 2).reshape(b * t, c, h, w).float()  # (B, C, T', H', W') -> (B T', C, H', W')
    frame_of_box = torch.arange(b * t, device=boxes.device).repeat_interleave(n)  # (B T' N,)
    rois = torch.cat([frame_of_box[:, None].to(maps.dtype), (boxes.float() * scale).reshape(-1, 4)], 1)
    pooled = roi_align(maps, rois, output_size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    # (B T' N, C, 7, 7) -> (B T' N, C) -> (B, T', N, C)
    return pooled.amax(dim=(-2, -1)).reshape(b, t, n, c).to(features.dtype)


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise IoU of (..., N, 4) and (..., M, 4) boxes -> (..., N, M); boxes without area give 0."""
    area_a = (a[..., 2] - a[..., 0]).clamp(min=0) * (a[..., 3] - a[..., 1]).clamp(min=0)  # (..., N)
    area_b = (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)  # (..., M)
    top_left = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])  # (..., N, M, 2)
    bottom_right = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)  # (..., N, M)
    union = area_a[..., :, None] + area_b[..., None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def row_normalize(graph: Tensor) -> Tensor:
    """Rows scaled to sum 1; rows of zeros stay zero."""
    total = graph.sum(-1, keepdim=True)
    return torch.where(total > 0, graph / total.clamp(min=1e-12), torch.zeros_like(graph))


def iou_adjacency(boxes: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Spatial-temporal graphs of (B, T, N, 4) boxes with a (B, T, N) mask: ``front`` (B, T-1, N, N)
    from frame t's boxes (rows) to frame t+1's (columns), ``back`` (B, T-1, N, N) from frame t+1's to
    frame t's, each IoU-weighted and row-normalised; padded boxes neither send nor receive edges."""
    iou = box_iou(boxes[:, :-1], boxes[:, 1:])  # (B, T-1, N, N): rows at t, columns at t+1
    valid = mask[:, :-1, :, None] & mask[:, 1:, None, :]  # (B, T-1, N, N)
    iou = iou * valid
    return row_normalize(iou), row_normalize(iou.transpose(-1, -2))


def masked_softmax(logits: Tensor, key_mask: Tensor) -> Tensor:
    """Softmax over the last axis of (..., M, M) ``logits`` restricted to keys where the (..., M)
    ``key_mask`` holds; masked keys get weight 0 and a row of no valid key is all zeros."""
    keep = key_mask[..., None, :]  # (..., 1, M)
    logits = logits.masked_fill(~keep, torch.finfo(logits.dtype).min)
    return torch.softmax(logits, dim=-1) * keep  # an all-masked row is uniform before, zero after


class SimilarityGraph(nn.Module):
    """``G = softmax_j(phi(x_i)^T phi'(x_j) / sqrt(d))``: (B, M, D) nodes, (B, M) mask -> (B, M, M)."""

    def __init__(self, dim: int, embed_dim: int | None = None) -> None:
        super().__init__()
        embed_dim = embed_dim or dim
        self.phi = nn.Linear(dim, embed_dim, bias=False)
        self.phi_prime = nn.Linear(dim, embed_dim, bias=False)
        self.scale = 1.0 / math.sqrt(embed_dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        logits = (
            self.phi(x) @ self.phi_prime(x).transpose(1, 2) * self.scale
        )  # (B, M, d) x (B, d, M) => (B, M, M)
        return masked_softmax(logits, mask)


class RegionGraphConv(nn.Module):
    """One graph convolution ``Z = sum_g G_g X W_g`` over the similarity graph and/or the front and
    back spatial-temporal graphs, then LayerNorm, ReLU and (optionally) the residual ``X + Z``.

    Nodes are (B, T, N, D) with a (B, T, N) mask; ``front`` / ``back`` come from :func:`iou_adjacency`.
    Padded nodes leave the layer as zeros.
    """

    def __init__(
        self, dim: int, *, similarity: bool = True, spatial_temporal: bool = True, residual: bool = True
    ) -> None:
        super().__init__()
        if not (similarity or spatial_temporal):
            raise ValueError("a region graph conv needs the similarity or the spatial-temporal graph")
        self.similarity = SimilarityGraph(dim) if similarity else None
        self.w_sim = nn.Linear(dim, dim, bias=False) if similarity else None
        self.w_front = nn.Linear(dim, dim, bias=False) if spatial_temporal else None
        self.w_back = nn.Linear(dim, dim, bias=False) if spatial_temporal else None
        self.norm = nn.LayerNorm(dim)
        self.residual = residual

    def forward(
        self, x: Tensor, mask: Tensor, front: Tensor | None = None, back: Tensor | None = None
    ) -> Tensor:
        b, t, n, d = x.shape
        z = torch.zeros_like(x)
        if self.similarity is not None and self.w_sim is not None:
            flat, flat_mask = x.reshape(b, t * n, d), mask.reshape(b, t * n)  # (B, T, N, D) -> (B, TN, D)
            graph = self.similarity(flat, flat_mask)  # (B, TN, TN)
            z = z + (graph @ self.w_sim(flat)).reshape(b, t, n, d)  # (B, TN, TN) x (B, TN, D) => (B, TN, D)
        if self.w_front is not None and self.w_back is not None:  # (T = 1: no edges, zero messages)
            if front is None or back is None:
                raise ValueError("the spatial-temporal graph needs the front and back adjacency")
            to_next = front @ self.w_front(x[:, 1:])  # (B, T-1, N, N) x (B, T-1, N, D) => (B, T-1, N, D)
            to_prev = back @ self.w_back(x[:, :-1])  # messages into frames 1..T-1 from their previous frame
            z = (
                z + F.pad(to_next, (0, 0, 0, 0, 0, 1)) + F.pad(to_prev, (0, 0, 0, 0, 1, 0))
            )  # back to T frames
        z = F.relu(self.norm(z))
        out = x + z if self.residual else z
        return out * mask[..., None]
