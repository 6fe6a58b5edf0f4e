"""The default decoding backend: a seeking reader on PyAV that never decodes more than it must.

It demuxes the file once without decoding (cached per file) to learn the exact number of frames and
where the keyframes sit, seeks to the keyframe at or before the first wanted frame, decodes forward,
converts to RGB only the wanted frames, and seeks again when the next wanted frame lies beyond the next
keyframe. Rotation metadata is applied, so ``metadata.width``/``height`` describe the frames as
returned. Every decode has a time limit. The packet index is also what the OpenCV reader counts
frames with, so it need not decode a file to open it.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from actionrec.data.decode.base import (
    DEFAULT_FPS,
    Deadline,
    DecodeStats,
    FrameIndexError,
    VideoMetadata,
    VideoReader,
    check_complete,
    check_path,
)
from actionrec.errors import VideoDecodeError

_MAX_LEADING_FRAMES = 64  # frames tolerated between a seek and the keyframe it should land on
_INDEX_CACHE_SIZE = 2048


@dataclass(frozen=True)
class PacketIndex:
    """What one demux pass (no decoding) over a video stream tells: frame count and keyframe positions."""

    num_frames: int
    keyframes: tuple[int, ...]  # output positions of keyframes, ascending
    keyframe_pts: tuple[int | None, ...]  # the pts of each of those keyframe packets
    seekable: bool  # every packet has a distinct pts, so a decoded keyframe can be recognised by its pts


def _ffmpeg_reason(e: Exception) -> str:
    return str(getattr(e, "strerror", None) or e).strip().rstrip(".")


def _open_container(path: str) -> tuple[av.container.InputContainer, av.VideoStream]:
    try:
        container = av.open(path, mode="r", metadata_errors="replace")
    except av.FFmpegError as e:
        raise VideoDecodeError(path, f"not a readable video file ({_ffmpeg_reason(e)})") from None
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(path, "file has no video stream")
    return container, container.streams.best("video") or container.streams.video[0]


def _rank_positions(pts: list[int | None], keys: list[int]) -> list[int]:
    """Output positions of keyframe packets: their rank by pts when pts are usable, else decode order."""
    if any(p is None for p in pts) or len(set(pts)) != len(pts):
        return keys
    order = np.sort(np.asarray(pts, dtype=np.int64))
    return [int(np.searchsorted(order, pts[k])) for k in keys]


def _expected_frames(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    """Frames the container promises: its frame table if it has one, else duration x frame rate."""
    if stream.frames:
        return float(stream.frames)
    return container.duration / 1e6 * _stream_fps(stream) if container.duration else 0.0


def _scan_packets(path: str, deadline: Deadline) -> PacketIndex:
    container, stream = _open_container(path)
    pts: list[int | None] = []
    keys: list[int] = []
    total = 0
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the flush packet at the end
                continue
            if packet.is_corrupt:  # what a cut-off or damaged file leaves behind
                raise VideoDecodeError(path, f"damaged packet after {total} frames (truncated or corrupt)")
            total += 1
            if packet.is_discard:  # edit-list lead-in: decoded for reference, never output
                continue
            if packet.is_keyframe:
                keys.append(len(pts))
            pts.append(packet.pts)
            if total % 512 == 0:
                deadline.check()
        expected = _expected_frames(container, stream)
    except av.FFmpegError as e:
        raise VideoDecodeError(path, f"demuxing failed after {total} packets ({_ffmpeg_reason(e)})") from None
    finally:
        container.close()
    check_complete(path, total, expected)
    positions = _rank_positions(pts, keys)
    seekable = all(p is not None for p in pts) and len(set(pts)) == len(pts)
    return PacketIndex(len(pts), tuple(positions), tuple(pts[k] for k in keys), seekable)


_index_cache: OrderedDict[tuple[str, int, int], PacketIndex] = OrderedDict()
_index_lock = threading.Lock()


def packet_index(path: str | Path, *, timeout_s: float = 60.0) -> PacketIndex:
    """The packet index of ``path``'s video stream, cached per (path, size, mtime)."""
    path = str(path)
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    with _index_lock:
        if key in _index_cache:
            _index_cache.move_to_end(key)
            return _index_cache[key]
    index = _scan_packets(path, Deadline(path, timeout_s))
    with _index_lock:
        _index_cache[key] = index
        while len(_index_cache) > _INDEX_CACHE_SIZE:
            _index_cache.popitem(last=False)
    return index


