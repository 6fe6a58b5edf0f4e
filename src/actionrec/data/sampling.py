"""Which frames of a video a model sees: pure functions from a frame count to frame indices.

Indices are chosen before anything is decoded, so a reader only converts the frames it is asked for.
Every function returns an ``int64`` numpy array whose values lie in ``[0, num_frames)``; a video
shorter than a clip never raises, it is looped or padded (each function says which and why);
``num_frames < 1`` raises :class:`ValueError`.

Schemes implemented:

- TSN segments: "Temporal Segment Networks: Towards Good Practices for Deep Action Recognition",
  Wang et al., 2016, arXiv 1608.00859, §3.1 — the video is cut into K equal segments and one snippet
  of L consecutive frames is taken from each (random position in training, centre at test time).
- Dense clips of ``clip_len`` frames ``frame_interval`` apart (C3D, I3D, R(2+1)D, non-local nets,
  SlowFast); at test time N clips spaced uniformly over the video.
- Uniform sampling of N frames on an evenly spaced grid.
- Resampling to a fixed frame rate (I3D's 25 fps input: source index ``int(k * src_fps / dst_fps)``).
- SlowFast's two rates ("SlowFast Networks for Video Recognition", Feichtenhofer et al., 2019,
  arXiv 1812.03982, §3.1-3.2): the slow pathway sees every alpha-th frame of the fast clip.
- Frame windows for stacked optical flow (two-stream: Simonyan & Zisserman, 2014, arXiv 1406.2199, §3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from actionrec.errors import ConfigError

MODES = ("dense", "segment", "uniform", "fps")


def _check_num_frames(num_frames: int) -> None:
    if num_frames < 1:
        raise ValueError(f"cannot sample frames from a video with {num_frames} frames")


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


def _pad_last(indices: np.ndarray, num_frames: int) -> np.ndarray:
    """Clamp indices past the end to the last frame (pad by repeating it)."""
    return np.minimum(indices, num_frames - 1).astype(np.int64)


def segment_indices(
    num_frames: int,
    *,
    num_segments: int,
    snippet_len: int = 1,
    train: bool,
    num_clips: int = 1,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """TSN segment sampling (arXiv 1608.00859, §3.1), shape ``(num_clips, num_segments * snippet_len)``.

    The ``S = num_frames - snippet_len + 1`` possible snippet starts are split into ``num_segments``
    equal (real-valued) segments. Training draws one start uniformly inside each segment (an
    independent draw per segment, per clip); testing takes the centre of each segment, and with
    ``num_clips > 1`` clip ``c`` takes the point ``(c + 0.5) / num_clips`` of the way through each
    segment. Each start is followed by ``snippet_len`` consecutive frames (``snippet_len=5`` gives
    the stacked-flow snippets of TSN/two-stream when indexing precomputed flow frames).

    Short videos (fewer frames than segments or than a snippet) **pad**: starts repeat, and snippet
    frames past the end repeat the last frame. Looping would put frame 0 right after the last frame
    inside a snippet, which breaks the temporal continuity a stacked-flow snippet relies on.
    """
    _check_num_frames(num_frames)
    _check_positive(num_segments=num_segments, snippet_len=snippet_len, num_clips=num_clips)
    starts_available = max(num_frames - snippet_len + 1, 1)
    seg_len = starts_available / num_segments
    seg_begin = np.arange(num_segments) * seg_len  # (K,)
    if train:
        offsets = _rng(rng).random((num_clips, num_segments))  # (clips, K) in [0, 1)
    else:
        offsets = np.broadcast_to(
            ((np.arange(num_clips) + 0.5) / num_clips)[:, None], (num_clips, num_segments)
        )
    starts = np.floor(seg_begin + offsets * seg_len).astype(np.int64)
    starts = np.minimum(starts, starts_available - 1)
    # (clips, K, 1) + (L,) -> (clips, K, L) -> (clips, K*L)
    frames = (starts[:, :, None] + np.arange(snippet_len)).reshape(num_clips, num_segments * snippet_len)
    return _pad_last(frames, num_frames)


def dense_clip_indices(
    num_frames: int,
    *,
    clip_len: int,
    frame_interval: int = 1,
    num_clips: int = 1,
    train: bool,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Dense clips of ``clip_len`` frames taken every ``frame_interval``, shape ``(num_clips, clip_len)``.

    A clip spans ``(clip_len - 1) * frame_interval + 1`` frames. Training picks each clip's start
    uniformly among the starts that keep it inside the video. Testing divides those starts into
    ``num_clips`` equal parts and takes the centre of each, so the clips are spaced uniformly over
    the whole video (one clip: the centre clip), as in non-local/SlowFast multi-clip testing.

    Videos shorter than a clip **loop** (index modulo ``num_frames``), as mmaction2 and PySlowFast do:
    the frame interval, and so the apparent speed of motion, stays what the model was trained on.
    """
    _check_num_frames(num_frames)
    _check_positive(clip_len=clip_len, frame_interval=frame_interval, num_clips=num_clips)
    span = (clip_len - 1) * frame_interval + 1
    starts_available = max(num_frames - span + 1, 1)
    if train:
        starts = _rng(rng).integers(0, starts_available, size=num_clips)
    else:
        part = starts_available / num_clips
        starts = np.floor(part * (np.arange(num_clips) + 0.5)).astype(np.int64)
    # (clips, 1) + (clip_len,) -> (clips, clip_len)
    frames = starts[:, None] + np.arange(clip_len) * frame_interval
    return (frames % num_frames).astype(np.int64)


