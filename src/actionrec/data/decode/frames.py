"""The ``frames`` decoding backend: a folder of images instead of a video file.

The folder holds the "rawframes" layout (``img_00001.jpg`` ...) or any ``*.jpg``/``*.png`` in natural
sort order; an optional ``meta.json`` (written by ``actionrec prepare``) gives the fps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from actionrec.data.decode.base import DEFAULT_FPS, Deadline, VideoMetadata, VideoReader
from actionrec.errors import VideoDecodeError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
FRAMES_META = "meta.json"


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
