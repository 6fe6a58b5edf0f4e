"""TensorFlow "SAME" padding: amounts, convolution against an explicitly padded input, -inf max-pooling."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from actionrec.layers.same_pad import Conv3dSame, MaxPool3dSame, same_padding


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [
        (224, 7, 2, (2, 3)),  # I3D's first conv: odd element at the end
        (250, 7, 2, (2, 3)),
        (56, 3, 1, (1, 1)),
        (56, 1, 1, (0, 0)),
        (5, 2, 2, (0, 1)),
        (8, 3, 2, (0, 1)),
        (7, 3, 2, (1, 1)),
        (1, 3, 2, (1, 1)),
    ],
)
def test_same_padding_amounts(size: int, kernel: int, stride: int, expected: tuple[int, int]) -> None:
    assert same_padding(size, kernel, stride) == expected


def _zero_embedded(x: torch.Tensor, pads: list[tuple[int, int]]) -> torch.Tensor:
    """Place x inside a zero tensor grown by (before, after) per (T, H, W) axis."""
    (t0, t1), (h0, h1), (w0, w1) = pads
    b, c, t, h, w = x.shape
    out = x.new_zeros(b, c, t + t0 + t1, h + h0 + h1, w + w0 + w1)
    out[:, :, t0 : t0 + t, h0 : h0 + h, w0 : w0 + w] = x
    return out


@pytest.mark.parametrize(
    ("shape", "kernel", "stride"),
    [
        ((6, 9, 10), (3, 7, 7), (2, 2, 2)),
        ((5, 8, 8), (3, 3, 3), (1, 1, 1)),
        ((4, 7, 6), (2, 3, 1), (2, 2, 1)),
    ],
)
def test_conv_matches_explicit_asymmetric_padding(
    shape: tuple[int, int, int], kernel: tuple[int, int, int], stride: tuple[int, int, int]
) -> None:
    torch.manual_seed(0)
    conv = Conv3dSame(2, 3, kernel, stride=stride, bias=True)
    x = torch.randn(1, 2, *shape)
    pads = [same_padding(n, k, s) for n, k, s in zip(shape, kernel, stride)]
    expected = F.conv3d(_zero_embedded(x, pads), conv.weight, conv.bias, stride)
    out = conv(x)
    assert out.shape[2:] == tuple(math.ceil(n / s) for n, s in zip(shape, stride))
    torch.testing.assert_close(out, expected)


def test_maxpool_padding_never_wins() -> None:
    x = torch.full((1, 1, 4, 5, 5), -5.0)
    x[0, 0, -1, -1, -1] = -1.0
    out = MaxPool3dSame((3, 3, 3), (2, 2, 2))(x)
    assert out.shape == (1, 1, 2, 3, 3)
    assert out.max().item() == -1.0 and out.min().item() == -5.0  # zero padding would give 0 at the borders


def test_maxpool_matches_explicit_padding() -> None:
    x = torch.randn(2, 3, 7, 9, 8)
    pads = [same_padding(n, k, s) for n, k, s in zip(x.shape[2:], (2, 3, 3), (2, 2, 2))]
    padded = _zero_embedded(x, pads)
    mask = _zero_embedded(torch.ones_like(x), pads)
    padded = padded.masked_fill(mask == 0, float("-inf"))
    torch.testing.assert_close(
        MaxPool3dSame((2, 3, 3), (2, 2, 2))(x), F.max_pool3d(padded, (2, 3, 3), (2, 2, 2))
    )
