"""Exact-index tests of the frame samplers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actionrec.data.sampling import (
    SamplingConfig,
    dense_clip_indices,
    flow_window_indices,
    resample_fps_indices,
    sample_indices,
    segment_indices,
    slowfast_indices,
    uniform_indices,
)
from actionrec.errors import ConfigError


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_segment_test_takes_segment_centres() -> None:
    out = segment_indices(100, num_segments=4, train=False)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [[12, 37, 62, 87]])


def test_segment_snippets_are_consecutive_and_centred() -> None:
    # 24 possible starts for 5-frame snippets in 28 frames: segments of 8, centres at 4, 12, 20.
    out = segment_indices(28, num_segments=3, snippet_len=5, train=False)
    expected = [4, 5, 6, 7, 8, 12, 13, 14, 15, 16, 20, 21, 22, 23, 24]
    np.testing.assert_array_equal(out, [expected])


def test_segment_multi_clip_test_offsets() -> None:
    out = segment_indices(40, num_segments=2, train=False, num_clips=2)
    # segments [0, 20) and [20, 40); clip c at (c + 0.5) / 2 of each segment.
    np.testing.assert_array_equal(out, [[5, 25], [15, 35]])


def test_segment_train_draws_one_frame_inside_each_segment() -> None:
    out = segment_indices(100, num_segments=4, train=True, num_clips=50, rng=_rng())
    assert out.shape == (50, 4)
    for k in range(4):
        assert out[:, k].min() >= 25 * k and out[:, k].max() < 25 * (k + 1)
    assert len(np.unique(out[:, 0])) > 10  # really random


def test_segment_short_video_pads_with_last_frame() -> None:
    out = segment_indices(3, num_segments=2, snippet_len=5, train=False)
    np.testing.assert_array_equal(out, [[0, 1, 2, 2, 2, 0, 1, 2, 2, 2]])
    np.testing.assert_array_equal(segment_indices(2, num_segments=4, train=False), [[0, 0, 1, 1]])


def test_dense_test_clips_spread_uniformly() -> None:
    # span of 8 frames x interval 2 = 15, so 86 possible starts; 1 clip -> the centre one.
    np.testing.assert_array_equal(
        dense_clip_indices(100, clip_len=8, frame_interval=2, train=False),
        [[43, 45, 47, 49, 51, 53, 55, 57]],
    )
    out = dense_clip_indices(100, clip_len=4, frame_interval=1, num_clips=3, train=False)
    # 97 starts in 3 parts of 32.33: centres 16.17, 48.5, 80.83.
    np.testing.assert_array_equal(out[:, 0], [16, 48, 80])
    np.testing.assert_array_equal(out[1], [48, 49, 50, 51])


def test_dense_train_random_start_keeps_clip_inside() -> None:
    out = dense_clip_indices(40, clip_len=8, frame_interval=4, num_clips=200, train=True, rng=_rng(1))
    assert out.min() >= 0 and out.max() <= 39
    np.testing.assert_array_equal(np.diff(out, axis=1), np.full((200, 7), 4))
    assert set(out[:, 0].tolist()) == set(range(12))  # starts 0..11 all reachable


def test_dense_short_video_loops() -> None:
    np.testing.assert_array_equal(
        dense_clip_indices(5, clip_len=8, frame_interval=1, train=False), [[0, 1, 2, 3, 4, 0, 1, 2]]
    )
    np.testing.assert_array_equal(dense_clip_indices(1, clip_len=3, train=True, rng=_rng()), [[0, 0, 0]])


def test_uniform_grid() -> None:
    np.testing.assert_array_equal(uniform_indices(10, num=4), [[1, 3, 6, 8]])
    np.testing.assert_array_equal(uniform_indices(3, num=6), [[0, 0, 1, 1, 2, 2]])
    out = uniform_indices(100, num=5, train=True, num_clips=20, rng=_rng())
    np.testing.assert_array_equal(np.diff(out, axis=1), np.full((20, 4), 20))  # one shift for the whole grid
    assert (out[:, 0] < 20).all()


def test_resample_to_25fps_matches_i3d_reference() -> None:
    # arm_wrestling.mp4: 280 frames at 28 fps -> 250 frames at 25 fps.
    out = resample_fps_indices(280, src_fps=28.0, dst_fps=25.0, max_frames=250)
    expected = np.array([int(k * 28.0 / 25.0) for k in range(250)])
    np.testing.assert_array_equal(out, expected)
    assert out[-1] == 278
    assert resample_fps_indices(280, src_fps=28.0, dst_fps=25.0, max_frames=64).size == 64
    # up-sampling repeats frames
    np.testing.assert_array_equal(resample_fps_indices(3, src_fps=10, dst_fps=20), [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(resample_fps_indices(1, src_fps=30, dst_fps=25), [0])


def test_slowfast_slow_is_every_alpha_th_fast_frame() -> None:
    slow, fast = slowfast_indices(64, clip_len=32, frame_interval=2, alpha=4, train=False)
    assert fast.shape == (1, 32) and slow.shape == (1, 8)
    np.testing.assert_array_equal(slow, fast[:, ::4])
    np.testing.assert_array_equal(np.diff(slow[0]), np.full(7, 8))


def test_flow_windows_pad_with_last_frame() -> None:
    out = flow_window_indices(10, starts=np.array([0, 7]), window=3)
    np.testing.assert_array_equal(out, [[0, 1, 2, 3], [7, 8, 9, 9]])


@pytest.mark.parametrize(
    "fn",
    [
        lambda n: segment_indices(n, num_segments=3, train=False),
        lambda n: dense_clip_indices(n, clip_len=4, train=False),
        lambda n: uniform_indices(n, num=4),
        lambda n: resample_fps_indices(n, src_fps=30, dst_fps=25),
        lambda n: flow_window_indices(n, starts=np.array([0])),
    ],
)
def test_empty_video_raises_value_error(fn) -> None:
    with pytest.raises(ValueError, match="0 frames"):
        fn(0)


@settings(max_examples=150, deadline=None)
@given(
    num_frames=st.integers(1, 400),
    mode=st.sampled_from(["dense", "segment", "uniform", "fps"]),
    clip_len=st.integers(1, 40),
    interval=st.integers(1, 8),
    segments=st.integers(1, 12),
    snippet=st.integers(1, 6),
    clips=st.integers(1, 4),
    train=st.booleans(),
    src_fps=st.floats(1.0, 120.0),
    seed=st.integers(0, 2**16),
)
def test_sample_indices_always_in_range(
    num_frames, mode, clip_len, interval, segments, snippet, clips, train, src_fps, seed
) -> None:
    cfg = SamplingConfig(
        mode=mode,
        clip_len=clip_len,
        frame_interval=interval,
        num_segments=segments,
        snippet_len=snippet,
        num_clips=clips,
        fps=25.0,
        max_frames=64,
    )
    out = sample_indices(cfg, num_frames=num_frames, fps=src_fps, train=train, rng=_rng(seed))
    assert out.dtype == np.int64 and out.ndim == 2
    assert out.min() >= 0 and out.max() < num_frames
    if mode == "fps":
        assert out.shape[0] == 1 and 1 <= out.shape[1] <= 64
    else:
        assert out.shape == (clips, cfg.frames_per_clip)


def test_sample_indices_is_deterministic_with_seeded_rng() -> None:
    cfg = SamplingConfig(mode="segment", num_segments=8)
    a = sample_indices(cfg, num_frames=300, fps=30.0, train=True, rng=_rng(7))
    b = sample_indices(cfg, num_frames=300, fps=30.0, train=True, rng=_rng(7))
    np.testing.assert_array_equal(a, b)


def test_fps_mode_train_takes_a_random_window() -> None:
    cfg = SamplingConfig(mode="fps", fps=25.0, max_frames=64)
    test = sample_indices(cfg, num_frames=280, fps=28.0, train=False)
    np.testing.assert_array_equal(test[0], resample_fps_indices(280, src_fps=28, dst_fps=25)[:64])
    starts = {
        int(sample_indices(cfg, num_frames=280, fps=28.0, train=True, rng=_rng(s))[0, 0]) for s in range(20)
    }
    assert len(starts) > 1


@pytest.mark.parametrize(
    "kwargs",
    [{"mode": "random"}, {"clip_len": 0}, {"mode": "fps"}, {"num_clips": -1}, {"max_frames": 0}],
)
def test_bad_config_raises_config_error(kwargs) -> None:
    with pytest.raises(ConfigError):
        SamplingConfig(**kwargs)
