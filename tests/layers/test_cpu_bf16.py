import pytest
import torch
from torch import nn

from actionrec.layers.cpu_bf16 import GuardedConv3d, guard_cpu_bf16_conv3d
from actionrec.models.registry import create_model


def _weight_grad(conv: nn.Conv3d, x: torch.Tensor, g: torch.Tensor, *, bf16: bool) -> torch.Tensor:
    conv.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = conv(x)
    y.backward(g.to(y.dtype))
    return conv.weight.grad.clone()


@pytest.mark.parametrize("frames", [2, 3, 8])
def test_guarded_conv_weight_grad_matches_fp32(frames: int) -> None:
    torch.manual_seed(0)
    conv = guard_cpu_bf16_conv3d(nn.Conv3d(32, 16, (3, 1, 1), padding=(1, 0, 0), bias=False))
    x = torch.randn(4, 32, frames, 4, 4)
    g = torch.randn(4, 16, frames, 4, 4)
    ref = _weight_grad(conv, x, g, bf16=False)
    got = _weight_grad(conv, x, g, bf16=True)
    assert torch.isfinite(got).all()
    assert (got - ref).abs().max() <= 0.02 * ref.abs().max()


def test_guard_runs_fp32_only_where_the_bug_is() -> None:
    conv = guard_cpu_bf16_conv3d(nn.Conv3d(8, 8, (3, 3, 3), padding=1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(torch.randn(1, 8, 2, 6, 6)).dtype == torch.float32  # 1 < T=2 < 3: fp32
        assert conv(torch.randn(1, 8, 4, 6, 6)).dtype == torch.bfloat16
        assert conv(torch.randn(1, 8, 1, 6, 6)).dtype == torch.bfloat16


def test_guard_keeps_parameters_and_outputs() -> None:
    torch.manual_seed(0)
    model = create_model("r2plus1d_small", num_classes=5).eval()
    keys = list(model.state_dict())
    x = torch.randn(1, 3, 16, 64, 64)
    before = model(x)
    guard_cpu_bf16_conv3d(model)
    assert list(model.state_dict()) == keys
    assert torch.equal(model(x), before)
    temporal = [m for m in model.modules() if isinstance(m, nn.Conv3d) and m.kernel_size[0] == 3]
    assert temporal and all(type(m) is GuardedConv3d for m in temporal)
    assert all(
        type(m) is nn.Conv3d for m in model.modules() if isinstance(m, nn.Conv3d) and m.kernel_size[0] == 1
    )
