"""R3D / MC3 / R(2+1)D: weight compatibility with torchvision, the paper's widths, shapes, small model."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models.video import resnet as tv_resnet

from actionrec.layers.resnet_blocks import Bottleneck, Factorized2plus1d, Full3d, make_stage
from actionrec.models import create_model
from actionrec.models.complexity import count_macs, count_params
from actionrec.models.resnet3d import VideoResNet


def _randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights *and* batch-norm statistics, so that eval-mode outputs test every buffer."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
    return model.eval()


@pytest.mark.parametrize("name", ["r3d_18", "mc3_18", "r2plus1d_18"])
def test_torchvision_weights_load_and_give_the_same_logits(name: str) -> None:
    torch.manual_seed(0)
    tv = _randomise(getattr(tv_resnet, name)())
    ours = create_model(name).eval()
    assert ours.state_dict().keys() == tv.state_dict().keys()
    ours.load_state_dict(tv.state_dict())  # strict
    assert count_params(ours) == count_params(tv)
    x = torch.randn(1, 3, 8, 56, 56)
    with torch.no_grad():
        assert (ours(x) - tv(x)).abs().max() < 1e-5


def test_r2plus1d_18_parameter_count() -> None:
    assert count_params(create_model("r2plus1d_18")) == 31_505_325


def _meta(name: str, **kw: object) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kw)


def test_paper_width_rule_reproduces_table_2() -> None:
    """mid_rule="conv" is the paper's R(2+1)D-18: 33.3M params and 41.5 GFLOPs at 16x112x112."""
    model = _meta("r2plus1d_18", mid_rule="conv")
    assert count_params(model) / 1e6 == pytest.approx(33.3, rel=0.01)
    macs = count_macs(model, torch.zeros(1, 3, 16, 112, 112, device="meta"))
    assert macs / 1e9 == pytest.approx(41.5, rel=0.01)


def test_middle_widths_of_the_two_rules() -> None:
    tv_layout, paper_layout = _meta("r2plus1d_18"), _meta("r2plus1d_34")
    first = tv_layout.layer2[0]
    assert (first.conv1[0].mid_channels, first.conv2[0].mid_channels) == (230, 230)
    first = paper_layout.layer2[0]
    assert (first.conv1[0].mid_channels, first.conv2[0].mid_channels) == (230, 288)
    assert [len(getattr(paper_layout, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]


@pytest.mark.parametrize(
    ("name", "frames"),
    [("r3d_18", 2), ("r2plus1d_18", 2), ("mc3_18", 16)],  # MC3's 2D stages never stride over time
)
def test_feature_shapes(name: str, frames: int) -> None:
    model = _meta(name)
    feats = model.forward_features(torch.zeros(2, 3, 16, 64, 64, device="meta"))
    assert feats.shape == (2, 512, frames, 4, 4)
    assert model.forward_head(feats, pre_logits=True).shape == (2, 512)


def test_r2plus1d_small_trains_on_its_default_clip() -> None:
    torch.manual_seed(0)
    model = create_model("r2plus1d_small", num_classes=5)
    assert count_params(model) < 1_000_000
    x = torch.randn(2, 3, 8, 48, 48)
    assert model.forward_features(x).shape == (2, 128, 8, 3, 3)  # no stem pool: 48 / 16; time not strided
    loss = nn.functional.cross_entropy(model(x), torch.tensor([1, 3]))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    macs = count_macs(model, torch.zeros(1, 3, 8, 48, 48))
    assert 0.2e9 < macs < 0.25e9


def test_overrides_and_reset_classifier() -> None:
    model = create_model("r2plus1d_small", num_classes=3, dropout=0.5, in_channels=2).eval()
    assert model.dropout.p == 0.5
    x = torch.randn(1, 2, 8, 32, 32)
    assert model(x).shape == (1, 3)
    model.reset_classifier(7)
    assert model(x).shape == (1, 7) and model.num_classes == 7
    model.reset_classifier(0)
    assert model(x).shape == (1, 128)


def test_bad_config_is_refused() -> None:
    from actionrec.models.resnet3d import VideoResNetConfig

    with pytest.raises(ValueError, match="four stages"):
        VideoResNet(VideoResNetConfig(layers=(1, 1, 1)))
    with pytest.raises(ValueError, match="unknown stem"):
        VideoResNet(VideoResNetConfig(stem="pyramid"))


# The blocks live in actionrec.layers.resnet_blocks; they are checked here against torchvision's, whose
# layout the video ResNets above share.
@pytest.mark.parametrize(
    ("ours", "tv_conv"),
    [(Full3d(), tv_resnet.Conv3DSimple), (Factorized2plus1d(), tv_resnet.Conv2Plus1D)],
)
def test_bottleneck_matches_torchvision(ours: Full3d, tv_conv: type) -> None:
    torch.manual_seed(0)
    down = nn.Sequential(nn.Conv3d(32, 64, 1, stride=2, bias=False), nn.BatchNorm3d(64))
    tv_block = _randomise(tv_resnet.Bottleneck(32, 16, tv_conv, stride=2, downsample=down))
    block = Bottleneck(32, 16, conv=ours, stride=2, mid_rule="block").eval()
    block.load_state_dict(tv_block.state_dict())
    x = torch.randn(2, 32, 4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(block(x), tv_block(x), rtol=0, atol=1e-5)


def test_bottleneck_options_and_stage() -> None:
    stage = make_stage(
        Bottleneck,
        16,
        8,
        3,
        conv=Full3d(1),
        stride=(1, 2, 2),
        stride_in_1x1=True,
        per_block=[{"temporal_kernel_a": 3}, {}, {"temporal_kernel_a": 3}],
    )
    assert [b.conv1[0].kernel_size for b in stage] == [(3, 1, 1), (1, 1, 1), (3, 1, 1)]
    assert stage[0].conv1[0].stride == (1, 2, 2) and stage[0].conv2[0].stride == (1, 1, 1)
    assert stage[0].downsample is not None and stage[1].downsample is None
    assert stage(torch.randn(1, 16, 4, 8, 8)).shape == (1, 32, 4, 4, 4)
