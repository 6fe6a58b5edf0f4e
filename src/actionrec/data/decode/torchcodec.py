"""The ``torchcodec`` decoding backend: TorchCodec's exact-seek ``VideoDecoder``.

TorchCodec needs FFmpeg shared libraries on the system, so it is imported only when a reader opens;
:func:`actionrec.data.decode.open_video` checks first that it loads and raises
:class:`~actionrec.data.decode.base.BackendUnavailableError` if not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from actionrec.data.decode.base import DEFAULT_FPS, Deadline, VideoMetadata, VideoReader, short_reason
from actionrec.errors import VideoDecodeError


class TorchCodecReader(VideoReader):
    """TorchCodec's ``VideoDecoder`` in exact seek mode (frames come back as NHWC uint8)."""

    def __init__(self, path: str | Path, *, timeout_s: float = 60.0) -> None:
        super().__init__(path, timeout_s=timeout_s)
        from torchcodec.decoders import VideoDecoder

        try:
            self._decoder = VideoDecoder(self.path, dimension_order="NHWC", seek_mode="exact")
            meta = self._decoder.metadata
            first = self._decoder.get_frames_at(indices=[0]).data
        except (RuntimeError, ValueError) as e:
            raise VideoDecodeError(self.path, f"torchcodec failed ({short_reason(e)})") from None
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
            raise VideoDecodeError(self.path, f"torchcodec failed ({short_reason(e)})") from None
        deadline.check()
        yield from zip(wanted.tolist(), batch)
