"""The non-default decoding backends behind :func:`actionrec.data.decode.open_video`.

- ``opencv``: ``cv2.VideoCapture`` (FFmpeg inside OpenCV). OpenCV's frame seeking guesses positions from
  timestamps and is wrong for files whose timestamps come out of order, so this reader counts frames
  exactly at open (``grab`` without conversion) and reads forward, reopening only to go back.
- ``torchcodec``: TorchCodec's exact-seek ``VideoDecoder``; needs FFmpeg shared libraries on the system.
- ``frames``: a folder of images, the "rawframes" layout (``img_00001.jpg`` ...) or any ``*.jpg``/``*.png``
  in natural sort order; an optional ``meta.json`` (written by ``actionrec prepare``) gives the fps.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from actionrec.data.decode import (
    DEFAULT_FPS,
    BackendUnavailableError,
    Deadline,
    FrameIndexError,
    VideoMetadata,
    VideoReader,
    check_complete,
)
from actionrec.errors import VideoDecodeError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
FRAMES_META = "meta.json"


@functools.cache
def _import_error(module: str) -> str | None:
    """Why ``module`` cannot be imported (None if it can). TorchCodec raises OSError/RuntimeError
    when its FFmpeg libraries are missing, not ImportError, so every exception counts."""
    try:
        importlib.import_module(module)
    except Exception as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


def backend_available(name: str) -> bool:
    module = {"pyav": "av", "opencv": "cv2", "torchcodec": "torchcodec.decoders", "frames": "cv2"}[name]
    return _import_error(module) is None


def open_backend(path: Path, backend: str, *, timeout_s: float) -> VideoReader:
    readers = {"opencv": OpenCVReader, "torchcodec": TorchCodecReader, "frames": FramesReader}
    return readers[backend](path, timeout_s=timeout_s)


def _short_reason(e: Exception) -> str:
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(e).__name__


# --------------------------------------------------------------------------------------------- OpenCV


def _fourcc(value: float) -> str:
    code = int(value)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text.strip("\x00 ").lower() if text.isprintable() else "unknown"


class OpenCVReader(VideoReader):
    """Forward-only reader on ``cv2.VideoCapture``; ``grab`` skips unwanted frames without conversion."""

    def __init__(self, path: str | Path, *, timeout_s: float = 60.0) -> None:
        super().__init__(path, timeout_s=timeout_s)
        deadline = Deadline(self.path, timeout_s)
        cap = self._open()
        try:
            fps, codec = cap.get(cv2.CAP_PROP_FPS), _fourcc(cap.get(cv2.CAP_PROP_FOURCC))
            expected = cap.get(cv2.CAP_PROP_FRAME_COUNT)
            rotation = int(cap.get(cv2.CAP_PROP_ORIENTATION_META)) % 360
            ok, first = cap.read()  # auto-rotated by OpenCV
            if not ok or first is None:
                raise VideoDecodeError(self.path, "OpenCV could not decode the first frame")
            n = 1
            while cap.grab():  # exact count: the container's own count is an estimate for some formats
                n += 1
                if n % 64 == 0:
                    deadline.check()
        except cv2.error as e:
            raise VideoDecodeError(self.path, f"OpenCV failed ({_short_reason(e)})") from None
        finally:
            cap.release()
        check_complete(self.path, n, expected)
        fps = float(fps) if fps and fps > 0 else DEFAULT_FPS
        h, w = first.shape[:2]
        self.metadata = VideoMetadata(self.path, fps, n, n / fps, w, h, rotation, codec, "opencv")
        self._cap: Any = None
        self._next_pos = 0

    def _open(self) -> Any:
        ms = int(self.timeout_s * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        cap = cv2.VideoCapture(self.path, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise VideoDecodeError(self.path, "OpenCV could not open it as a video")
        return cap

    def _iter_rgb(self, wanted: np.ndarray, deadline: Deadline) -> Iterator[tuple[int, np.ndarray]]:
        try:
            for index in wanted.tolist():
                yield index, self._read(index, deadline)
        except cv2.error as e:
            raise VideoDecodeError(self.path, f"OpenCV failed ({_short_reason(e)})") from None

    def _read(self, index: int, deadline: Deadline) -> np.ndarray:
        if self._cap is None or self._next_pos > index:
            self.close()
            self._cap, self._next_pos = self._open(), 0
        while self._next_pos < index:
            deadline.check()
            if not self._cap.grab():
                break
            self._next_pos += 1
        ok, bgr = self._cap.read() if self._next_pos == index else (False, None)
        if not ok or bgr is None:
            raise FrameIndexError(self.path, f"OpenCV could not decode frame {index}")
        self._next_pos += 1
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if getattr(self, "_cap", None) is not None:
            self._cap.release()
            self._cap = None


# ----------------------------------------------------------------------------------------- TorchCodec


class TorchCodecReader(VideoReader):
    """TorchCodec's ``VideoDecoder`` in exact seek mode (frames come back as NHWC uint8)."""

    def __init__(self, path: str | Path, *, timeout_s: float = 60.0) -> None:
        super().__init__(path, timeout_s=timeout_s)
        reason = _import_error("torchcodec.decoders")
        if reason is not None:
            raise BackendUnavailableError(f"the torchcodec backend cannot load here ({reason})")
        from torchcodec.decoders import VideoDecoder

        try:
            self._decoder = VideoDecoder(self.path, dimension_order="NHWC", seek_mode="exact")
            meta = self._decoder.metadata
            first = self._decoder.get_frames_at(indices=[0]).data
        except (RuntimeError, ValueError) as e:
            raise VideoDecodeError(self.path, f"torchcodec failed ({_short_reason(e)})") from None
        fps = float(meta.average_fps or 0) or DEFAULT_FPS
        n = int(meta.num_frames or 0)
        if n == 0:
            raise VideoDecodeError(self.path, "video stream has no frames")
        h, w = int(first.shape[1]), int(first.shape[2])
        rotation = round(float(getattr(meta, "rotation", 0) or 0)) % 360
        codec = str(meta.codec or "unknown")
        self.metadata = VideoMetadata(self.path, fps, n, n / fps, w, h, rotation, codec, "torchcodec")

    def _iter_rgb(self, wanted: np.ndarray, deadline: Deadline) -> Iterator[tuple[int, np.ndarray]]:
        deadline.check()
        try:
            batch = self._decoder.get_frames_at(indices=wanted.tolist()).data.numpy()
        except (RuntimeError, IndexError, ValueError) as e:
            raise VideoDecodeError(self.path, f"torchcodec failed ({_short_reason(e)})") from None
        deadline.check()
        yield from zip(wanted.tolist(), batch)


