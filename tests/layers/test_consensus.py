"""Segmental consensus (TSN §3.1): exact values of every kind on a hand-made (B, K, D) input."""

from __future__ import annotations

import pytest
import torch

from actionrec.layers.consensus import SegmentConsensus

# B = 1, K = 3 segments, D = 2 classes
X = torch.tensor([[[1.0, 6.0], [4.0, 0.0], [7.0, 3.0]]])


def test_average_and_max() -> None:
    assert torch.equal(SegmentConsensus("avg")(X), torch.tensor([[4.0, 3.0]]))
    assert torch.equal(SegmentConsensus("max")(X), torch.tensor([[7.0, 6.0]]))


def test_top_k_averages_the_k_largest_per_class() -> None:
    assert torch.equal(SegmentConsensus("topk", k=2)(X), torch.tensor([[5.5, 4.5]]))
    assert torch.equal(SegmentConsensus("topk", k=1)(X), SegmentConsensus("max")(X))
    with pytest.raises(ValueError, match="at least k"):
        SegmentConsensus("topk", k=4)(X)


def test_weighted_starts_uniform_and_learns() -> None:
    c = SegmentConsensus("weighted", num_segments=3)
    assert torch.allclose(c(X), SegmentConsensus("avg")(X))
    with torch.no_grad():
        c.weight.copy_(torch.tensor([1.0, 0.0, 2.0]))
    assert torch.equal(c(X), torch.tensor([[15.0, 12.0]]))  # 1*(1, 6) + 2*(7, 3)
    c(X).sum().backward()
    assert torch.equal(c.weight.grad, X[0].sum(1))  # d/dw_k = sum over classes of x_k
    with pytest.raises(ValueError, match="built for 3 segments"):
        c(X[:, :2])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="consensus must be"):
        SegmentConsensus("median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_segments"):
        SegmentConsensus("weighted")
