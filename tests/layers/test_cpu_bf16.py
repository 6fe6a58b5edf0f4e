"""CPU bf16 Conv3d guard: the affected F.conv3d calls (plain, subclass, functional) run in fp32, no others."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from actionrec.layers.cpu_bf16 import Fp32SmallTConv3d, guard_cpu_bf16_conv3d
from actionrec.layers.same_pad import Conv3dSame
from actionrec.models.registry import create_model


class FunctionalConv(nn.Module):
    """A module that calls ``F.conv3d`` itself (3x3x3, padding 1), as some model families do."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3, 3) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv3d(x, self.weight, padding=1)


CONVS: dict[str, Callable[[int, int], nn.Module]] = {
    "plain": lambda cin, cout: nn.Conv3d(cin, cout, (3, 1, 1), padding=(1, 0, 0), bias=False),
    "same_pad_subclass": lambda cin, cout: Conv3dSame(cin, cout, (3, 3, 3)),
    "functional": FunctionalConv,
}


def _weight_grad(conv: nn.Module, x: torch.Tensor, g: torch.Tensor, *, bf16: bool) -> torch.Tensor:
    conv.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = conv(x)
    y.backward(g.to(y.dtype))
    return conv.weight.grad.clone()


def _rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    return ((got - ref).abs().max() / ref.abs().max()).item()


@pytest.mark.parametrize("frames", [2, 3, 8])
def test_guarded_conv_weight_grad_matches_fp32(frames: int) -> None:
    torch.manual_seed(0)
    conv = guard_cpu_bf16_conv3d(CONVS["plain"](32, 16))
    x = torch.randn(4, 32, frames, 4, 4)
    g = torch.randn(4, 16, frames, 4, 4)
    ref = _weight_grad(conv, x, g, bf16=False)
    got = _weight_grad(conv, x, g, bf16=True)
    assert torch.isfinite(got).all()
    assert _rel_err(got, ref) <= 0.02


@pytest.mark.parametrize("kind", list(CONVS))
def test_affected_weight_grad_is_fp32_close(kind: str) -> None:
    """T = 2 under a 3-tap kernel: with the guard the weight gradient is the fp32 one, without it not."""
    torch.manual_seed(0)
    conv = CONVS[kind](16, 8)
    x = torch.randn(2, 16, 2, 6, 6)
    g = torch.randn(2, 8, 2, 6, 6)
    ref = _weight_grad(conv, x, g, bf16=False)
    unguarded = _weight_grad(conv, x, g, bf16=True)
    guard_cpu_bf16_conv3d(conv)
    got = _weight_grad(conv, x, g, bf16=True)
    assert _rel_err(got, ref) <= 1e-4
    assert _rel_err(unguarded, ref) > 1e-4  # bf16 (or the bug) without the guard: the check can tell


@pytest.mark.parametrize("kind", list(CONVS))
def test_guard_runs_fp32_only_where_the_bug_is(kind: str) -> None:
    conv = guard_cpu_bf16_conv3d(CONVS[kind](8, 8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(torch.randn(1, 8, 2, 6, 6)).dtype == torch.float32  # 1 < T=2 < 3: fp32
        assert conv(torch.randn(1, 8, 4, 6, 6)).dtype == torch.bfloat16
        assert conv(torch.randn(1, 8, 1, 6, 6)).dtype == torch.bfloat16
    assert conv(torch.randn(1, 8, 2, 6, 6)).dtype == torch.float32  # no autocast: untouched


def test_mode_covers_calls_outside_any_guarded_module() -> None:
    w = torch.randn(4, 4, 5, 1, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert F.conv3d(torch.randn(1, 4, 4, 3, 3), w, padding=(2, 0, 0)).dtype == torch.bfloat16
        with Fp32SmallTConv3d():
            assert F.conv3d(torch.randn(1, 4, 4, 3, 3), w, padding=(2, 0, 0)).dtype == torch.float32
            unbatched_t5 = F.conv3d(input=torch.randn(4, 5, 3, 3), weight=w, padding=(2, 0, 0))
            assert unbatched_t5.dtype == torch.bfloat16


def _mode_active() -> bool:
    """Whether the fp32 mode is still pushed (a T = 2, 3-tap call outside any guarded module runs fp32)."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = F.conv3d(torch.randn(1, 2, 2, 3, 3), torch.randn(2, 2, 3, 1, 1), padding=(1, 0, 0))
    return y.dtype == torch.float32


def test_guard_is_scoped_to_forward_once_and_exception_safe() -> None:
    conv = guard_cpu_bf16_conv3d(guard_cpu_bf16_conv3d(CONVS["functional"](8, 8)))
    assert len(conv._forward_pre_hooks) == 1 and len(conv._forward_hooks) == 1
    with pytest.raises(RuntimeError):
        conv(torch.randn(1, 7, 2, 6, 6))  # wrong channel count
    assert not _mode_active()
    conv(torch.randn(1, 8, 2, 6, 6))
    assert not _mode_active()


def test_guard_keeps_parameters_classes_and_outputs() -> None:
    torch.manual_seed(0)
    model = create_model("r2plus1d_small", num_classes=5).eval()
    keys = list(model.state_dict())
    classes = [type(m) for m in model.modules()]
    x = torch.randn(1, 3, 16, 64, 64)
    before = model(x)
    guard_cpu_bf16_conv3d(model)
    assert list(model.state_dict()) == keys
    assert [type(m) for m in model.modules()] == classes
    assert torch.equal(model(x), before)