def _stream_fps(stream: av.VideoStream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and float(rate) > 0:
            return float(rate)
    return DEFAULT_FPS


def _thread_type(stream: av.VideoStream) -> str:
    """Decoder threading: frame + slice threads for one reader on a picture of 320x240 or more; none in a
    DataLoader worker (the workers already share the cores) or for small pictures, where starting and
    flushing threads costs more than it saves (measured: 64 px clips 1.7 ms a file without threads,
    2.7 ms with; a 2-worker loader 626 clips/s without, 342 with). The output is identical either way."""
    from torch.utils.data import get_worker_info

    ctx = stream.codec_context
    if get_worker_info() is not None or (ctx.width or 0) * (ctx.height or 0) < 320 * 240:
        return "NONE"
    return "AUTO"


def _to_rgb(frame: av.VideoFrame, rotation: int) -> np.ndarray:
    """Convert one decoded frame to (H, W, 3) uint8 RGB, rotated ``rotation`` degrees clockwise."""
    # threads=1: PyAV's default (0 = one swscale thread per core) starts threads for every frame, which
    # costs 3-4x the conversion itself (measured: 64 px frames 7.3 -> 2.1 ms a 29-frame file, 340x256
    # 330 -> 80 us a frame); the output is bit-identical.
    rgb = frame.to_ndarray(format="rgb24", threads=1)
    return np.rot90(rgb, k=-(rotation // 90)) if rotation else rgb  # np.rot90 turns counter-clockwise


def _frame_rotation(frame: av.VideoFrame) -> int:
    """Clockwise display rotation from the frame's display matrix (FFmpeg reports counter-clockwise)."""
    return round(-float(frame.rotation or 0) / 90.0) % 4 * 90


class PyAVReader(VideoReader):
    """Seeking reader on PyAV: keyframe seek, forward decode, RGB conversion of wanted frames only."""

    def __init__(self, path: str | Path, *, timeout_s: float = 60.0) -> None:
        super().__init__(path, timeout_s=timeout_s)
        self._deadline = Deadline(self.path, timeout_s)
        self.index = packet_index(self.path, timeout_s=timeout_s)
        if self.index.num_frames == 0:
            raise VideoDecodeError(self.path, "video stream has no frames")
        self._key_positions = np.asarray(self.index.keyframes, dtype=np.int64)
        self._pos_by_pts = dict(zip(self.index.keyframe_pts, self.index.keyframes))
        self._container: av.container.InputContainer | None = None
        self._frames: Iterator[av.VideoFrame] | None = None
        self._next_pos = 0
        self.stats = DecodeStats(restarts=-1)  # the first open is not a restart
        self._restart()
        try:
            first = self._read(0)
        except BaseException:
            self.close()
            raise
        # Frame 0 stays at hand (self._pending): many clips start there.
        self.rotation = _frame_rotation(first)
        swap = self.rotation in (90, 270)
        stream = self._stream
        fps = _stream_fps(stream)
        n = self.index.num_frames
        self.metadata = VideoMetadata(
            path=self.path, fps=fps, num_frames=n, duration=n / fps,
            width=first.height if swap else first.width, height=first.width if swap else first.height,
            rotation=self.rotation, codec=stream.codec_context.name, backend="pyav",
        )  # fmt: skip

    # -- decoder state ------------------------------------------------------------------------
    def _restart(self) -> None:
        """(Re)open the file and decode from its first frame: position 0 by definition."""
        self.close()
        self.stats.restarts += 1
        self._container, self._stream = _open_container(self.path)
        self._stream.thread_type = _thread_type(self._stream)
        self._frames, self._next_pos, self._pending = self._decoded(), 0, None

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """Every frame the decoder outputs from the container's current read position."""
        assert self._container is not None
        try:
            for packet in self._container.demux(self._stream):
                self._deadline.check()
                for frame in packet.decode():  # the final empty packet flushes the decoder
                    self.stats.frames_decoded += 1
                    yield frame
        except av.FFmpegError as e:
            raise VideoDecodeError(self.path, f"decoding failed ({_ffmpeg_reason(e)})") from None

    def _seek(self, key: int, target: int) -> None:
        """Seek to keyframe number ``key``; restart if the landing cannot be confirmed."""
        assert self._container is not None
        pts = self.index.keyframe_pts[key]
        self.stats.seeks += 1
        try:
            self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
        except av.FFmpegError:
            return self._restart()
        frames = self._decoded()
        # Leading pictures of an open GOP may come out before the keyframe: skip them.
        for frame in itertools.islice(frames, _MAX_LEADING_FRAMES):
            pos = self._pos_by_pts.get(frame.pts)
            if pos is not None:
                if pos > target:  # landed past the wanted frame: only a decode from the start is safe
                    return self._restart()
                self._frames, self._next_pos, self._pending = itertools.chain([frame], frames), pos, None
                return None
        return self._restart()

    def _goto(self, target: int) -> None:
        """Put the decoder where decoding forward reaches ``target`` at least cost."""
        key = int(np.searchsorted(self._key_positions, target, side="right")) - 1
        key_pos = int(self._key_positions[key]) if key >= 0 else 0  # no keyframe before: start of file
        if self._frames is not None and key_pos <= self._next_pos <= target:
            return  # no keyframe between here and the target: decoding through is cheapest
        if key < 0 or not self.index.seekable:
            self._restart()
        else:
            self._seek(key, target)

    def _read(self, target: int) -> av.VideoFrame:
        """The decoded (unconverted) frame at output position ``target``."""
        if self._pending is not None and self._next_pos - 1 == target:
            return self._pending
        self._goto(target)
        assert self._frames is not None
        try:
            for frame in self._frames:
                pos, self._next_pos = self._next_pos, self._next_pos + 1
                if pos == target:
                    self._pending = frame
                    return frame
        except VideoDecodeError:
            self._frames, self._pending = None, None  # the next read starts afresh
            raise
        self._frames, self._pending = None, None
        raise FrameIndexError(
            self.path, f"frame {target} requested but the decoder produced only {self._next_pos} frames"
        )

    # -- public -------------------------------------------------------------------------------
    def iter_raw(self, indices: Sequence[int] | np.ndarray) -> Iterator[tuple[int, av.VideoFrame]]:
        """Decoded frames (no colour conversion) at the sorted unique ``indices``: the reader's raw cost."""
        wanted = np.unique(self._check_indices(indices))
        self._deadline = Deadline(self.path, self.timeout_s)
        for index in wanted.tolist():
            yield index, self._read(index)

    def _iter_rgb(self, wanted: np.ndarray, deadline: Deadline) -> Iterator[tuple[int, np.ndarray]]:
        self._deadline = deadline
        for index in wanted.tolist():
            frame = self._read(index)
            self.stats.frames_converted += 1
            yield index, _to_rgb(frame, self.rotation)

    def close(self) -> None:
        self._frames, self._pending = None, None
        if getattr(self, "_container", None) is not None:
            self._container.close()
            self._container = None


# ------------------------------------------------------------------------------------ whole-file helpers


def keyframe_positions(path: str | Path) -> list[int]:
    """Output positions of the keyframes of ``path``'s video stream (one demux pass, no decoding)."""
    path = Path(path)
    check_path(path)
    return list(packet_index(path).keyframes)


def iter_frames(path: str | Path, *, timeout_s: float = 600.0) -> Iterator[np.ndarray]:
    """Every frame of ``path`` in decoder output order as (H, W, 3) uint8 RGB, rotation applied (PyAV)."""
    path = Path(path)
    check_path(path)
    deadline = Deadline(str(path), timeout_s)
    container, stream = _open_container(str(path))
    stream.thread_type = _thread_type(stream)
    try:
        for frame in container.decode(stream):
            deadline.check()
            yield _to_rgb(frame, _frame_rotation(frame))
    except av.FFmpegError as e:
        raise VideoDecodeError(path, f"decoding failed ({_ffmpeg_reason(e)})") from None
    finally:
        container.close()
