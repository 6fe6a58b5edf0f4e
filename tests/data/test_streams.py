"""One random draw per sample: RGB, flow and boxes cropped, resized and flipped alike; ragged boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actionrec.data.loader import collate_samples
from actionrec.data.streams import StreamTransform, pad_boxes, trace_geometry, transform_boxes
from actionrec.data.transforms import build_transform

H, W = 40, 60
BOXES = np.array([[[10, 5, 30, 25]], [[28, 12, 52, 34]]], dtype=np.float32)  # (T=2, N=1, 4) x1 y1 x2 y2


def _sample() -> dict[str, np.ndarray]:
    """White boxes on black RGB; flow x = 200 / y = 60 inside the boxes, 128 (zero motion) outside."""
    rgb = np.zeros((2, H, W, 3), np.uint8)
    flow = np.full((2, H, W, 2), 128, np.uint8)
    for t, (x1, y1, x2, y2) in enumerate(BOXES[:, 0].astype(int)):
        rgb[t, y1:y2, x1:x2] = 255
        flow[t, y1:y2, x1:x2] = (200, 60)
    return {"rgb": rgb, "flow": flow, "boxes": BOXES, "boxes_mask": np.ones((2, 1), bool)}


def _transform(train_crop: str, crop: int, short_side: int) -> StreamTransform:
    common = dict(train=True, crop_size=crop, short_side=short_side, train_crop=train_crop, flip=True)
    return StreamTransform(
        {
            "rgb": build_transform(mean=(0, 0, 0), std=(1, 1, 1), color_jitter=0.3, **common),
            "flow": build_transform(mean=(0, 0), std=(1, 1), flow=True, **common),
        }
    )


def _extent(mask: torch.Tensor) -> list[float]:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


@pytest.mark.parametrize("seed", range(12))
def test_flow_and_boxes_follow_an_exact_crop_and_flip(seed: int) -> None:
    out = _transform("short_side", crop=32, short_side=H)(_sample(), torch.Generator().manual_seed(seed))
    rgb, flow = out["rgb"], out["flow"]  # (3, T, 32, 32), (2, T, 32, 32)
    ops = trace_geometry(_transform("short_side", 32, H).pipelines["rgb"].steps, H, W)
    assert ops  # a crop at least
    flipped = [False, False]
    for t in range(2):
        white = rgb[:, t].min(0).values > 0.5
        moving = (flow[1, t] - 60 / 255).abs() < 1e-6  # y is never negated
        assert torch.equal(white, moving)  # the flow was cropped exactly as the frames were
        if out["boxes_mask"][t, 0]:
            assert out["boxes"][t, 0].tolist() == _extent(white)  # no resize here: exact
            x = flow[0, t][moving]
            flipped[t] = bool(torch.allclose(x, torch.full_like(x, 55 / 255)))  # 255 - 200 when flipped
            assert flipped[t] or torch.allclose(x, torch.full_like(x, 200 / 255))
        else:
            assert not white.any() and out["boxes"][t, 0].tolist() == [0, 0, 0, 0]
    assert flipped[0] == flipped[1] or not out["boxes_mask"].all()  # one flip draw for the whole clip


def test_draws_differ_between_samples_and_repeat_for_a_seed() -> None:
    t = _transform("random_resized", crop=24, short_side=24)
    a = [t(_sample(), torch.Generator().manual_seed(s))["boxes"] for s in range(6)]
    assert len({tuple(b.flatten().tolist()) for b in a}) > 1
    again = t(_sample(), torch.Generator().manual_seed(3))["boxes"]
    assert torch.equal(a[3], again)


@pytest.mark.parametrize("seed", range(8))
def test_boxes_follow_a_resized_crop(seed: int) -> None:
    out = _transform("random_resized", crop=48, short_side=48)(_sample(), torch.Generator().manual_seed(seed))
    for t in range(2):
        white = out["rgb"][:, t].min(0).values > 0.5
        if out["boxes_mask"][t, 0] and white.sum() > 16:
            box = out["boxes"][t, 0].tolist()
            assert np.allclose(box, _extent(white), atol=1.5)  # bilinear resize blurs one pixel


def test_a_box_cropped_away_is_dropped_and_masked() -> None:
    boxes = torch.tensor([[[0.0, 0.0, 5.0, 5.0], [20.0, 10.0, 40.0, 30.0]]])  # (T=1, N=2, 4)
    test = build_transform(train=False, crop_size=30, short_side=H, mean=(0, 0, 0), std=(1, 1, 1))
    ops = trace_geometry(test.steps, H, W)  # centre crop: top 5, left 15
    out, mask = transform_boxes(boxes, torch.ones(1, 2, dtype=torch.bool), ops)
    assert mask.tolist() == [[False, True]]
    assert out[0, 0].tolist() == [0, 0, 0, 0]
    assert out[0, 1].tolist() == [5, 5, 25, 25]


def test_multi_view_crops_refuse_boxes() -> None:
    test = build_transform(
        train=False, crop_size=30, short_side=H, mean=(0, 0, 0), std=(1, 1, 1), num_crops=3
    )
    with pytest.raises(ValueError, match="ThreeCrop"):
        trace_geometry(test.steps, H, W)


def test_ragged_boxes_collate_with_a_mask() -> None:
    a = {
        "video": torch.zeros(3, 2, 4, 4),
        "label": 0,
        "boxes": torch.ones(2, 1, 4),
        "boxes_mask": torch.ones(2, 1).bool(),
    }
    b = {
        "video": torch.zeros(3, 2, 4, 4),
        "label": 1,
        "boxes": torch.ones(2, 3, 4) * 2,
        "boxes_mask": torch.ones(2, 3).bool(),
    }
    batch = collate_samples([a, b])
    assert batch["boxes"].shape == (2, 2, 3, 4) and batch["boxes_mask"].shape == (2, 2, 3)
    assert batch["boxes_mask"][0].tolist() == [[True, False, False]] * 2
    assert batch["boxes"][0, :, 1:].abs().sum() == 0 and batch["boxes"][1].eq(2).all()
    assert batch["label"].tolist() == [0, 1] and batch["failed"] == []
    boxes, mask = pad_boxes([])
    assert boxes.shape == (0, 0, 0, 4) and mask.shape == (0, 0, 0)


def test_pad_boxes_of_several_views() -> None:
    """Test samples hold V views: (V, T, N_i, 4) boxes pad to (B, V, T, N, 4), as one view's do."""
    a = (torch.ones(3, 2, 1, 4), torch.ones(3, 2, 1).bool())
    b = (torch.full((3, 2, 4, 4), 2.0), torch.ones(3, 2, 4).bool())
    boxes, mask = pad_boxes([a, b])
    assert boxes.shape == (2, 3, 2, 4, 4) and mask.shape == (2, 3, 2, 4)
    assert mask[0, :, :, 0].all() and not mask[0, :, :, 1:].any() and mask[1].all()
    assert boxes[0, :, :, 1:].abs().sum() == 0 and boxes[1].eq(2).all()
