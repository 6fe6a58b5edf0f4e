"""SampleSource: one video's streams from the file, from `actionrec flow` folders, or flow on the fly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from actionrec.data.flow import DONE_MARKER, compute_flow, extract_flow, quantize_flow
from actionrec.data.flow_frames import FlowFramesReader
from actionrec.data.sources import FlowSource, FrameCache, SampleSource
from actionrec.data.synth import write_mp4
from actionrec.errors import ConfigError

FPS = 10
NUM_FRAMES = 12


@pytest.fixture(scope="module")
def moving_square(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bright 12 x 12 square moving right 2 px a frame on a dark 48 x 64 background."""
    frames = np.full((NUM_FRAMES, 48, 64, 3), 20, dtype=np.uint8)
    for t in range(NUM_FRAMES):
        frames[t, 18:30, 10 + 2 * t : 22 + 2 * t] = 230
    path = tmp_path_factory.mktemp("videos") / "square.mp4"
    write_mp4(path, frames, fps=FPS, gop=4, crf=0)
    return path


@pytest.fixture(scope="module")
def flow_root(moving_square: Path) -> Path:
    root = moving_square.parent / "flow"
    extract_flow(moving_square, root / "square", method="farneback", short_side=None)
    return root


def test_stored_flow_follows_the_frame_indices(moving_square: Path, flow_root: Path) -> None:
    indices = np.array([[0, 3, 6, 11]])  # the last frame has no flow of its own: it takes flow 10
    with SampleSource(moving_square, streams=("rgb", "flow"), flow=FlowSource(str(flow_root))) as src:
        streams = src.read(indices)
    assert streams["rgb"].shape == (1, 4, 48, 64, 3) and streams["flow"].shape == (1, 4, 48, 64, 2)
    expected = FlowFramesReader(flow_root / "square").get_flow([0, 3, 6, 10])
    np.testing.assert_array_equal(streams["flow"][0], expected)
    square_x = streams["flow"][0, :, 20:28, 14:20, 0].astype(float).mean()
    assert square_x > 128 + 5  # motion to the right: positive x displacement above the 128 of "still"


def test_flow_alone_opens_no_video(moving_square: Path, flow_root: Path) -> None:
    with SampleSource(moving_square, streams=("flow",), flow=FlowSource(str(flow_root))) as src:
        assert src.video is None
        assert src.num_frames == NUM_FRAMES  # one more than the flows
        assert src.fps == FPS  # recorded by `actionrec flow` in its .done marker
        assert set(src.read(np.arange(4))) == {"flow"}
    marker = flow_root / "square" / DONE_MARKER
    assert json.loads(marker.read_text())["fps"] == FPS


def test_farneback_on_the_fly_matches_the_stored_quantisation(moving_square: Path) -> None:
    from actionrec.data.decode import open_video

    indices = np.array([2, 5, 11])
    with SampleSource(moving_square, streams=("flow",), flow=FlowSource(method="farneback")) as src:
        flow = src.read(indices)["flow"]
    with open_video(moving_square) as reader:
        frames = reader.get_frames(np.arange(NUM_FRAMES))
    for k, i in enumerate([2, 5, 10]):
        expected = quantize_flow(compute_flow(frames[[i, i + 1]], method="farneback")[0], 20.0)
        np.testing.assert_array_equal(flow[k], expected)


def test_flow_without_a_source_says_what_to_set(moving_square: Path) -> None:
    with pytest.raises(ConfigError, match="flow_root"):
        SampleSource(moving_square, streams=("flow",))
    with pytest.raises(ConfigError, match="flow method"):
        FlowSource(method="tvl1-live")


def test_future_frames_come_after_the_clip(moving_square: Path) -> None:
    with SampleSource(moving_square, streams=("rgb", "future")) as src:
        streams = src.read(np.array([[0, 2, 4]]), future=np.array([[6, 8]]))
    assert streams["future"].shape == (1, 2, 48, 64, 3)
    left_edge = [int(np.argmax(f[24, :, 0] > 128)) for f in streams["future"][0]]
    assert left_edge == [10 + 2 * 6, 10 + 2 * 8]  # the square's position tells the frame index


def test_frame_cache_serves_the_decoded_frames_without_opening_the_file(moving_square: Path) -> None:
    indices = np.array([[1, 4, 7], [2, 5, 11]])
    with SampleSource(moving_square, streams=("rgb", "flow"), flow=FlowSource(method="farneback")) as src:
        plain = src.read(indices)
    cache = FrameCache(max_mb=1)
    with SampleSource(moving_square, streams=("rgb",), cache=cache) as src:  # a miss: decodes every frame
        assert src.video is not None and src.num_frames == NUM_FRAMES
    assert cache.used == NUM_FRAMES * 48 * 64 * 3
    flow = FlowSource(method="farneback")
    with SampleSource(moving_square, streams=("rgb", "flow"), flow=flow, cache=cache) as src:  # a hit
        assert src.video is None and src.num_frames == NUM_FRAMES and src.fps == FPS
        cached = src.read(indices)
    np.testing.assert_array_equal(cached["rgb"], plain["rgb"])
    np.testing.assert_array_equal(cached["flow"], plain["flow"])


def test_frame_cache_keeps_nothing_beyond_its_budget(moving_square: Path) -> None:
    cache = FrameCache(max_mb=0.05)  # 52 KB: less than the video's 110 KB of frames
    with SampleSource(moving_square, streams=("rgb",), cache=cache) as src:
        frames = src.read(np.arange(3))["rgb"]
    assert cache.used == 0 and cache.get(moving_square) is None and frames.shape == (3, 48, 64, 3)
