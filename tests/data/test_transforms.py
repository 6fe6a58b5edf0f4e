"""Clip transforms: exact crop boxes, one draw per clip, flow-aware flips, normalisation numerics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actionrec.data.transforms import (
    CenterCrop,
    ColorJitter,
    MultiScaleCrop,
    Normalize,
    RandomResizedCrop,
    ResizeShortSide,
    TenCrop,
    ThreeCrop,
    build_transform,
    flip_clip,
)
from actionrec.errors import ConfigError
from actionrec.models.registry import NORMALIZATION


def _frames(t: int = 4, h: int = 48, w: int = 64, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, c), dtype=np.uint8)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_multiscale_crop_sizes_and_fixed_offsets() -> None:
    msc = MultiScaleCrop(224)
    # short side 256: int(256 * s) = 256, 224, 192, 168; neighbours in scale index at most 1 apart.
    assert msc.crop_sizes(256, 340) == [
        (256, 256), (256, 224), (224, 256), (224, 224), (224, 192),
        (192, 224), (192, 192), (192, 168), (168, 192), (168, 168),
    ]  # fmt: skip
    # crop 224 x 192 in 256 x 340: quarter steps of 8 (rows) and 37 (columns).
    assert msc.offsets(256, 340, 224, 192) == [
        (0, 0), (0, 148), (32, 0), (32, 148), (16, 74),
        (16, 0), (16, 148), (32, 74), (0, 74), (8, 37), (8, 111), (24, 37), (24, 111),
    ]  # fmt: skip
    assert len(MultiScaleCrop(224, more_fix_crop=False).offsets(256, 340, 224, 192)) == 5
    # sides within 2 px of the output snap to it: int(116 * 0.875) = 101 -> 100
    sides = {h for h, _ in MultiScaleCrop(100).crop_sizes(116, 150)}
    assert sides == {116, 100, 87, 76}


def test_multiscale_crop_draws_only_allowed_boxes() -> None:
    msc = MultiScaleCrop(224)
    gen = _gen(0)
    allowed = {
        (top, left, h, w) for h, w in msc.crop_sizes(256, 340) for top, left in msc.offsets(256, 340, h, w)
    }
    boxes = {msc.get_params(256, 340, gen) for _ in range(400)}
    assert boxes <= allowed and len(boxes) > 40


def test_three_crop_boxes_along_long_side() -> None:
    assert ThreeCrop(224).boxes(256, 340) == [(16, 0, 224, 224), (16, 58, 224, 224), (16, 116, 224, 224)]
    assert ThreeCrop(224).boxes(340, 256) == [(0, 16, 224, 224), (58, 16, 224, 224), (116, 16, 224, 224)]


def test_ten_crop_boxes_and_flips() -> None:
    assert TenCrop(224).boxes(256, 340) == [
        (0, 0, 224, 224), (0, 116, 224, 224), (32, 0, 224, 224), (32, 116, 224, 224), (16, 58, 224, 224),
    ]  # fmt: skip
    clip = torch.from_numpy(_frames(2, 20, 30)).permute(0, 3, 1, 2)
    out = TenCrop(16)(clip)
    assert out.shape == (10, 2, 3, 16, 16) and out.dtype == torch.uint8
    torch.testing.assert_close(out[1], clip[..., 0:16, 14:30])
    torch.testing.assert_close(out[5:], out[:5].flip(-1))


def test_center_crop_box_and_resize_short_side() -> None:
    assert CenterCrop(224).box(256, 340) == (16, 58, 224, 224)
    assert ResizeShortSide(256).output_size(240, 320) == (256, 341)
    assert ResizeShortSide(128).output_size(340, 256) == (170, 128)
    clip = torch.from_numpy(_frames(3, 240, 320)).permute(0, 3, 1, 2)
    out = ResizeShortSide(128)(clip)
    assert out.shape == (3, 3, 128, 171) and out.dtype == torch.uint8


def test_one_random_draw_per_clip_for_all_frames() -> None:
    # every frame is the same image, so identically cropped/flipped frames give identical outputs
    frame = _frames(1, 60, 80)
    frames = np.repeat(frame, 6, axis=0)
    for crop in ("random_resized", "multiscale", "short_side"):
        tf = build_transform(
            train=True, crop_size=32, short_side=40, mean=(0.5,) * 3, std=(0.5,) * 3, train_crop=crop,
            color_jitter=0.4,
        )  # fmt: skip
        for seed in range(5):
            out = tf(frames, generator=_gen(seed))
            assert out.shape == (3, 6, 32, 32) and out.dtype == torch.float32
            torch.testing.assert_close(out, out[:, :1].expand_as(out), rtol=0, atol=0)


def test_random_resized_crop_box_within_frame_and_scale() -> None:
    rrc = RandomResizedCrop(32, scale=(0.25, 0.5))
    gen = _gen(1)
    for _ in range(200):
        top, left, h, w = rrc.get_params(60, 80, gen)
        assert top >= 0 and top + h <= 60 and left >= 0 and left + w <= 80
        assert 0.2 * 4800 <= h * w <= 0.55 * 4800


def test_flow_flip_negates_x_only() -> None:
    flow = torch.tensor([[[[10, 200]]], [[[60, 90]]]], dtype=torch.uint8)  # (C=2, T=1, H=1, W=2)
    flow = flow.permute(1, 0, 2, 3)  # (C, T, H, W) -> (T, C, H, W)
    out = flip_clip(flow, flow=True)
    assert out[0, 0].tolist() == [[255 - 200, 255 - 10]]
    assert out[0, 1].tolist() == [[90, 60]]
    float_flow = torch.tensor([[[[1.5, -2.0]], [[3.0, 4.0]]]])  # (T=1, C=2, H=1, W=2)
    out = flip_clip(float_flow, flow=True)
    assert out[0, 0].tolist() == [[2.0, -1.5]] and out[0, 1].tolist() == [[4.0, 3.0]]
    rgb = flip_clip(torch.from_numpy(_frames(1, 2, 3)).permute(0, 3, 1, 2))
    assert rgb.dtype == torch.uint8


def test_flow_pipeline_flips_with_negation() -> None:
    frames = _frames(3, 16, 16, c=2)
    mean, std = NORMALIZATION["flow"]
    tf = build_transform(train=True, crop_size=16, short_side=16, mean=mean, std=std, flow=True,
                         train_crop="short_side")  # fmt: skip
    seen_flip = seen_plain = False
    for seed in range(12):
        out = tf(frames, generator=_gen(seed))
        plain = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1  # (T,H,W,C) -> (C,T,H,W)
        flipped = plain.flip(-1)
        flipped[0] = (255 - torch.from_numpy(frames[..., 0]).flip(-1).float()) / 127.5 - 1
        if torch.allclose(out, plain, atol=1e-5):
            seen_plain = True
        else:
            torch.testing.assert_close(out, flipped, atol=1e-5, rtol=0)
            seen_flip = True
    assert seen_flip and seen_plain


def test_normalize_numerics() -> None:
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 1, 1)  # (T, C, H, W)
    out = Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))(x)
    torch.testing.assert_close(out.flatten(), torch.tensor([-1.0, 51 / 255 * 2 - 1, 1.0]))
    mean, std = NORMALIZATION["imagenet"]
    out = Normalize(mean, std)(x)
    expected = (torch.tensor([0, 51, 255]) / 255 - torch.tensor(mean)) / torch.tensor(std)
    torch.testing.assert_close(out.flatten(), expected)
    out = Normalize(mean, std)(x.float() / 255)  # float input is taken as [0, 1]
    torch.testing.assert_close(out.flatten(), expected)


def test_color_jitter_brightness_and_saturation() -> None:
    clip = torch.full((2, 3, 4, 4), 0.4)
    torch.testing.assert_close(ColorJitter.apply(clip, "brightness", 1.5), torch.full_like(clip, 0.6))
    grey = torch.full((1, 3, 1, 1), 0.3)
    assert torch.allclose(ColorJitter.apply(grey, "saturation", 0.0), grey)
    coloured = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    desat = ColorJitter.apply(coloured, "saturation", 0.0)
    torch.testing.assert_close(desat.flatten(), torch.full((3,), 0.299))


def test_test_pipeline_shapes_and_values() -> None:
    frames = _frames(5, 48, 64)
    common = {"crop_size": 32, "short_side": 48, "mean": (0.5,) * 3, "std": (0.5,) * 3}
    single = build_transform(train=False, **common)(frames)
    assert single.shape == (3, 5, 32, 32) and single.dtype == torch.float32
    expected = torch.from_numpy(frames[:, 8:40, 16:48]).permute(3, 0, 1, 2).float() / 127.5 - 1
    torch.testing.assert_close(single, expected)  # no resize needed: short side already 48
    three = build_transform(train=False, num_crops=3, **common)(frames)
    assert three.shape == (3, 3, 5, 32, 32)
    torch.testing.assert_close(three[1], single)
    ten = build_transform(train=False, num_crops=10, **common)(frames)
    assert ten.shape == (10, 3, 5, 32, 32)
    torch.testing.assert_close(ten[4], single)


def test_seeded_generator_is_deterministic() -> None:
    frames = _frames(4, 40, 56)
    tf = build_transform(train=True, crop_size=24, short_side=32, mean=(0.5,) * 3, std=(0.5,) * 3,
                         train_crop="multiscale", color_jitter=0.3)  # fmt: skip
    a, b = tf(frames, generator=_gen(3)), tf(frames, generator=_gen(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a, tf(frames, generator=_gen(s))) for s in range(4, 8))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"short_side": 16},
        {"num_crops": 5, "train": False},
        {"num_crops": 3},
        {"train_crop": "bogus"},
        {"mean": (0.5, 0.5)},
        {"flow": True, "mean": (0.5,) * 2, "std": (0.5,) * 2, "color_jitter": 0.2},
    ],
)
def test_bad_arguments_raise_config_error(kwargs) -> None:
    args = {"train": True, "crop_size": 32, "short_side": 40, "mean": (0.5,) * 3, "std": (0.5,) * 3, **kwargs}
    with pytest.raises(ConfigError):
        build_transform(**args)
