"""Classification head: pool the features to (B, D), dropout, linear.

Convolutional backbones hand over feature maps (B, C, T, H, W), averaged over (T, H, W); transformers
hand over tokens (B, N, D), pooled by their CLS token (the first one, ``token_pool="cls"``) or by the
mean of all tokens (``token_pool="mean"``); already pooled (B, C) features pass straight through.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

TokenPool = Literal["cls", "mean"]
TOKEN_POOLS: tuple[TokenPool, ...] = ("cls", "mean")


class ClassifierHead(nn.Module):
    """(B, C, T, H, W), (B, N, D) tokens or (B, C) features -> (B, num_classes) logits.

    A 3-dimensional input is always read as tokens (B, N, D), pooled as ``token_pool`` says; an input
    with more dimensions is a channels-first feature map, averaged over everything after C.
    """

    def __init__(
        self, in_features: int, num_classes: int, *, dropout: float = 0.0, token_pool: TokenPool = "mean"
    ) -> None:
        super().__init__()
        if token_pool not in TOKEN_POOLS:
            raise ValueError(f"token_pool must be one of {TOKEN_POOLS}, got {token_pool!r}")
        self.in_features = in_features
        self.token_pool = token_pool
        self.dropout = nn.Dropout(dropout)
        self.fc: nn.Module = nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) features of ``x``: the CLS token or token mean of (B, N, D), the mean of a feature map."""
        if x.ndim == 3:
            return x[:, 0] if self.token_pool == "cls" else x.mean(1)
        if x.ndim > 3:
            return x.flatten(2).mean(-1)  # (B, C, T, H, W) -> (B, C)
        return x

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool(x)
        if pre_logits:
            return x
        return self.fc(self.dropout(x))

    def reset(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.in_features, num_classes) if num_classes > 0 else nn.Identity()
