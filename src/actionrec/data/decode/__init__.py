"""Video decoding: one small reader interface over PyAV (default), OpenCV, TorchCodec and JPEG folders.

>>> with open_video("clip.mp4") as video:
...     clip = video.get_frames([0, 8, 16, 24])  # (4, H, W, 3) uint8 RGB

The interface and shared helpers are in :mod:`.base`, one module per backend next to it (:mod:`.pyav`,
:mod:`.opencv`, :mod:`.torchcodec`, :mod:`.frames`). This module holds the one registry of backends
and the entry points. The backend modules import :mod:`.base` (and :mod:`.opencv` the PyAV packet
index), never this module, so there is no import cycle. Backends other than PyAV are imported on first
use: ``import actionrec.data.decode`` does not import OpenCV.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from actionrec.data.decode.base import (
    DEFAULT_FPS,
    BackendUnavailableError,
    Deadline,
    DecodeStats,
    FrameIndexError,
    VideoMetadata,
    VideoReader,
    check_path,
    import_error,
)
from actionrec.data.decode.pyav import (
    PacketIndex,
    PyAVReader,
    _index_cache,  # re-exported: benchmarks clear it to measure cold opens
    iter_frames,
    keyframe_positions,
    packet_index,
)
from actionrec.errors import ConfigError, VideoDecodeError

__all__ = [
    "BACKENDS",
    "DEFAULT_FPS",
    "BackendUnavailableError",
    "Deadline",
    "DecodeStats",
    "FrameIndexError",
    "PacketIndex",
    "PyAVReader",
    "VideoMetadata",
    "VideoReader",
    "_index_cache",
    "backend_available",
    "decode_all",
    "iter_frames",
    "keyframe_positions",
    "list_backends",
    "open_video",
    "packet_index",
]


@dataclass(frozen=True)
class _Backend:
    """Where a backend's reader class lives and which package it needs to load."""

    module: str  # the submodule of this package that defines the reader
    reader: str  # the reader class's name in that module
    requires: str  # the backend is available when this module imports

    def reader_class(self) -> type[VideoReader]:
        module = importlib.import_module(f"{__name__}.{self.module}")
        return cast(type[VideoReader], getattr(module, self.reader))


_REGISTRY: dict[str, _Backend] = {
    "pyav": _Backend("pyav", "PyAVReader", requires="av"),
    "opencv": _Backend("opencv", "OpenCVReader", requires="cv2"),
    "torchcodec": _Backend("torchcodec", "TorchCodecReader", requires="torchcodec.decoders"),
    "frames": _Backend("frames", "FramesReader", requires="cv2"),
}
BACKENDS = tuple(_REGISTRY)


def backend_available(name: str) -> bool:
    """Whether backend ``name`` can be used here (its package imports and, for TorchCodec, loads FFmpeg)."""
    return import_error(_REGISTRY[name].requires) is None


def list_backends() -> list[str]:
    """Backends that can be used here (``torchcodec`` only when it imports and loads its FFmpeg)."""
    return [name for name in BACKENDS if backend_available(name)]


def open_video(path: str | Path, backend: str = "pyav", *, timeout_s: float = 60.0) -> VideoReader:
    """Open a video file (or a folder of frames, which always uses the ``frames`` backend)."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown video backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if not timeout_s > 0:
        raise ConfigError(f"timeout_s must be positive, got {timeout_s}")
    path = Path(path)
    check_path(path)
    if path.is_dir():
        backend = "frames"
    elif backend == "frames":
        raise VideoDecodeError(path, "the frames backend needs a folder of images, got a file")
    entry = _REGISTRY[backend]
    reason = import_error(entry.requires)
    if reason is not None:
        raise BackendUnavailableError(f"the {backend} backend cannot load here ({reason})")
    return entry.reader_class()(path, timeout_s=timeout_s)


def decode_all(path: str | Path, backend: str = "pyav", *, timeout_s: float = 600.0) -> np.ndarray:
    """Every frame, decoded sequentially and all converted: (N, H, W, 3) uint8. The naive reference."""
    if backend == "pyav":
        frames = list(iter_frames(path, timeout_s=timeout_s))
        if not frames:
            raise VideoDecodeError(path, "video stream has no frames")
        return np.stack(frames)  # N x (H, W, 3) -> (N, H, W, 3)
    with open_video(path, backend, timeout_s=timeout_s) as video:
        return video.get_frames(np.arange(video.metadata.num_frames))
