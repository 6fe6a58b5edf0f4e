"""Feature extraction library: clip windows, options, atomic outputs, per-video statuses, and the
preprocessing a weights file records."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from actionrec.data.preprocessing import Preprocessing
from actionrec.data.sources import FlowSource
from actionrec.data.synth import write_mp4
from actionrec.engine.features import (
    ClipOptions,
    FeatureExtractor,
    clip_indices,
    clip_options,
    extract_features,
    extract_video,
    feature_fn,
    load_extractor,
    output_paths,
    save_array,
)
from actionrec.errors import ActionrecError, ConfigError
from actionrec.models.registry import create_model, get_card
from actionrec.weights import save_weights


def _write_mp4(path: Path, num_frames: int, *, size: tuple[int, int] = (40, 52), fps: int = 25) -> Path:
    frames = np.random.default_rng(num_frames).integers(0, 256, (num_frames, *size, 3), dtype=np.uint8)
    write_mp4(path, frames, fps=fps)
    return path


def test_clip_indices_slide_without_overlap_and_loop_short_videos() -> None:
    pre = Preprocessing.from_card(get_card("c3d"))
    clips = clip_indices(40, 25.0, pre=pre, clip_len=16, stride=16, frame_interval=1)
    np.testing.assert_array_equal(clips, np.stack([np.arange(16), np.arange(16, 32)]))
    short = clip_indices(12, None, pre=pre, clip_len=16, stride=16, frame_interval=1)  # fps unused
    assert short.shape == (1, 16) and short.max() == 11  # looped, never past the end
    strided = clip_indices(40, 25.0, pre=pre, clip_len=4, stride=8, frame_interval=3)
    np.testing.assert_array_equal(strided[:, 0], [0, 8, 16, 24])
    np.testing.assert_array_equal(strided[0], [0, 3, 6, 9])
    at_25 = Preprocessing.from_card(get_card("i3d_inception_v1"))  # samples on a 25 fps timeline
    halved = clip_indices(40, 50.0, pre=at_25, clip_len=4, stride=4, frame_interval=1)
    np.testing.assert_array_equal(halved[0], [0, 2, 4, 6])  # a 50 fps video: every other frame
    with pytest.raises(ActionrecError, match="frame rate is unknown"):
        clip_indices(40, None, pre=at_25, clip_len=4, stride=4, frame_interval=1)


def test_clip_options_default_to_the_card_and_refuse_zero() -> None:
    card = get_card("c3d")
    options = clip_options(card, frame_interval=2)
    assert (options.clip_len, options.frame_interval) == (card.num_frames, 2)
    assert options.stride == (card.num_frames - 1) * 2 + 1  # one clip span: adjacent clips
    with pytest.raises(ActionrecError, match="batch_size must be >= 1, got 0"):
        clip_options(card, batch_size=0)


def test_save_array_never_leaves_a_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "x.npy"
    save_array(target, np.arange(5, dtype=np.float32))
    np.testing.assert_array_equal(np.load(target), np.arange(5))
    assert os.listdir(tmp_path) == ["x.npy"]


def test_statuses_skip_complete_outputs_and_report_unreadable_videos(tmp_path: Path) -> None:
    def never(x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("no video here should reach the model")

    extractor = FeatureExtractor(
        pre=Preprocessing.from_card(get_card("c3d")),
        features=never,
        transform=never,
        device=torch.device("cpu"),
    )
    done, broken, missing = tmp_path / "done.mp4", tmp_path / "broken.mp4", tmp_path / "missing.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 4)
    out = tmp_path / "feats"
    for path in output_paths(out, done):
        save_array(path, np.zeros(3, dtype=np.float32))
    options = ClipOptions(clip_len=16, stride=16, frame_interval=1)
    results = list(extract_features([done, broken, missing], out, extractor=extractor, options=options))
    assert [(video, status) for video, status, _ in results] == [
        (done, "skipped"),
        (broken, "failed"),
        (missing, "failed"),
    ]
    assert "broken.mp4" in results[1][2] and "missing.mp4" in results[2][2]
    assert sorted(p.name for p in out.iterdir()) == ["done.npy", "done_clips.npy"]


def test_weights_preprocessing_is_used_and_overrides_still_apply(tmp_path: Path) -> None:
    model = create_model("r2plus1d_small", num_classes=3)
    own = {**Preprocessing.from_card(model.card).to_dict(), "crop_size": 24, "short_side": 32}
    weights = save_weights(model, tmp_path / "small.safetensors", extra={"preprocessing": own})
    cpu = torch.device("cpu")
    extractor = load_extractor("r2plus1d_small", device=cpu, num_classes=3, weights=str(weights))
    assert (extractor.pre.crop_size, extractor.pre.short_side) == (24, 32)  # not the card's 48 / 56
    video = _write_mp4(tmp_path / "clip.mp4", 10)
    options = clip_options(extractor.pre, clip_len=4, stride=4, batch_size=2)
    seen: list[tuple[int, ...]] = []
    spy = dataclasses.replace(
        extractor, features=lambda x: seen.append(tuple(x.shape)) or extractor.features(x)
    )
    feats = extract_video(video, extractor=spy, options=options)
    assert feats.shape[0] == 2 and feats.dtype == np.float32  # 10 frames: clips at 0 and 4
    assert seen == [(2, 3, 4, 24, 24)]  # the weights' crop reached the model

    overridden = load_extractor(
        "r2plus1d_small", device=cpu, num_classes=3, weights=str(weights), crop_size=12
    )
    assert (overridden.pre.crop_size, overridden.pre.short_side) == (12, 16)  # the weights' ratio kept
    plain = load_extractor("r2plus1d_small", device=cpu, num_classes=3)
    assert plain.pre == Preprocessing.from_card(get_card("r2plus1d_small"))


def test_flow_model_without_flow_is_refused_before_any_video(tmp_path: Path) -> None:
    extractor = FeatureExtractor(
        pre=Preprocessing(streams=("flow",)),
        features=torch.nn.Identity(),
        transform=lambda streams: streams,
        device=torch.device("cpu"),
    )
    options = ClipOptions(clip_len=4, stride=4, frame_interval=1, flow=FlowSource())
    with pytest.raises(ConfigError, match="--flow-root"):
        list(extract_features([tmp_path / "a.mp4"], tmp_path / "out", extractor=extractor, options=options))


def test_flow_model_reads_farneback_flow_computed_from_the_video(tmp_path: Path) -> None:
    model = create_model("r2plus1d_small", num_classes=3, in_channels=2).eval()
    pre = Preprocessing(streams=("flow",), crop_size=16, short_side=18)
    extractor = FeatureExtractor(pre, feature_fn(model, None), pre.transform(), torch.device("cpu"))
    video = _write_mp4(tmp_path / "clip.mp4", 9)
    options = clip_options(pre, clip_len=4, stride=4, flow=FlowSource(method="farneback"))
    assert extract_video(video, extractor=extractor, options=options).shape == (2, 128)  # pre-logits width
