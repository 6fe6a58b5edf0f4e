"""C3D: the paper's layout, its cost, and the feature layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from actionrec.models import create_model, example_input, get_card
from actionrec.models.c3d import C3D
from actionrec.models.complexity import count_macs, count_params


def test_layout_is_the_papers() -> None:
    with torch.device("meta"):  # structure only: no weight initialisation
        model = C3D()
    convs = [m for m in model.features if isinstance(m, nn.Conv3d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    assert all(c.kernel_size == (3, 3, 3) and c.padding == (1, 1, 1) for c in convs)
    pools = [m for m in model.features if isinstance(m, nn.MaxPool3d)]
    assert [p.kernel_size for p in pools] == [(1, 2, 2), 2, 2, 2, 2]
    assert model.head.fc6.in_features == 8192 and model.head.fc7.out_features == 4096


def test_pool5_is_512x1x4x4_without_the_adaptive_pool() -> None:
    with torch.device("meta"):
        model = C3D()
    x = torch.zeros(1, 3, 16, 112, 112, device="meta")
    assert model.features[:-1](x).shape == (1, 512, 1, 4, 4)  # pool5's padding alone gives 4x4
    assert model.forward_features(x).shape == (1, 512, 1, 4, 4)


def test_params_and_macs_against_published() -> None:
    card = get_card("c3d")
    with torch.device("meta"):
        model = create_model("c3d")
    params = count_params(model)
    assert params == 79_634_576
    assert abs(params / 1e6 - card.published_params_m) / card.published_params_m < 0.01
    assert params - 400 * 4097 == 77_995_776  # the released model's 78.0M body, before its 487-way fc8
    macs = count_macs(model, example_input("c3d"))
    assert abs(macs / 1e9 - card.published_gmacs) / card.published_gmacs < 0.05


def test_extract_layers_and_head() -> None:
    torch.manual_seed(0)
    model = C3D(num_classes=5).eval()
    x = torch.randn(1, 3, 16, 16, 16)
    pool5 = model.extract(x, layer="pool5")
    assert pool5.shape == (1, 8192)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x).flatten(1), pool5)
        fc6, fc7 = model.head.fc6_features(pool5), model.head.fc7_features(pool5)
        assert fc6.shape == fc7.shape == (1, 4096) and (fc6 >= 0).all()
        torch.testing.assert_close(model.head(pool5, pre_logits=True), fc7)
        torch.testing.assert_close(model.head(pool5), model.head.classifier(fc7))
        model.reset_classifier(3)
        assert model.forward_head(pool5).shape == (1, 3)
    torch.testing.assert_close(model.extract(x, layer="fc7"), fc7)
    with pytest.raises(ValueError, match="feature layer"):
        model.extract(x, layer="conv5b")
    with pytest.raises(ValueError, match="16 frames"):
        model(torch.zeros(1, 3, 8, 16, 16))


def test_card() -> None:
    card = get_card("c3d")
    assert (card.num_frames, card.crop_size, card.normalization) == (16, 112, "c3d")
    assert card.arxiv == "1412.0767"
