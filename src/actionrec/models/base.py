"""Interface of every model (as in timm): forward_features, forward_head, reset_classifier."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class VideoClassifier(nn.Module):
    """Base class: ``forward(x) = forward_head(forward_features(x))``.

    Subclasses set ``self.head`` to a module with ``reset(num_classes)`` (see
    :class:`actionrec.layers.head.ClassifierHead`) or override ``reset_classifier``.
    """

    num_classes: int
    head: nn.Module

    def forward_features(self, x: Any) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: Any) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes)  # type: ignore[operator]
