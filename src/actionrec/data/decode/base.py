"""What every decoding backend shares: the reader interface, its metadata, errors and small helpers.

A frame's index is its position in the decoder's output order when the file is decoded from the
start, which is what every backend returns for ``get_frames([i])``. (For most files this is display
order; files with packed B-frames, such as some xvid AVIs, emit timestamps out of order, and the
output position is still the definition.)

This module imports no backend and not the package, so every backend module can import it.
"""

from __future__ import annotations

import abc
import functools
import importlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actionrec.errors import ActionrecError, VideoDecodeError

DEFAULT_FPS = 30.0  # used only when a file states no frame rate at all


class FrameIndexError(VideoDecodeError, IndexError):
    """A requested frame index outside the video (or beyond what the decoder could produce)."""


class BackendUnavailableError(ActionrecError):
    """A decoding backend whose package is missing or cannot load (e.g. TorchCodec without FFmpeg libs)."""


@dataclass(frozen=True)
class VideoMetadata:
    """What a reader knows about a video; ``width``/``height`` are after rotation.

    ``rotation`` is the clockwise angle (0, 90, 180, 270) applied to the stored frames so they display
    upright; ``duration`` is ``num_frames / fps`` in seconds.
    """

    path: str
    fps: float
    num_frames: int
    duration: float
    width: int
    height: int
    rotation: int
    codec: str
    backend: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DecodeStats:
    """Work a PyAV reader has done since it was opened (for tests and benchmarks)."""

    frames_decoded: int = 0
    frames_converted: int = 0
    seeks: int = 0
    restarts: int = 0


class Deadline:
    """A time limit for one decode; ``check()`` raises :class:`VideoDecodeError` once it has passed."""

    def __init__(self, path: str, timeout_s: float) -> None:
        self.path, self.timeout_s = path, timeout_s
        self.end = time.monotonic() + timeout_s

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise VideoDecodeError(self.path, f"decoding exceeded the time limit of {self.timeout_s:g} s")


class VideoReader(abc.ABC):
    """Random access to the frames of one video (one reader per thread or process: readers keep decoder
    state). Subclasses yield frames for sorted unique indices; ``get_frames`` puts them in order."""

    metadata: VideoMetadata

    def __init__(self, path: str | Path, *, timeout_s: float) -> None:
        self.path = str(path)
        self.timeout_s = timeout_s

    @abc.abstractmethod
    def _iter_rgb(self, wanted: np.ndarray, deadline: Deadline) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, (H, W, 3) uint8 RGB)`` for each index of sorted, unique ``wanted``, in order."""

    def close(self) -> None:  # noqa: B027 - optional hook, most readers hold nothing
        """Release the file and decoder (a PyAV reader reopens the file if it is read again)."""

    def get_frames(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as a (T, H, W, 3) uint8 RGB array."""
        idx = self._check_indices(indices)
        m = self.metadata
        out = np.empty((idx.size, m.height, m.width, 3), dtype=np.uint8)
        if idx.size == 0:
            return out
        wanted, inverse = np.unique(idx, return_inverse=True)
        deadline = Deadline(self.path, self.timeout_s)
        for slot, (index, rgb) in enumerate(self._iter_rgb(wanted, deadline)):
            if rgb.shape != out.shape[1:]:
                size = f"{rgb.shape[1]}x{rgb.shape[0]}"
                raise VideoDecodeError(self.path, f"frame {index} is {size}, expected {m.width}x{m.height}")
            out[inverse == slot] = rgb
        return out

    def _check_indices(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(indices).reshape(-1)
        if idx.size == 0:
            return idx.astype(np.int64)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"frame indices must be integers, got dtype {idx.dtype}")
        n = self.metadata.num_frames
        bad = idx[(idx < 0) | (idx >= n)]
        if bad.size:
            raise FrameIndexError(
                self.path, f"frame index {int(bad[0])} is out of range for a video of {n} frames (0..{n - 1})"
            )
        return idx.astype(np.int64)

    def __len__(self) -> int:
        return self.metadata.num_frames

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.metadata})"


# ------------------------------------------------------------------------------------ shared helpers


def check_path(path: Path) -> None:
    """Raise a clear error for a missing path or an empty file, before any decoder sees it."""
    if not path.exists():
        raise VideoDecodeError(path, "file not found")
    if path.is_file() and path.stat().st_size == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")


def check_complete(path: str, counted: int, expected: float) -> None:
    """Raise if a file holds far fewer frames than its container promises, or is a GIF without its trailer."""
    if expected > 0 and counted < 0.9 * expected:
        raise VideoDecodeError(
            path, f"truncated or damaged: {counted} frames present, the container promises ~{round(expected)}"
        )
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(-1, os.SEEK_END)
        if head == b"GIF8" and f.read(1) != b"\x3b":  # every complete GIF ends with the 0x3B trailer
            raise VideoDecodeError(path, "truncated: GIF file has no trailer")


@functools.cache
def import_error(module: str) -> str | None:
    """Why ``module`` cannot be imported (None if it can). TorchCodec raises OSError/RuntimeError
    when its FFmpeg libraries are missing, not ImportError, so every exception counts."""
    try:
        importlib.import_module(module)
    except Exception as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


def short_reason(e: Exception) -> str:
    """The last non-empty line of a third-party error message (OpenCV and TorchCodec print tracebacks)."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(e).__name__
