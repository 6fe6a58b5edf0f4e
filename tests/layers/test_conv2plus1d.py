"""The (2+1)D convolution: the paper's width rule, shapes, parameter parity and torchvision's layout."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torchvision.models.video.resnet import Conv2Plus1D as TvConv2Plus1D

from actionrec.layers.conv2plus1d import Conv2Plus1D, as_stride3, mid_channels


def _conv_params(m: nn.Module) -> int:
    return sum(p.numel() for mod in m.modules() if isinstance(mod, nn.Conv3d) for p in mod.parameters())


@pytest.mark.parametrize(
    ("n_in", "n_out", "expected"),
    # Middle widths of the released Caffe2 R(2+1)D-18 (one per conv, as its training log prints them).
    [
        (64, 64, 144),
        (64, 128, 230),
        (128, 128, 288),
        (128, 256, 460),
        (256, 256, 576),
        (256, 512, 921),
        (512, 512, 1152),
    ],
)
def test_mid_channels_matches_released_models(n_in: int, n_out: int, expected: int) -> None:
    assert mid_channels(n_in, n_out) == expected


def test_mid_channels_other_kernels() -> None:
    # t=3, d=7 from 3 to 64 channels: floor(3*49*3*64 / (49*3 + 3*64)) = floor(28224 / 339) = 83
    assert mid_channels(3, 64, temporal_kernel=3, spatial_kernel=7) == 83
    assert mid_channels(1, 1, temporal_kernel=1, spatial_kernel=1) == 1  # never 0


@settings(max_examples=40, deadline=None)
@given(
    n_in=st.integers(1, 96),
    n_out=st.integers(1, 96),
    t=st.sampled_from([1, 3, 5]),
    d=st.sampled_from([1, 3, 5]),
)
def test_params_match_full_3d_conv(n_in: int, n_out: int, t: int, d: int) -> None:
    """§3.5: M is the largest width whose two convs hold no more weights than the t x d x d conv."""
    factorised = _conv_params(Conv2Plus1D(n_in, n_out, temporal_kernel=t, spatial_kernel=d))
    full = n_in * n_out * t * d * d
    per_mid = d * d * n_in + t * n_out  # weights one more middle channel would add
    assert (
        full - per_mid < factorised <= full
        or mid_channels(n_in, n_out, temporal_kernel=t, spatial_kernel=d) == 1
    )


@pytest.mark.parametrize("stride", [1, 2, (1, 2, 2), (2, 1, 1)])
@pytest.mark.parametrize(("t", "d"), [(3, 3), (1, 3), (5, 7)])
def test_output_shape_equals_full_3d_conv(stride: int | tuple[int, int, int], t: int, d: int) -> None:
    x = torch.randn(2, 4, 7, 9, 10)
    ours = Conv2Plus1D(4, 6, stride=stride, temporal_kernel=t, spatial_kernel=d)
    full = nn.Conv3d(4, 6, (t, d, d), stride=as_stride3(stride), padding=(t // 2, d // 2, d // 2))
    assert ours(x).shape == full(x).shape


def test_temporal_kernel_one_keeps_frames_apart() -> None:
    conv = Conv2Plus1D(3, 5, temporal_kernel=1).eval()
    x = torch.randn(1, 3, 4, 8, 8)
    y = x.clone()
    y[:, :, 2] += 1.0
    with torch.no_grad():
        diff = (conv(x) - conv(y)).abs().amax(dim=(0, 1, 3, 4))  # (B, C, T, H, W) -> (T,)
    assert diff[2] > 0 and torch.all(diff[[0, 1, 3]] == 0)


def test_temporal_kernel_mixes_neighbouring_frames() -> None:
    conv = Conv2Plus1D(3, 5).eval()
    x = torch.randn(1, 3, 5, 8, 8)
    y = x.clone()
    y[:, :, 2] += 1.0
    with torch.no_grad():
        diff = (conv(x) - conv(y)).abs().amax(dim=(0, 1, 3, 4))  # (B, C, T, H, W) -> (T,)
    assert torch.all(diff[1:4] > 0) and diff[0] == 0 and diff[4] == 0


def test_loads_torchvision_layout_and_matches() -> None:
    torch.manual_seed(0)
    tv = TvConv2Plus1D(8, 16, 20, stride=2).eval()
    bn = tv[1]
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2.0)
    ours = Conv2Plus1D(8, 16, 20, stride=2).eval()
    ours.load_state_dict(tv.state_dict())
    x = torch.randn(2, 8, 6, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x), rtol=0, atol=1e-6)
    assert ours.mid_channels == 20


def test_stride_goes_to_the_matching_conv() -> None:
    conv = Conv2Plus1D(2, 2, stride=(2, 3, 4))
    assert conv[0].stride == (1, 3, 4)
    assert conv[3].stride == (2, 1, 1)
