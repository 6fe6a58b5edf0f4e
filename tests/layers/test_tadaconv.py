"""TAdaConv: shapes, identity at init, grouped == scaled, frame-varying calibration, the attention window."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from actionrec.layers.tadaconv import PixelTemporalAttention, TAdaConv2d, TemporalCalibration


def _per_frame_conv2d(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    b, c, t, h, w = x.shape
    y = conv(x.transpose(1, 2).reshape(b * t, c, h, w))  # (B*T, C_out, H', W')
    return y.view(b, t, *y.shape[1:]).transpose(1, 2)


def _randomise(m: nn.Module) -> nn.Module:
    """Move the zero-initialised parts (the generator's last conv, the attention gate) off zero."""
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, TemporalCalibration):
                mod.b.weight.normal_(0.0, 0.5)
            elif isinstance(mod, PixelTemporalAttention):
                mod.gamma.normal_(0.0, 0.5)
    return m


@pytest.mark.parametrize(
    ("kwargs", "out_hw"),
    [
        ({}, (9, 10)),
        ({"padding": 1}, (11, 12)),
        ({"stride": 2, "padding": 1}, (6, 6)),
        ({"stride": (1, 2), "padding": (1, 0)}, (11, 5)),
        ({"dilation": 2, "padding": 2}, (11, 12)),
    ],
)
@pytest.mark.parametrize("impl", ["grouped", "scaled"])
def test_shapes(kwargs: dict, out_hw: tuple[int, int], impl: str) -> None:
    m = TAdaConv2d(8, 12, 3, impl=impl, **kwargs)
    assert m(torch.randn(2, 8, 5, 11, 12)).shape == (2, 12, 5, *out_hw)


@pytest.mark.parametrize("cal_dim", ["cin", "cout"])
@pytest.mark.parametrize("impl", ["grouped", "scaled"])
@pytest.mark.parametrize("bias", [False, True])
def test_identity_at_init_equals_static_conv(cal_dim: str, impl: str, bias: bool) -> None:
    torch.manual_seed(0)
    m = TAdaConv2d(6, 10, 3, padding=1, stride=2, bias=bias, cal_dim=cal_dim, impl=impl, temporal_attention=1)
    conv = nn.Conv2d(6, 10, 3, padding=1, stride=2, bias=bias)
    conv.weight.data.copy_(m.weight.data)
    if bias:
        conv.bias.data.copy_(m.bias.data)
    x = torch.randn(2, 6, 4, 9, 9)
    torch.testing.assert_close(m(x), _per_frame_conv2d(x, conv), atol=1e-5, rtol=1e-5)


def test_calibrate_off_is_plain_conv() -> None:
    m = TAdaConv2d(4, 5, 3, padding=1, calibrate=False)
    assert m.rf is None
    x = torch.randn(2, 4, 3, 7, 7)
    torch.testing.assert_close(m(x), _per_frame_conv2d(x, _conv_like(m)), atol=1e-6, rtol=1e-6)


def _conv_like(m: TAdaConv2d) -> nn.Conv2d:
    conv = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, padding=m.padding, bias=False)
    conv.weight.data.copy_(m.weight.data)
    return conv


@pytest.mark.parametrize("cal_dim", ["cin", "cout"])
@pytest.mark.parametrize("global_context", [True, False])
def test_grouped_equals_scaled(cal_dim: str, global_context: bool) -> None:
    torch.manual_seed(1)
    a = _randomise(
        TAdaConv2d(6, 8, 3, padding=1, stride=2, bias=True, cal_dim=cal_dim, global_context=global_context)
    )
    b = TAdaConv2d(6, 8, 3, padding=1, stride=2, bias=True, cal_dim=cal_dim, global_context=global_context)
    b.load_state_dict(a.state_dict())
    a.impl, b.impl = "grouped", "scaled"
    # Eval-mode BN: in train mode the gradient of rf.a.bias is exactly 0 in theory (the batch mean
    # cancels it) and only float noise of ~1e-5 would be compared.
    a.eval(), b.eval()
    x = torch.randn(2, 6, 5, 9, 9)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = a(xa), b(xb)
    torch.testing.assert_close(ya, yb, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-5, rtol=1e-5)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_calibration_varies_across_frames() -> None:
    torch.manual_seed(2)
    rf = _randomise(TemporalCalibration(8, reduction=2)).eval()
    alpha = rf(torch.randn(2, 8, 6, 5, 5))
    assert alpha.shape == (2, 8, 6, 1, 1)
    assert alpha.std(dim=2).min() > 1e-3  # every (video, channel) gets a different factor per frame
    fresh = TemporalCalibration(8, 16).eval()  # zero-init b: alpha == 1, with C_cal = 16 channels
    torch.testing.assert_close(fresh(torch.randn(2, 8, 6, 5, 5)), torch.ones(2, 16, 6, 1, 1))
    assert fresh.g is not None and TemporalCalibration(8, global_context=False).g is None


