"""C2D / I3D ResNet-50 of the non-local paper: Table 1 shapes, kernel patterns, NL placement, inflation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from actionrec.errors import WeightsError
from actionrec.layers.nonlocal_block import NonLocalBlock
from actionrec.models import create_model
from actionrec.models.complexity import count_macs, count_params
from actionrec.models.resnet_nonlocal import ResNet3dNonLocal


def _meta(name: str) -> ResNet3dNonLocal:
    with torch.device("meta"):  # structure and cost only: no weight initialisation
        return create_model(name)


def _first_kernels(model: ResNet3dNonLocal) -> list[list[int]]:
    return [[block.conv1.kernel_size[0] for block in getattr(model, f"layer{i}")] for i in (1, 2, 3, 4)]


def test_table1_output_sizes() -> None:
    model = _meta("c2d_r50")
    x = torch.zeros(1, 3, 32, 224, 224, device="meta")
    stem = model.stem(x)
    assert stem.shape == (1, 64, 8, 56, 56)  # conv1 -> 16x112x112, pool1 -> 8x56x56
    res2 = model.pool2(model.layer1(stem))
    assert res2.shape == (1, 256, 4, 56, 56)
    assert model.forward_features(x).shape == (1, 2048, 4, 7, 7)
    assert model(x).shape == (1, 400)


def test_temporal_kernel_patterns() -> None:
    c2d, i3d = _meta("c2d_r50"), _meta("i3d_r50")
    assert c2d.stem.conv.kernel_size == (1, 7, 7) and i3d.stem.conv.kernel_size == (5, 7, 7)
    assert all(k == 1 for stage in _first_kernels(c2d) for k in stage)
    assert _first_kernels(i3d) == [[3, 3, 3], [3, 1, 3, 1], [3, 1, 3, 1, 3, 1], [1, 3, 1]]


def test_five_nonlocal_blocks_in_res3_and_res4() -> None:
    model = _meta("i3d_r50_nl")
    assert sum(isinstance(m, NonLocalBlock) for m in model.modules()) == 5
    assert sorted(model.nonlocal2) == ["1", "3"] and sorted(model.nonlocal3) == ["1", "3", "5"]
    assert len(model.nonlocal1) == len(model.nonlocal4) == 0
    assert model.nonlocal2["1"].mode == "embedded_gaussian" and model.nonlocal3["5"].inter_channels == 512


@pytest.mark.parametrize(
    ("name", "params", "gmacs"),
    [
        ("c2d_r50", 24.33, 20.44),
        ("i3d_r50", 28.04, 33.13),
        ("c2d_r50_nl", 31.69, 28.57),
        ("i3d_r50_nl", 35.40, 41.26),
    ],
)
def test_measured_costs_in_the_cards(name: str, params: float, gmacs: float) -> None:
    model = _meta(name)
    assert count_params(model) / 1e6 == pytest.approx(params, abs=0.005)
    assert count_macs(model, torch.zeros(1, 3, 32, 224, 224)) / 1e9 == pytest.approx(gmacs, abs=0.005)
    assert f"{params:.2f}M params, {gmacs:.2f} GMACs" in model.card.notes


@pytest.mark.slow
def test_nonlocal_model_with_baseline_weights_gives_the_same_output() -> None:
    torch.manual_seed(0)
    base = create_model("c2d_r50", num_classes=4).eval()
    nl = create_model("c2d_r50_nl", num_classes=4).eval()
    missing, unexpected = nl.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("nonlocal") for k in missing)
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(nl(x), base(x), rtol=0, atol=0)


@pytest.mark.slow
def test_pretrained_2d_inflation(tmp_path: Path) -> None:
    torch.manual_seed(0)
    resnet = torchvision.models.resnet50(weights=None).eval()
    for m in resnet.modules():  # non-trivial BN statistics so that a wrong mapping shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "resnet50.pth"
    torch.save(resnet.state_dict(), path)
    i3d = create_model("i3d_r50", pretrained_2d=path)
    torch.testing.assert_close(i3d.stem.conv.weight.sum(2), resnet.conv1.weight)  # "mean": sums back to 2D
    torch.testing.assert_close(i3d.layer2[0].conv1.weight.sum(2), resnet.layer2[0].conv1.weight)
    c2d = create_model("c2d_r50", pretrained_2d=path).eval()
    image = torch.randn(1, 3, 64, 64)
    video = image[:, :, None].expand(1, 3, 8, 64, 64)  # a "boring" video of one repeated image
    with torch.no_grad():
        expected = torch.nn.Sequential(*list(resnet.children())[:-1])(image).flatten(1)
        torch.testing.assert_close(
            c2d.forward_head(c2d.forward_features(video), pre_logits=True), expected, rtol=1e-4, atol=1e-4
        )


def test_pretrained_2d_bad_files(tmp_path: Path) -> None:
    partial = tmp_path / "partial.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, partial)
    with pytest.raises(WeightsError, match="bn1"):
        create_model("c2d_r50", pretrained_2d=partial)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=r"garbage\.pth"):
        create_model("c2d_r50", pretrained_2d=garbage)
