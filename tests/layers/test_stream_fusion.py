"""Spatial and temporal fusion of two streams (Feichtenhofer et al. 2016, §3.1-3.2) on hand-made maps."""

from __future__ import annotations

import pytest
import torch

from actionrec.layers.stream_fusion import (
    ConvFusion,
    Pool3d,
    StreamFusion,
    gaussian_kernel3d,
    log_mean_softmax,
)

A = torch.tensor([1.0, -2.0, 3.0]).view(1, 3, 1, 1, 1).expand(1, 3, 2, 2, 2).contiguous()
B = torch.tensor([0.5, 4.0, -1.0]).view(1, 3, 1, 1, 1).expand(1, 3, 2, 2, 2).contiguous()


def _channels(x: torch.Tensor) -> list[float]:
    return x[0, :, 0, 0, 0].tolist()


def test_sum_max_concat_exact() -> None:
    assert _channels(StreamFusion("sum", 3)(A, B)) == [1.5, 2.0, 2.0]
    assert _channels(StreamFusion("max", 3)(A, B)) == [1.0, 4.0, 3.0]
    cat = StreamFusion("concat", 3)
    assert _channels(cat(A, B)) == [1.0, -2.0, 3.0, 0.5, 4.0, -1.0] and cat.out_channels == 6


def test_bilinear_is_the_outer_product_averaged_over_locations() -> None:
    a, b = torch.randn(2, 3, 4, 5, 5), torch.randn(2, 3, 4, 5, 5)
    out = StreamFusion("bilinear", 3)(a, b)
    assert out.shape == (2, 9, 4, 1, 1)
    want = (a[1, 2, 3] * b[1, 0, 3]).mean()  # channel pair (2, 0) at t = 3
    assert out[1, 2 * 3 + 0, 3, 0, 0].item() == pytest.approx(want.item(), abs=1e-5)


def test_conv_fusion_sum_init_is_the_sum() -> None:
    conv = ConvFusion(3, kernel=(3, 3, 3), init="sum")
    a, b = torch.randn(2, 3, 4, 5, 5), torch.randn(2, 3, 4, 5, 5)
    torch.testing.assert_close(conv(a, b), a + b)


def test_conv_fusion_paper_init_weights_a_quarter_and_b_three_quarters() -> None:
    g = gaussian_kernel3d((3, 3, 3))
    assert g.sum().item() == pytest.approx(1.0) and g.argmax().item() == 13  # centre tap largest
    conv = ConvFusion(3, kernel=(3, 3, 3), init="paper")
    a = torch.full((1, 3, 5, 5, 5), 2.0)
    b = torch.full((1, 3, 5, 5, 5), 4.0)
    out = conv(a, b)[0, :, 2, 2, 2]  # interior: the whole window sees constant input
    torch.testing.assert_close(out, torch.full((3,), 0.25 * 2 + 0.75 * 4))
    w = conv.conv.weight
    assert w[0, 1].abs().sum() == 0 and w[0, 3].sum().item() == pytest.approx(0.75)
    assert conv.conv.bias.abs().sum() == 0
    relu = StreamFusion("conv", 3, init="sum")  # the ReLU after the conv
    assert _channels(relu(A, B)) == [1.5, 2.0, 2.0]


def test_pool3d_replaces_pool5() -> None:
    pool = Pool3d.like(torch.nn.MaxPool2d(2, 2), frames=5)
    x = torch.zeros(1, 1, 5, 4, 4)
    x[0, 0, 3, 1, 1] = 7.0
    out = pool(x)
    assert out.shape == (1, 1, 1, 2, 2) and out[0, 0, 0, 0, 0] == 7.0
    assert pool(torch.randn(1, 2, 3, 4, 4)).shape == (1, 2, 1, 2, 2)  # window clipped to T


def test_log_mean_softmax_is_the_average_of_softmaxes() -> None:
    s, t = torch.randn(4, 6), torch.randn(4, 6) * 5
    fused = log_mean_softmax(s, t)
    torch.testing.assert_close(fused.softmax(-1), (s.softmax(-1) + t.softmax(-1)) / 2)