def test_official_parameter_layout() -> None:
    m = TAdaConv2d(16, 16, 3, padding=1)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes["weight"] == (16, 16, 3, 3)  # official: (1, 1, 16, 16, 3, 3)
    assert shapes["rf.g.weight"] == (16, 16, 1, 1, 1) and shapes["rf.g.bias"] == (16,)
    assert shapes["rf.a.weight"] == (4, 16, 3, 1, 1) and shapes["rf.a.bias"] == (4,)
    assert shapes["rf.bn.running_mean"] == (4,)
    assert shapes["rf.b.weight"] == (16, 4, 3, 1, 1) and "rf.b.bias" not in shapes


def test_attention_identity_at_init_and_disabled() -> None:
    x = torch.randn(2, 8, 5, 4, 4)
    attn = PixelTemporalAttention(8, window=2)
    torch.testing.assert_close(attn(x), x)
    _randomise(attn)
    assert not torch.allclose(attn(x), x)
    attn.enabled = False
    assert attn(x) is x


@pytest.mark.parametrize("window", [1, 2])
def test_attention_respects_window(window: int) -> None:
    torch.manual_seed(3)
    attn = _randomise(PixelTemporalAttention(6, window=window, reduction=2))
    x = torch.randn(1, 6, 7, 3, 3)
    y = attn(x)
    t = 3
    for src in range(7):
        x2 = x.clone()
        x2[:, :, src] += torch.randn_like(x2[:, :, src])
        changed = not torch.allclose(attn(x2)[:, :, t], y[:, :, t])
        assert changed == (abs(src - t) <= window), src
    x3 = x.clone()
    x3[:, :, t, 0, 0] += 1.0  # another pixel of the same frame
    torch.testing.assert_close(attn(x3)[:, :, t, 1:, 1:], y[:, :, t, 1:, 1:])


def test_attention_masks_outside_frames_and_t1() -> None:
    attn = _randomise(PixelTemporalAttention(4, window=3))
    with torch.no_grad():
        attn.gamma.fill_(1.0)
    x = torch.randn(2, 4, 1, 3, 3, requires_grad=True)
    y = attn(x)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, x)  # one frame: all weight on itself, no zero-padded neighbours
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
    # Edge frame: a constant clip stays constant (zero padding would pull the edges towards 0).
    c = torch.ones(1, 4, 4, 2, 2)
    torch.testing.assert_close(attn(c), c)


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(4)
    m = _randomise(TAdaConv2d(8, 8, 3, padding=1, bias=True, temporal_attention=1))
    # Eval mode: with batch statistics the gradient of rf.a.bias (followed by rf.bn) is exactly 0 in theory.
    m.eval()(torch.randn(2, 8, 4, 6, 6)).square().mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="cal_dim"):
        TAdaConv2d(4, 4, 3, cal_dim="both")
    with pytest.raises(ValueError, match="impl"):
        TAdaConv2d(4, 4, 3, impl="fast")
    with pytest.raises(ValueError, match="window"):
        PixelTemporalAttention(4, window=0)


def test_attention_offset_bias_breaks_time_symmetry() -> None:
    """Without the bias per offset the block commutes with reversing time (so it cannot tell a motion
    from its reverse); with it, it does not."""
    torch.manual_seed(5)
    attn = _randomise(PixelTemporalAttention(6, window=1, reduction=2))
    x = torch.randn(1, 6, 5, 3, 3)
    with torch.no_grad():
        attn.offset_bias.zero_()
        torch.testing.assert_close(attn(x.flip(2)), attn(x).flip(2))
        attn.offset_bias.copy_(torch.tensor([1.0, 0.0, -1.0]))  # prefer the past frame
        assert not torch.allclose(attn(x.flip(2)), attn(x).flip(2), atol=1e-3)
