"""Single-frame baselines: per-frame torchvision ResNet, averaged frame scores, ImageNet weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from actionrec.errors import WeightsError
from actionrec.models import create_model
from actionrec.models.complexity import count_params


def _tv_resnet18(num_classes: int = 1000) -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=num_classes).eval()


def test_logits_are_the_average_of_per_frame_logits() -> None:
    tv = _tv_resnet18(num_classes=5)
    model = create_model("single_frame_r18", num_classes=5).eval()
    backbone_state = {k: v for k, v in tv.state_dict().items() if not k.startswith("fc.")}
    model.backbone.load_state_dict(backbone_state)
    model.head.fc.load_state_dict(tv.fc.state_dict())
    x = torch.randn(2, 3, 3, 64, 64)
    with torch.no_grad():
        expected = torch.stack([tv(x[:, :, t]) for t in range(3)]).mean(0)  # T x (B, K) -> (B, K)
        torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)


def test_features_are_per_frame() -> None:
    model = create_model("single_frame_r18", num_classes=4).eval()
    x = torch.randn(2, 3, 5, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 512, 5, 2, 2)
        assert model.forward_head(feats, pre_logits=True).shape == (2, 512)
        alone = model.forward_features(x[:, :, 3:4])  # frame 3 on its own
    torch.testing.assert_close(feats[:, :, 3:4], alone, rtol=1e-4, atol=1e-5)


def test_backbone_weights_from_a_torchvision_file(tmp_path: Path) -> None:
    tv = _tv_resnet18()
    path = tmp_path / "resnet18_imagenet.pth"
    torch.save(tv.state_dict(), path)
    model = create_model("single_frame_r18", num_classes=7, backbone_weights=path)
    torch.testing.assert_close(model.backbone.conv1.weight, tv.conv1.weight)
    torch.testing.assert_close(model.backbone.layer4[1].bn2.running_var, tv.layer4[1].bn2.running_var)
    assert model.head.fc.out_features == 7  # the 1000-way ImageNet classifier is dropped


def test_backbone_weights_errors(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        create_model("single_frame_r18", backbone_weights=tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(WeightsError, match=r"junk\.pth"):
        create_model("single_frame_r18", backbone_weights=junk)
    r50 = tmp_path / "r50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), r50)
    with pytest.raises(WeightsError, match=r"r50\.pth: does not fit"):
        create_model("single_frame_r18", backbone_weights=r50)


def test_parameter_counts_are_torchvision_resnets_with_a_400_way_classifier() -> None:
    with torch.device("meta"):
        r18, r50 = create_model("single_frame_r18"), create_model("single_frame_r50")
    assert count_params(r18) == count_params(torchvision.models.resnet18(num_classes=400))
    assert count_params(r50) == count_params(torchvision.models.resnet50(num_classes=400))


def test_single_frame_small_never_mixes_frames_while_its_twin_does() -> None:
    torch.manual_seed(0)
    frame_model = create_model("single_frame_small", num_classes=3).eval()
    clip_model = create_model("r2plus1d_small", num_classes=3).eval()
    assert frame_model.num_features == clip_model.num_features == 128
    assert count_params(frame_model) < count_params(clip_model)
    x = torch.randn(1, 3, 8, 64, 64)
    y = x.clone()
    y[:, :, 0] += 1.0  # change the first frame only
    with torch.no_grad():
        diff = (frame_model.forward_features(x) - frame_model.forward_features(y)).abs()
        assert diff[:, :, 0].max() > 0 and diff[:, :, 1:].max() == 0
        mixed = (clip_model.forward_features(x) - clip_model.forward_features(y)).abs()
        assert mixed[:, :, -1].max() > 0  # the clip model's last time step sees the first frame


def test_reset_classifier_and_dropout() -> None:
    model = create_model("single_frame_small", num_classes=3, dropout=0.2)
    assert model.head.dropout.p == 0.2
    x = torch.randn(2, 3, 4, 32, 32)
    model.reset_classifier(11)
    assert model(x).shape == (2, 11) and model.num_classes == 11
