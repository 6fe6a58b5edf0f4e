"""Karpathy et al. 2014: where each fusion looks in time, the identical-frames fixed point, shapes and
gradients, and the measured AlexNet parameter counts the cards quote."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import actionrec.models.karpathy as karpathy
from actionrec.engine.config import load_config
from actionrec.models import create_model, get_card
from actionrec.models.complexity import count_macs, count_params

SMALL = ["early_fusion_small", "late_fusion_small", "slow_fusion_small", "multires_small"]
R18 = ["early_fusion_r18", "late_fusion_r18", "slow_fusion_r18", "multires_r18"]
ALEXNET = list(karpathy.ALEXNET_MEASURED)
CONFIGS = Path(karpathy.__file__).parents[1] / "configs"


def _model(name: str, **kwargs: object) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, num_classes=3, **kwargs).eval()


def _changed_steps(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, frame: int) -> set[int]:
    """Time steps of ``f(x)`` (B, C, T', ...) that move when only ``frame`` of ``x`` changes."""
    y = x.clone()
    y[:, :, frame] += torch.randn_like(y[:, :, frame])
    with torch.no_grad():
        diff = (f(x) - f(y)).abs().flatten(3).amax((0, 1, 3))  # (B, C, T', ...) -> (T',)
    return {t for t, d in enumerate(diff.tolist()) if d > 1e-6}


def _output_moves(model: nn.Module, x: torch.Tensor, frame: int) -> bool:
    return bool(_changed_steps(lambda v: model(v)[:, :, None, None], x, frame))


# ---------------------------------------------------------------- (a) receptive fields in time


def test_late_fusion_sees_only_the_first_and_last_frames() -> None:
    model = _model("late_fusion_small")
    x = torch.randn(1, 3, 8, 32, 32)
    assert [_output_moves(model, x, k) for k in range(8)] == [True] + [False] * 6 + [True]


@pytest.mark.parametrize("name", ["early_fusion_small", "slow_fusion_small"])
def test_early_and_slow_fusion_outputs_see_all_ten_frames(name: str) -> None:
    model = _model(name)
    x = torch.randn(1, 3, 10, 32, 32)
    assert model.forward_features(x).shape[2] == 1  # one time step left
    assert all(_output_moves(model, x, k) for k in range(10))


def test_early_fusion_slides_over_a_longer_clip() -> None:
    model = _model("early_fusion_small")
    x = torch.randn(1, 3, 12, 32, 32)  # windows [0, 10), [1, 11), [2, 12)
    trunk = model.forward_features
    assert _changed_steps(trunk, x, 0) == {0}
    assert _changed_steps(trunk, x, 5) == {0, 1, 2}
    assert _changed_steps(trunk, x, 11) == {2}


@pytest.mark.parametrize(
    "name, conv1, conv2",
    [("slow_fusion_small", "stem.0", "layer2"), ("slow_fusion_alexnet", "conv1", "conv2")],
)
def test_slow_fusion_windows(name: str, conv1: str, conv2: str) -> None:
    """conv1 step j sees frames 2j .. 2j+3 (extent 4, stride 2); conv2 step j sees conv1 steps 2j, 2j+1,
    i.e. frames 4j .. 4j+5; conv3 sees all 10."""
    model = _model(name)
    trunk = model.trunk
    size = 32 if name.endswith("small") else 64
    x = torch.randn(1, 3, 10, size, size)

    def upto(layer: str) -> Callable[[torch.Tensor], torch.Tensor]:
        def run(v: torch.Tensor) -> torch.Tensor:
            out = {}
            handle = trunk.get_submodule(layer).register_forward_hook(
                lambda m, i, o: out.setdefault("o", o.clone())
            )
            trunk.forward_features(v)
            handle.remove()
            return out["o"]

        return run

    for k in range(10):
        assert _changed_steps(upto(conv1), x, k) == {j for j in range(4) if 2 * j <= k <= 2 * j + 3}
        assert _changed_steps(upto(conv2), x, k) == {j for j in range(2) if 4 * j <= k <= 4 * j + 5}


def test_single_frame_and_multires_features_are_per_frame() -> None:
    x = torch.randn(1, 3, 4, 64, 64)
    for name in ("single_frame_alexnet", "multires_small"):
        model = _model(name)
        assert all(_changed_steps(model.forward_features, x, k) == {k} for k in range(4)), name


def test_multires_fovea_sees_only_the_centre() -> None:
    model = _model("multires_small")
    x = torch.randn(1, 3, 2, 48, 48)
    y = x.clone()
    y[..., :12] += 1.0  # the left quarter: outside the centre 24x24
    with torch.no_grad():
        fx, fy = model.forward_features(x), model.forward_features(y)
    f = model.context.num_features
    torch.testing.assert_close(fx[:, f:], fy[:, f:])  # fovea channels unchanged
    assert not torch.allclose(fx[:, :f], fy[:, :f])  # the context stream saw it


# ---------------------------------------------------------------- (b) identical frames = 2D network


@pytest.mark.parametrize("name", ["early_fusion", "slow_fusion"])
@pytest.mark.parametrize("width, size", [("small", 32), ("alexnet", 64)])
def test_identical_frames_give_the_single_frame_output(name: str, width: str, size: int) -> None:
    frame_model = _model(f"single_frame_{width}")
    fused = _model(f"{name}_{width}")
    karpathy.load_frame_weights(fused, frame_model.state_dict())
    frame = torch.randn(2, 3, 1, size, size)
    with torch.no_grad():
        expected = frame_model(frame)
        got = fused(frame.expand(-1, -1, 10, -1, -1))  # (B, 3, 1, H, W) -> (B, 3, 10, H, W)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["early_fusion_r18", "slow_fusion_r18"])
def test_resnet_fusion_from_imagenet_weights_equals_single_frame_r18(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    frame_model = _model("single_frame_r18", backbone_weights=path)
    fused = _model(name, backbone_weights=path)
    fused.head.load_state_dict(frame_model.head.state_dict())
    frame = torch.randn(1, 3, 1, 64, 64)
    with torch.no_grad():
        expected = frame_model(frame)
        got = fused(frame.expand(-1, -1, 10, -1, -1))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- (c) shapes and gradients


def _check_shapes_and_grads(name: str, frames: int, size: int, features: tuple[int, ...]) -> None:
    model = _model(name)
    x = torch.randn(2, 3, frames, size, size)
    feats = model.forward_features(x)
    assert tuple(feats.shape[1:3]) == features
    assert model.forward_head(feats, pre_logits=True).shape[0] == 2
    model.forward_head(feats).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing[:5]
    model.reset_classifier(7)
    with torch.no_grad():
        assert model(x).shape == (2, 7)


@pytest.mark.parametrize(
    "name, frames, features",
    [
        ("early_fusion_small", 10, (128, 1)),
        ("late_fusion_small", 8, (256, 1)),
        ("slow_fusion_small", 10, (128, 1)),
        ("multires_small", 3, (256, 3)),
        ("early_fusion_r18", 10, (512, 1)),
        ("late_fusion_r18", 2, (1024, 1)),
        ("slow_fusion_r18", 10, (512, 1)),
        ("multires_r18", 2, (1024, 2)),
    ],
)
def test_shapes_and_gradients(name: str, frames: int, features: tuple[int, ...]) -> None:
    _check_shapes_and_grads(name, frames, 32, features)


@pytest.mark.parametrize(
    "name, frames, features",
    [
        ("single_frame_alexnet", 2, (256, 2)),
        ("early_fusion_alexnet", 10, (256, 1)),
        ("late_fusion_alexnet", 2, (512, 1)),
        ("slow_fusion_alexnet", 10, (256, 1)),
        ("multires_alexnet", 1, (512, 1)),
    ],
)
def test_alexnet_shapes_and_gradients(name: str, frames: int, features: tuple[int, ...]) -> None:
    _check_shapes_and_grads(name, frames, 64, features)


# ---------------------------------------------------------------- (d) measured AlexNet counts


@pytest.mark.parametrize("name", ALEXNET)
def test_alexnet_cards_quote_the_measured_counts(name: str) -> None:
    """Parameters and MACs at the paper's input (170x170; 178x178 multires), measured on meta."""
    card = get_card(name)
    params_m, gmacs, spec = karpathy.ALEXNET_MEASURED[name]
    frames, size = int(spec.split("x")[1]), int(spec.split("x")[2])
    assert (card.num_frames, card.crop_size) == (frames, size)
    with torch.device("meta"):
        model = create_model(name, num_classes=487)
    x = torch.zeros(1, 3, frames, size, size, device="meta")
    assert count_params(model) / 1e6 == pytest.approx(params_m, abs=0.005)
    assert count_macs(model, x) / 1e9 == pytest.approx(gmacs, abs=0.005)
    assert f"{params_m:.2f}M parameters" in card.notes and "measured" in card.notes.lower()
    assert card.published_params_m is None and card.published_gmacs is None
    grid = model.forward_features(x).shape[-1]
    assert grid == (7 if name == "multires_alexnet" else 6)  # the adaptive pool is the identity here


def test_alexnet_fusions_differ_only_where_time_is_fused() -> None:
    with torch.device("meta"):
        single, early = create_model("single_frame_alexnet"), create_model("early_fusion_alexnet")
    assert count_params(early) - count_params(single) == 96 * 3 * 11 * 11 * 9  # conv1 over 10 frames


# ---------------------------------------------------------------- recipes


@pytest.mark.parametrize(
    "recipe",
    sorted(
        p for kind in ("early", "late", "slow", "multires") for p in CONFIGS.glob(f"{kind}*-small_*.yaml")
    ),
)
def test_recipes_load_and_match_their_names(recipe: Path) -> None:
    cfg = load_config(recipe)
    frames, interval = (int(v) for v in recipe.name.split("_")[1].split("x"))
    assert (cfg.sampling.clip_len, cfg.sampling.frame_interval) == (frames, interval)
    assert cfg.model.name == recipe.name.split("_")[0].replace("-", "_")