# --------------------------------------------------------------------------------------------- frames


def _natural_key(path: Path) -> list[Any]:
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", path.name)]


def list_frame_files(folder: Path) -> list[Path]:
    """The frames of a rawframes folder: ``img_*.jpg`` if present, else every image, naturally sorted."""
    raw = sorted(folder.glob("img_*.jpg"), key=_natural_key)
    if raw:
        return raw
    images = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(images, key=_natural_key)


def _folder_fps(folder: Path) -> float:
    meta = folder / FRAMES_META
    if not meta.is_file():
        return DEFAULT_FPS
    try:
        fps = float(json.loads(meta.read_text())["fps"])
    except (ValueError, KeyError, TypeError) as e:
        raise VideoDecodeError(meta, f"bad frames metadata ({e})") from None
    return fps if fps > 0 else DEFAULT_FPS


class FramesReader(VideoReader):
    """A folder of JPEG/PNG frames; frame ``i`` is the ``i``-th file in natural sort order."""

    def __init__(self, path: str | Path, *, timeout_s: float = 60.0) -> None:
        super().__init__(path, timeout_s=timeout_s)
        folder = Path(path)
        if not folder.is_dir():
            raise VideoDecodeError(folder, "not a folder of frames")
        self.files = list_frame_files(folder)
        if not self.files:
            raise VideoDecodeError(folder, f"no {'/'.join(IMAGE_SUFFIXES)} frames in the folder")
        first = self._load(0)
        fps, n = _folder_fps(folder), len(self.files)
        codec = self.files[0].suffix.lower().lstrip(".")
        h, w = first.shape[:2]
        self.metadata = VideoMetadata(self.path, fps, n, n / fps, w, h, 0, codec, "frames")

    def _load(self, index: int) -> np.ndarray:
        bgr = cv2.imread(str(self.files[index]), cv2.IMREAD_COLOR)
        if bgr is None:
            raise VideoDecodeError(self.files[index], "unreadable image")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _iter_rgb(self, wanted: np.ndarray, deadline: Deadline) -> Iterator[tuple[int, np.ndarray]]:
        for index in wanted.tolist():
            deadline.check()
            yield index, self._load(index)
