"""Clip-consistency loss (actionrec.layers.consistency): zero iff the parts agree, symmetric, bounded."""

from __future__ import annotations

import math

import pytest
import torch

from actionrec.layers.consistency import clip_consistency, js_divergence, temporal_parts


def test_parts_cover_the_clip_in_order() -> None:
    x = torch.arange(7.0).view(1, 1, 7, 1, 1)
    parts = temporal_parts(x, 3)
    assert [p.flatten().tolist() for p in parts] == [[0.0, 1.0], [2.0, 3.0, 4.0], [5.0, 6.0]]
    with pytest.raises(ValueError, match="parts"):
        temporal_parts(x, 8)


def test_js_divergence_values() -> None:
    same = torch.randn(1, 4, 6).expand(3, 4, 6)
    assert js_divergence(same).abs().item() < 1e-6
    a = torch.tensor([[[20.0, -20.0]]])
    b = torch.tensor([[[-20.0, 20.0]]])
    # two one-hot distributions on different classes: the JS divergence is log 2, its upper bound
    assert math.isclose(js_divergence(torch.cat([a, b])).item(), math.log(2), rel_tol=1e-4)
    x = torch.randn(2, 5, 4)
    assert torch.allclose(js_divergence(x), js_divergence(x.flip(0)))


def test_clip_consistency_pulls_parts_together() -> None:
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 4)
    features = torch.randn(2, 8, 4, 3, 3, requires_grad=True)

    def classify(part: torch.Tensor) -> torch.Tensor:
        return head(part.mean((2, 3, 4)))

    loss = clip_consistency(features, classify, parts=2)
    assert loss.item() > 0
    loss.backward()
    assert features.grad is not None and features.grad.abs().sum() > 0
    still = features.detach()[:, :, :1].expand(-1, -1, 4, -1, -1)  # the same frame four times
    assert clip_consistency(still, classify, parts=2).item() < 1e-7
