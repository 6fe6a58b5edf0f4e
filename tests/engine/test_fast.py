"""fast_inference: precision choice, numerics of the bf16/channels-last path, tuple and dict inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from actionrec.engine import fast as F
from actionrec.engine.fast import fast_inference, resolve_precision

# bf16 keeps 8 bits of mantissa (relative error ~4e-3 per rounding); over a few layers of a small
# network the logits (of magnitude ~1) stay within this absolute tolerance of the fp32 logits.
BF16_ATOL = 0.05


class TinyVideoNet(nn.Module):
    """Conv3d-BN-ReLU x2, global pool, linear: the layer types of the real models, in miniature."""

    def __init__(self, num_classes: int = 5, in_channels: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(in_channels, 16, 3, padding=1),
            nn.BatchNorm3d(16),
            nn.ReLU(),
            nn.Conv3d(16, 32, (3, 3, 3), stride=(1, 2, 2), padding=1),
            nn.BatchNorm3d(32),
            nn.ReLU(),
        )
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3, 4)))  # (B, C, T, H, W) -> (B, C) -> (B, K)


class TupleNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.slow, self.fast = TinyVideoNet(), TinyVideoNet()

    def forward(self, x: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.slow(x[0]) + self.fast(x[1])


class DictNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rgb, self.flow = TinyVideoNet(), TinyVideoNet(in_channels=2)

    def forward(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": self.rgb(x["rgb"]) + self.flow(x["flow"])}


def _trained_like(model: nn.Module) -> nn.Module:
    """Random but non-trivial BN statistics so that eval mode differs from train mode."""
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    return model


def test_resolve_precision() -> None:
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto", "cpu") == ("bf16" if F.cpu_has_fast_bf16() else "fp32")
    assert resolve_precision("auto", "meta") == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("int8")


def test_fp32_path_is_exact_and_in_eval_mode() -> None:
    torch.manual_seed(0)
    model = _trained_like(TinyVideoNet())
    x = torch.randn(2, 3, 4, 16, 16)
    with torch.no_grad():
        expected = model.eval()(x)
    model.train()
    fast = fast_inference(model, precision="fp32")
    out = fast(x)
    assert not model.training
    assert out.dtype == torch.float32 and not out.requires_grad
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)  # channels_last changes only the layout


def test_bf16_logits_close_to_fp32_with_same_argmax() -> None:
    torch.manual_seed(1)
    model = _trained_like(TinyVideoNet(num_classes=7))
    x = torch.randn(4, 3, 4, 16, 16)
    with torch.no_grad():
        expected = model.eval()(x)
    out = fast_inference(model, precision="bf16")(x)
    assert out.dtype == torch.float32
    assert (out - expected).abs().max().item() < BF16_ATOL
    assert torch.equal(out.argmax(1), expected.argmax(1))
    assert not torch.equal(out, expected)  # it did run in reduced precision


def test_channels_last_layout_of_weights_and_wrapping_twice() -> None:
    model = TinyVideoNet()
    fast = fast_inference(fast_inference(model, precision="fp32"), precision="bf16")
    assert isinstance(fast.model, TinyVideoNet)  # not a wrapper of a wrapper
    assert fast.precision == "bf16"
    conv = model.features[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last_3d)
    with pytest.raises(RuntimeError, match="inference only"):
        fast.train()


def test_tuple_and_dict_inputs() -> None:
    torch.manual_seed(2)
    pair = (torch.randn(1, 3, 2, 16, 16), torch.randn(1, 3, 8, 16, 16))
    tuple_model = _trained_like(TupleNet())
    with torch.no_grad():
        expected = tuple_model.eval()(pair)
    out = fast_inference(tuple_model, precision="bf16")(pair)
    assert (out - expected).abs().max().item() < BF16_ATOL

    streams = {"rgb": torch.randn(1, 3, 4, 16, 16), "flow": torch.randn(1, 2, 4, 16, 16)}
    dict_model = _trained_like(DictNet())
    with torch.no_grad():
        expected_d = dict_model.eval()(streams)["logits"]
    out_d = fast_inference(dict_model, precision="bf16")(streams)
    assert out_d["logits"].dtype == torch.float32
    assert (out_d["logits"] - expected_d).abs().max().item() < BF16_ATOL
