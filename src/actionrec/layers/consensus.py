"""Segmental consensus: one video-level score from the scores of K snippets.

Wang et al. 2016, "Temporal Segment Networks: Towards Good Practices for Deep Action Recognition",
arXiv 1608.00859: §3.1 (the segmental consensus function G over the K snippet scores, eq. 1) and §4.2
(consensus functions compared: max, average, weighted average). ``topk`` (the mean of the k largest
snippet scores of each class) is the top-k pooling of the journal version (Wang et al. 2018, TPAMI,
arXiv 1705.02953, §3.2).

Every kind maps (B, K, D) -> (B, D) and acts on each of the D channels (class scores, or features)
on its own.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

ConsensusKind = Literal["avg", "max", "weighted", "topk"]
CONSENSUS_KINDS: tuple[ConsensusKind, ...] = ("avg", "max", "weighted", "topk")


class SegmentConsensus(nn.Module):
    """(B, K, D) snippet scores -> (B, D).

    ``avg``: mean over the K segments (TSN's default). ``max``: max over segments. ``weighted``: a
    learned weight per segment, ``sum_k w_k x_k``, initialised uniform (``w_k = 1 / K``, so it starts as
    ``avg``); it fixes K to ``num_segments``. ``topk``: mean of the ``k`` largest scores per channel.
    """

    def __init__(self, kind: ConsensusKind = "avg", *, num_segments: int | None = None, k: int = 1) -> None:
        super().__init__()
        if kind not in CONSENSUS_KINDS:
            raise ValueError(f"consensus must be one of {CONSENSUS_KINDS}, got {kind!r}")
        if kind == "weighted" and not num_segments:
            raise ValueError("weighted consensus needs num_segments (one learned weight per segment)")
        if kind == "topk" and k < 1:
            raise ValueError(f"topk consensus needs k >= 1, got {k}")
        self.kind = kind
        self.k = k
        self.weight: nn.Parameter | None = None
        if kind == "weighted":
            self.weight = nn.Parameter(torch.full((int(num_segments),), 1.0 / int(num_segments)))  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        segments = x.shape[1]
        if self.kind == "avg":
            return x.mean(1)
        if self.kind == "max":
            return x.amax(1)
        if self.kind == "topk":
            if self.k > segments:
                raise ValueError(f"topk consensus with k={self.k} needs at least k segments, got {segments}")
            return x.topk(self.k, dim=1).values.mean(1)  # (B, K, D) -> (B, k, D) -> (B, D)
        assert self.weight is not None
        if segments != self.weight.numel():
            raise ValueError(
                f"weighted consensus was built for {self.weight.numel()} segments, got {segments}"
            )
        return torch.einsum("bkd,k->bd", x, self.weight.to(x.dtype))  # (B, K, D) x (K,) -> (B, D)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}" + (f", k={self.k}" if self.kind == "topk" else "")