def uniform_indices(
    num_frames: int,
    *,
    num: int,
    train: bool = False,
    num_clips: int = 1,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """``num`` frames on an evenly spaced grid over the whole video, shape ``(num_clips, num)``.

    The video is divided into ``num`` equal bins. Testing takes the centre of every bin (clip ``c``
    of ``num_clips`` takes the point ``(c + 0.5) / num_clips`` through each bin); training shifts the
    whole grid by one random offset inside a bin. Unlike TSN's independent per-segment draws, the
    spacing between frames stays constant, which suits models with temporal convolutions.

    When ``num > num_frames`` neighbouring bins fall in the same frame, so frames repeat in place
    (**pad**-like duplication, never a jump back to the start).
    """
    _check_num_frames(num_frames)
    _check_positive(num=num, num_clips=num_clips)
    bin_len = num_frames / num
    offsets = (
        _rng(rng).random((num_clips, 1)) if train else ((np.arange(num_clips) + 0.5) / num_clips)[:, None]
    )
    frames = np.floor((np.arange(num) + offsets) * bin_len).astype(np.int64)  # (clips, num)
    return _pad_last(frames, num_frames)


def resample_fps_indices(
    num_frames: int,
    *,
    src_fps: float,
    dst_fps: float,
    max_frames: int | None = None,
    start: int = 0,
) -> np.ndarray:
    """Indices that play the video at ``dst_fps``: ``int(k * src_fps / dst_fps)``, shape ``(n,)``.

    ``k`` runs over every output frame whose source frame exists, beginning at output frame ``start``;
    at most ``max_frames`` are returned (I3D: 25 fps, at most 250 frames, from the first frame). A
    1-frame video gives ``[0]``. Nothing is looped or padded: the length follows the video's duration.
    """
    _check_num_frames(num_frames)
    if not (src_fps > 0 and dst_fps > 0 and math.isfinite(src_fps) and math.isfinite(dst_fps)):
        raise ValueError(f"frame rates must be positive and finite, got src={src_fps}, dst={dst_fps}")
    upper = math.ceil(num_frames * dst_fps / src_fps) + 1
    k = np.arange(upper, dtype=np.int64)
    frames = (k * float(src_fps) / float(dst_fps)).astype(np.int64)
    frames = frames[frames < num_frames][start:]
    if max_frames is not None:
        frames = frames[:max_frames]
    if frames.size == 0:  # start past the end: keep the last frame rather than return nothing
        frames = np.array([num_frames - 1], dtype=np.int64)
    return frames


def num_resampled_frames(num_frames: int, *, src_fps: float, dst_fps: float) -> int:
    """How many frames ``resample_fps_indices`` returns for the whole video without ``max_frames``."""
    return int(resample_fps_indices(num_frames, src_fps=src_fps, dst_fps=dst_fps).size)


def slowfast_indices(
    num_frames: int,
    *,
    clip_len: int,
    frame_interval: int = 1,
    alpha: int = 4,
    num_clips: int = 1,
    train: bool,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """SlowFast's two rates (arXiv 1812.03982, §3): ``(slow, fast)`` of shapes
    ``(num_clips, ceil(clip_len / alpha))`` and ``(num_clips, clip_len)``.

    ``fast`` is a dense clip (:func:`dense_clip_indices`, so short videos **loop**); ``slow`` keeps
    every ``alpha``-th fast frame, starting with the first. (PySlowFast picks the slow frames with
    ``linspace(0, T - 1, T // alpha)`` instead; the two agree whenever alpha divides T - 1 evenly.)
    """
    _check_positive(alpha=alpha)
    fast = dense_clip_indices(
        num_frames,
        clip_len=clip_len,
        frame_interval=frame_interval,
        num_clips=num_clips,
        train=train,
        rng=rng,
    )
    return np.ascontiguousarray(fast[:, ::alpha]), fast


def flow_window_indices(num_frames: int, *, starts: np.ndarray, window: int = 5) -> np.ndarray:
    """Frames needed to compute ``window`` consecutive flow fields from each start, shape
    ``(len(starts), window + 1)``.

    Flow field ``i`` of a window is computed between frames ``start + i`` and ``start + i + 1``.
    Windows running past the end **pad** with the last frame: a repeated frame yields zero flow
    ("no motion"), whereas looping would invent a jump from the last frame to the first. To index
    precomputed flow frames (``num_frames - 1`` of them) use :func:`segment_indices` with
    ``snippet_len=window`` instead.
    """
    _check_num_frames(num_frames)
    _check_positive(window=window)
    starts = np.clip(np.asarray(starts, dtype=np.int64).reshape(-1), 0, num_frames - 1)
    # (n, 1) + (window + 1,) -> (n, window + 1)
    return _pad_last(starts[:, None] + np.arange(window + 1), num_frames)


@dataclass(frozen=True)
class SamplingConfig:
    """How to pick frames; ``sample_indices`` turns it into indices for one video.

    - ``"dense"``: ``num_clips`` clips of ``clip_len`` frames ``frame_interval`` apart.
    - ``"segment"``: TSN, ``num_segments`` snippets of ``snippet_len`` frames per clip.
    - ``"uniform"``: ``clip_len`` frames evenly spread over the whole video per clip.
    - ``"fps"``: the whole video resampled to ``fps`` (at most ``max_frames``) as one clip; its length
      varies from video to video.
    """

    mode: str = "dense"
    clip_len: int = 16
    frame_interval: int = 1
    num_segments: int = 8
    snippet_len: int = 1
    num_clips: int = 1
    fps: float | None = None
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"sampling mode must be one of {MODES}, got {self.mode!r}")
        for name in ("clip_len", "frame_interval", "num_segments", "snippet_len", "num_clips"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"sampling {name} must be a positive integer, got {value!r}")
        if self.mode == "fps" and (self.fps is None or not self.fps > 0):
            raise ConfigError(f"sampling mode 'fps' needs a positive fps, got {self.fps!r}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"sampling max_frames must be positive, got {self.max_frames!r}")

    @property
    def frames_per_clip(self) -> int | None:
        """Frames in every clip, or ``None`` for mode ``"fps"`` where it depends on the video."""
        if self.mode == "segment":
            return self.num_segments * self.snippet_len
        if self.mode == "fps":
            return None
        return self.clip_len


def future_indices(indices: np.ndarray, *, num_frames: int, step: int, count: int) -> np.ndarray:
    """The ``count`` frames after each clip of ``indices`` (clips, T), ``step`` apart (the clip's frame
    interval), clamped to the last frame: (clips, count). A frame predictor's targets."""
    ahead = indices[:, -1:] + step * np.arange(1, count + 1)  # (clips, count)
    return np.minimum(ahead, num_frames - 1)


def sample_indices(
    cfg: SamplingConfig,
    *,
    num_frames: int,
    fps: float,
    train: bool,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Indices for one video, int64 of shape ``(num_clips, frames_per_clip)``, all in ``[0, num_frames)``.

    ``fps`` is the video's own frame rate (used by mode ``"fps"`` only). In mode ``"fps"`` the result
    is one clip; when training and the resampled video is longer than ``max_frames``, a random window
    of ``max_frames`` is taken, at test time the first ``max_frames``.
    """
    if cfg.mode == "segment":
        return segment_indices(
            num_frames,
            num_segments=cfg.num_segments,
            snippet_len=cfg.snippet_len,
            train=train,
            num_clips=cfg.num_clips,
            rng=rng,
        )
    if cfg.mode == "dense":
        return dense_clip_indices(
            num_frames,
            clip_len=cfg.clip_len,
            frame_interval=cfg.frame_interval,
            num_clips=cfg.num_clips,
            train=train,
            rng=rng,
        )
    if cfg.mode == "uniform":
        return uniform_indices(num_frames, num=cfg.clip_len, train=train, num_clips=cfg.num_clips, rng=rng)
    assert cfg.fps is not None  # checked in __post_init__
    start = 0
    if train and cfg.max_frames is not None:
        total = num_resampled_frames(num_frames, src_fps=fps, dst_fps=cfg.fps)
        start = int(_rng(rng).integers(0, max(total - cfg.max_frames, 0) + 1))
    frames = resample_fps_indices(
        num_frames, src_fps=fps, dst_fps=cfg.fps, max_frames=cfg.max_frames, start=start
    )
    return frames[None, :]  # (n,) -> (1, n)
