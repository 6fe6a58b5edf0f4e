"""2D -> 3D inflation: kernels, whole torchvision models, the boring-video fixed point, cross-modality."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import googlenet, resnet18, resnet50

from actionrec.layers.inflate import cross_modality_init, inflate, inflate_weight


def _randomise_bn(model: nn.Module) -> nn.Module:
    """Random BN statistics and affine parameters, so the test does not hinge on identity BNs."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def googlenet_2d() -> nn.Module:
    torch.manual_seed(0)
    return _randomise_bn(googlenet(weights=None, num_classes=10, aux_logits=True, init_weights=True))


@pytest.fixture(scope="module")
def resnet18_2d() -> nn.Module:
    torch.manual_seed(0)
    return _randomise_bn(resnet18(weights=None, num_classes=6))


def _boring(image: torch.Tensor, frames: int) -> torch.Tensor:
    return image.unsqueeze(2).expand(-1, -1, frames, -1, -1).contiguous()  # (B, C, H, W) -> (B, C, T, H, W)


def test_inflate_weight_mean_and_center() -> None:
    w = torch.randn(4, 3, 3, 3)
    mean = inflate_weight(w, 5, method="mean")
    assert mean.shape == (4, 3, 5, 3, 3)
    torch.testing.assert_close(mean.sum(dim=2), w)
    center = inflate_weight(w, 3, method="center")
    torch.testing.assert_close(center[:, :, 1], w)
    assert center[:, :, 0].abs().sum() == 0 and center[:, :, 2].abs().sum() == 0
    with pytest.raises(ValueError, match="unknown inflation method"):
        inflate_weight(w, 3, method="tile")


def test_cross_modality_init() -> None:
    w = torch.randn(8, 3, 7, 7, 7)
    flow = cross_modality_init(w, 10)
    assert flow.shape == (8, 10, 7, 7, 7)
    for c in range(10):
        torch.testing.assert_close(flow[:, c], w.mean(dim=1))


@pytest.mark.parametrize("name", ["resnet50", "googlenet"])
def test_boring_video_fixed_point(name: str, googlenet_2d: nn.Module) -> None:
    """A repeated image gives the 2D output, exactly, when time padding replicates the edge frames."""
    torch.manual_seed(0)
    model_2d = googlenet_2d if name == "googlenet" else _randomise_bn(resnet50(weights=None, num_classes=10))
    model_3d = inflate(model_2d, time_kernel=3, time_padding="replicate").eval()
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model_2d(image)
        out = model_3d(_boring(image, 4))
    assert out.shape == expected.shape == (1, 10)
    assert ((out - expected).norm() / expected.norm()).item() < 1e-4


def test_zero_time_padding_breaks_only_edge_frames() -> None:
    """Why the fixed point test replicates: with zeros, the first/last frame lose 1/kt of their input."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    conv3d = inflate(nn.Sequential(conv), time_kernel=3)
    image = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        expected = conv(image)
        out = conv3d(_boring(image, 5))
    for t in (1, 2, 3):
        torch.testing.assert_close(out[:, :, t], expected)
    for t in (0, 4):
        torch.testing.assert_close(
            out[:, :, t] - conv.bias.view(1, -1, 1, 1), (expected - conv.bias.view(1, -1, 1, 1)) * 2 / 3
        )


def test_center_inflation_is_a_per_frame_network(resnet18_2d: nn.Module) -> None:
    model_2d = resnet18_2d
    model_3d = inflate(model_2d, method="center").eval()  # zero time padding: still exact
    video = torch.randn(1, 3, 3, 32, 32)  # three different frames
    with torch.no_grad():
        per_frame = torch.stack([model_2d(video[:, :, t]) for t in range(3)]).mean(0)
        torch.testing.assert_close(model_3d(video), per_frame, rtol=1e-4, atol=1e-5)


def test_module_types_kernels_and_options(resnet18_2d: nn.Module) -> None:
    model = inflate(
        resnet18_2d,
        time_kernel=lambda name, conv: 5 if name == "conv1" else 1,
        time_stride=2,
        pool_time_kernel=2,
    )
    assert model.conv1.weight.shape == (64, 3, 5, 7, 7) and model.conv1.stride == (2, 2, 2)
    assert model.layer1[0].conv1.weight.shape == (64, 64, 1, 3, 3) and model.layer1[0].conv1.stride == (
        1,
        1,
        1,
    )
    assert isinstance(model.bn1, nn.BatchNorm3d) and isinstance(model.maxpool, nn.MaxPool3d)
    assert model.maxpool.kernel_size == (2, 3, 3)
    assert isinstance(model.avgpool, nn.AdaptiveAvgPool3d) and isinstance(model.fc, nn.Linear)
    assert set(model.state_dict()) == set(resnet18_2d.state_dict())
    default = inflate(resnet18_2d)
    assert default.conv1.weight.shape[2] == 3 and default.layer2[0].downsample[0].weight.shape[2] == 1
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 8, 32, 32)).shape == (1, 6)


def test_googlenet_aux_heads_dropped_and_input_model_untouched(googlenet_2d: nn.Module) -> None:
    model_2d = googlenet_2d
    model_3d = inflate(model_2d)
    assert model_3d.aux1 is None and model_3d.aux2 is None and not model_3d.aux_logits
    assert model_2d.aux1 is not None and isinstance(model_2d.conv1.conv, nn.Conv2d)
    model_3d.train()
    assert model_3d(torch.randn(2, 3, 2, 32, 32)).shape == (2, 10)  # training forward: logits only
    assert not model_2d.training  # the copy's mode changes, not the original's


def test_unsupported_2d_module_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot inflate ConvTranspose2d"):
        inflate(nn.Sequential(nn.ConvTranspose2d(3, 3, 2)))


def test_flow_network_by_cross_modality_inflation(resnet18_2d: nn.Module) -> None:
    flow = inflate(resnet18_2d, time_kernel=3, in_channels=10).eval()  # a stack of 5 (x, y) flow fields
    rgb_kernel = resnet18_2d.conv1.weight.detach()  # (64, 3, 7, 7)
    assert flow.conv1.in_channels == 10 and flow.conv1.weight.shape == (64, 10, 3, 7, 7)
    expected = rgb_kernel.mean(1, keepdim=True).unsqueeze(2).expand(-1, 10, 3, -1, -1) / 3
    assert torch.allclose(flow.conv1.weight, expected, atol=1e-7)
    assert flow(torch.randn(1, 10, 4, 64, 64)).shape == (1, 6)
    assert resnet18_2d.conv1.in_channels == 3  # the 2D model is untouched
