"""The ``opencv`` decoding backend: ``cv2.VideoCapture`` (FFmpeg inside OpenCV).

Opening reads metadata only: size, frame rate, codec and rotation from OpenCV's properties, and the
exact frame count from the demux-only packet index the PyAV reader also uses (OpenCV's own count is
an estimate for some formats). Frames are decoded in ``get_frames``, forward from the start: OpenCV's
frame seeking guesses positions from timestamps and is wrong for files whose timestamps come out of
order, so going back reopens the file rather than seeking, and ``grab`` skips unwanted frames without
colour conversion.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from actionrec.data.decode.base import (
    DEFAULT_FPS,
    Deadline,
    FrameIndexError,
    VideoMetadata,
    VideoReader,
    short_reason,
)
from actionrec.data.decode.pyav import packet_index
from actionrec.errors import VideoDecodeError


def _fourcc(value: float) -> str:
    code = int(value)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text.strip("\x00 ").lower() if text.isprintable() else "unknown"


class OpenCVReader(VideoReader):
    """Forward-only reader on ``cv2.VideoCapture``; ``grab`` skips unwanted frames without conversion."""

    def __init__(self, path: str | Path, *, timeout_s: float = 60.0) -> None:
        super().__init__(path, timeout_s=timeout_s)
        self._cap: Any = self._open()
        self._next_pos = 0  # output position of the frame the next grab/read returns
        try:
            self.metadata = self._read_metadata()
        except BaseException:
            self.close()
            raise

    def _read_metadata(self) -> VideoMetadata:
        """Everything but the frames: OpenCV's properties and the packet index's exact frame count."""
        cap = self._cap
        try:
            fps, codec = cap.get(cv2.CAP_PROP_FPS), _fourcc(cap.get(cv2.CAP_PROP_FOURCC))
            rotation = int(cap.get(cv2.CAP_PROP_ORIENTATION_META)) % 360
            # OpenCV rotates frames itself and reports their size after rotation.
            w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        except cv2.error as e:
            raise VideoDecodeError(self.path, f"OpenCV failed ({short_reason(e)})") from None
        if w <= 0 or h <= 0:
            raise VideoDecodeError(self.path, "OpenCV reports no frame size")
        n = packet_index(self.path, timeout_s=self.timeout_s).num_frames  # checks the file is complete
        if n == 0:
            raise VideoDecodeError(self.path, "video stream has no frames")
        fps = float(fps) if fps and fps > 0 else DEFAULT_FPS
        return VideoMetadata(self.path, fps, n, n / fps, w, h, rotation, codec, "opencv")

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
            raise VideoDecodeError(self.path, f"OpenCV failed ({short_reason(e)})") from None

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
