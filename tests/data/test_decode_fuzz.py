"""Fuzzing the decoders with damaged copies of real videos: a decode either succeeds or raises
VideoDecodeError (never another exception, a crash or a hang: every decode runs under a time limit)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actionrec.data.decode import open_video
from actionrec.errors import VideoDecodeError

SOURCES = ["rotation_0.mov", "carphone.mp4", "eye_makeup.avi", "unlabeled/clip02.avi", "unlabeled/clip07.gif"]


@functools.cache
def _source_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


@st.composite
def damaged_videos(draw: st.DrawFn, videos_dir: Path) -> tuple[str, bytes]:
    """A real video with some bytes flipped, a cut, or a chunk of itself spliced in somewhere else."""
    name = draw(st.sampled_from(SOURCES))
    data = bytearray(_source_bytes(str(videos_dir / name)))
    size = len(data)
    kind = draw(st.sampled_from(["flip", "truncate", "splice", "flip_head"]))
    if kind in ("flip", "flip_head"):  # flip_head aims at the container header, where parsing happens
        span = min(size, 4096) if kind == "flip_head" else size
        for pos in draw(st.lists(st.integers(0, span - 1), min_size=1, max_size=24)):
            data[pos] ^= draw(st.integers(1, 255))
    elif kind == "truncate":
        data = data[: draw(st.integers(0, size - 1))]
    else:
        start = draw(st.integers(0, size - 1))
        chunk = bytes(data[start : start + draw(st.integers(1, 8192))])
        at = draw(st.integers(0, size))
        data[at:at] = chunk
    return f"{kind}:{name}", bytes(data)


def _decode(path: Path, backend: str) -> None:
    with open_video(path, backend, timeout_s=10.0) as video:
        n = video.metadata.num_frames
        frames = video.get_frames(np.unique([0, n // 2, n - 1]))
        assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_damaged_videos_fail_cleanly(videos_dir: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:

        @settings(
            max_examples=30, deadline=None, derandomize=True, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )  # fmt: skip
        @given(case=damaged_videos(videos_dir))
        def check(case: tuple[str, bytes]) -> None:
            label, data = case
            path = Path(tmp) / f"fuzz{Path(label.split(':', 1)[1]).suffix}"
            path.write_bytes(data)
            for backend in ("pyav", "opencv"):
                try:
                    _decode(path, backend)
                except VideoDecodeError as e:
                    assert str(path) in str(e), f"{label} ({backend}): message does not name the file"

        check()
