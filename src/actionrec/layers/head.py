"""Classification head: global average pool over (T, H, W), dropout, linear."""

from __future__ import annotations

import torch
from torch import nn


class ClassifierHead(nn.Module):
    """(B, C, T, H, W) or (B, C) features -> (B, num_classes) logits."""

    def __init__(self, in_features: int, num_classes: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_features = in_features
        self.dropout = nn.Dropout(dropout)
        self.fc: nn.Module = nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if x.ndim > 2:
            x = x.flatten(2).mean(-1)  # (B, C, T, H, W) -> (B, C)
        if pre_logits:
            return x
        return self.fc(self.dropout(x))

    def reset(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.in_features, num_classes) if num_classes > 0 else nn.Identity()
