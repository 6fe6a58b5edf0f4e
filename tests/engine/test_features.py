"""Feature extraction library: clip windows, options, atomic outputs, per-video statuses."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from actionrec.engine.features import (
    ClipOptions,
    FeatureExtractor,
    clip_indices,
    clip_options,
    extract_features,
    output_paths,
    save_array,
)
from actionrec.errors import ActionrecError
from actionrec.models.registry import get_card


def test_clip_indices_slide_without_overlap_and_loop_short_videos() -> None:
    card = get_card("c3d")
    clips = clip_indices(40, 25.0, card=card, clip_len=16, stride=16, frame_interval=1)
    np.testing.assert_array_equal(clips, np.stack([np.arange(16), np.arange(16, 32)]))
    short = clip_indices(12, 25.0, card=card, clip_len=16, stride=16, frame_interval=1)
    assert short.shape == (1, 16) and short.max() == 11  # looped, never past the end
    strided = clip_indices(40, 25.0, card=card, clip_len=4, stride=8, frame_interval=3)
    np.testing.assert_array_equal(strided[:, 0], [0, 8, 16, 24])
    np.testing.assert_array_equal(strided[0], [0, 3, 6, 9])


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
        card=get_card("c3d"), features=never, transform=never, device=torch.device("cpu")
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
