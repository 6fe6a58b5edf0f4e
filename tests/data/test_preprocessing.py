"""The one preprocessing schema: cards, configs, weights cards and the transforms it builds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actionrec.data.preprocessing import Preprocessing
from actionrec.data.streams import StreamTransform
from actionrec.engine.config import load_config, preprocessing_card
from actionrec.errors import ConfigError
from actionrec.models.registry import get_card
from actionrec.weights import _preprocessing


def test_cards_declare_their_streams() -> None:
    assert Preprocessing.from_card(get_card("r2plus1d_small")).streams == ("rgb",)
    flow = Preprocessing.from_card(get_card("i3d_inception_v1_flow"))
    assert flow.streams == ("flow",) and flow.flow_mean == (0.5, 0.5)
    both = Preprocessing.from_card(get_card("i3d_two_stream"))
    assert both.streams == ("rgb", "flow") and both.mean == (0.5, 0.5, 0.5)  # I3D's [-1, 1] RGB


def test_config_overrides_the_card_and_round_trips() -> None:
    cfg = load_config("r2plus1d-small_8x3_synthetic-rgb")
    pre = Preprocessing.from_config(cfg, get_card("r2plus1d_small"))
    assert (pre.num_frames, pre.frame_interval, pre.crop_size, pre.short_side) == (8, 3, 48, 48)
    written = preprocessing_card(cfg, get_card("r2plus1d_small"))
    assert written["schema"] == 1 and written["streams"] == ["rgb"]
    assert Preprocessing.from_dict(written) == pre
    bad = load_config(None, overrides=["--input.normalization=flow"])
    with pytest.raises(ConfigError, match="RGB preset"):
        Preprocessing.from_config(bad, get_card("r2plus1d_small"))


def test_weights_card_uses_the_same_schema() -> None:
    from actionrec.models.registry import create_model

    model = create_model("i3d_two_stream", num_classes=3)
    card = _preprocessing(model)
    assert card == Preprocessing.from_card(model.card).to_dict()
    assert Preprocessing.from_dict(card).streams == ("rgb", "flow")


def test_old_card_layouts_still_read() -> None:
    trainer_v0 = {"crop_size": 64, "normalization": "imagenet", "sampling": {"mode": "dense", "clip_len": 8}}
    pre = Preprocessing.from_dict(trainer_v0)
    assert (pre.num_frames, pre.crop_size, pre.mean) == (8, 64, (0.485, 0.456, 0.406))
    assert Preprocessing.from_dict({"input_kind": "two_stream"}).streams == ("rgb", "flow")


def test_bad_streams_are_refused() -> None:
    with pytest.raises(ConfigError, match="each must be one of"):
        Preprocessing(streams=("depth",))
    with pytest.raises(ConfigError, match="future_frames"):
        Preprocessing(streams=("rgb", "future"))
    with pytest.raises(ConfigError, match="frame stream"):
        Preprocessing(streams=("boxes",))


def test_stream_transform_moves_rgb_and_flow_with_one_crop() -> None:
    """A frame whose pixel values are their own x coordinate: after a random crop (resized to the
    same size, so values stay put) both streams show the same columns; flow is normalised as flow."""
    pre = Preprocessing(streams=("rgb", "flow"), crop_size=16, short_side=24, mean=(0.0,) * 3, std=(1.0,) * 3)
    transform = pre.transform(train=True, train_crop="short_side", flip=False)
    assert isinstance(transform, StreamTransform)
    columns = np.broadcast_to(np.arange(24, dtype=np.uint8) * 10, (2, 24, 24))
    rgb = np.repeat(columns[..., None], 3, axis=3)
    flow = np.repeat(columns[..., None], 2, axis=3)
    out = transform({"rgb": rgb, "flow": flow}, generator=torch.Generator().manual_seed(3))
    assert out["rgb"].shape == (3, 2, 16, 16) and out["flow"].shape == (2, 2, 16, 16)
    rgb_cols = out["rgb"][0, 0, 0] * 255
    flow_cols = (out["flow"][0, 0, 0] * 0.5 + 0.5) * 255
    torch.testing.assert_close(rgb_cols, flow_cols, atol=1e-3, rtol=0)
    assert float(rgb_cols[0]) % 10 == pytest.approx(0, abs=1e-3)  # a crop, not a resize


def test_card_transforms_follow_each_stream() -> None:
    from actionrec.data.transforms import TenCrop

    flow = Preprocessing.from_card(get_card("i3d_inception_v1_flow"))
    flow = Preprocessing(**{**flow.__dict__, "crop_size": 32, "short_side": 40})
    frames = np.full((3, 40, 50, 2), 128, dtype=np.uint8)
    assert flow.transform(train=True)({"flow": frames})["flow"].shape == (2, 3, 32, 32)
    ten = flow.transform(num_crops=10).pipelines["flow"].steps[1]
    assert isinstance(ten, TenCrop) and ten.flow  # mirrored crops negate the x displacement
    jittered = Preprocessing(streams=("rgb", "flow")).transform(train=True, color_jitter=0.4).pipelines
    assert "ColorJitter" in repr(jittered["rgb"]) and "ColorJitter" not in repr(jittered["flow"])
