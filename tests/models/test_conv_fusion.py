"""Convolutional two-stream fusion (Feichtenhofer et al. 2016): each fusion type, both losses, output."""

from __future__ import annotations

import pytest
import torch

from actionrec.layers.stream_fusion import FUSIONS
from actionrec.models import create_model, example_input


def _input(batch: int = 2) -> dict[str, torch.Tensor]:
    x = example_input("conv_fusion_small", batch=batch, size=32)
    return {k: torch.randn_like(v) for k, v in x.items()}


@pytest.mark.parametrize("fusion", FUSIONS)
def test_each_fusion_trains_fused_and_temporal_losses(fusion: str) -> None:
    torch.manual_seed(0)
    model = create_model(f"conv_fusion_small_{fusion}", num_classes=4).train()
    x = _input()
    out = model(x)
    assert out["logits"].shape == (2, 4) and out["step_logits"].shape == (2, 2, 4)
    out["step_logits"].square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    fused, temporal = out["step_logits"].unbind(1)
    torch.testing.assert_close(out["logits"].softmax(-1), (fused.softmax(-1) + temporal.softmax(-1)) / 2)


def test_default_is_conv_fusion_with_the_paper_init_and_3d_pool() -> None:
    model = create_model("conv_fusion_small", num_classes=3, fusion="conv").eval()
    conv = model.fuse.conv.conv
    assert conv.kernel_size == (3, 3, 3) and conv.in_channels == 2 * conv.out_channels
    x = _input(1)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats["fused"].shape[:2] == (1, 1)  # 4 snippets pooled over time to 1 step
        assert model(x).shape == (1, 3)
        model.reset_classifier(6)
        assert model.forward_head(feats).shape == (1, 6)
    with pytest.raises(ValueError):
        create_model("conv_fusion_small", num_classes=3, fusion="average")
