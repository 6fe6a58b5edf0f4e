"""Video decoding: one small reader interface over PyAV (default), OpenCV, TorchCodec and JPEG folders.

>>> with open_video("clip.mp4") as video:
...     clip = video.get_frames([0, 8, 16, 24])  # (4, H, W, 3) uint8 RGB

A frame's index is its position in the decoder's output order when the file is decoded from the
start, which is what every backend returns for ``get_frames([i])``. (For most files this is display
order; files with packed B-frames, such as some xvid AVIs, emit timestamps out of order, and the
output position is still the definition.)

The PyAV reader never decodes more than it must: it demuxes the file once without decoding (cached
per file) to learn the exact number of frames and where the keyframes sit, seeks to the keyframe at
or before the first wanted frame, decodes forward, converts to RGB only the wanted frames, and seeks
again when the next wanted frame lies beyond the next keyframe. Rotation metadata is applied, so
``metadata.width``/``height`` describe the frames as returned. Every decode has a time limit.

The OpenCV, TorchCodec and JPEG-folder backends live in :mod:`actionrec.data.decode_backends`.
"""

from __future__ import annotations

import abc
import itertools
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from actionrec.errors import ActionrecError, ConfigError, VideoDecodeError

BACKENDS = ("pyav", "opencv", "torchcodec", "frames")
DEFAULT_FPS = 30.0  # used only when a file states no frame rate at all
_MAX_LEADING_FRAMES = 64  # frames tolerated between a seek and the keyframe it should land on
_INDEX_CACHE_SIZE = 2048


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


# ----------------------------------------------------------------------------------------------- PyAV


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


# ------------------------------------------------------------------------------------ public helpers


def list_backends() -> list[str]:
    """Backends that can be used here (``torchcodec`` only when it imports and loads its FFmpeg)."""
    from actionrec.data.decode_backends import backend_available

    return [name for name in BACKENDS if backend_available(name)]


def _check_path(path: Path) -> None:
    if not path.exists():
        raise VideoDecodeError(path, "file not found")
    if path.is_file() and path.stat().st_size == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")


def open_video(path: str | Path, backend: str = "pyav", *, timeout_s: float = 60.0) -> VideoReader:
    """Open a video file (or a folder of frames, which always uses the ``frames`` backend)."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown video backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if not timeout_s > 0:
        raise ConfigError(f"timeout_s must be positive, got {timeout_s}")
    path = Path(path)
    _check_path(path)
    if path.is_dir():
        backend = "frames"
    elif backend == "frames":
        raise VideoDecodeError(path, "the frames backend needs a folder of images, got a file")
    if backend == "pyav":
        return PyAVReader(path, timeout_s=timeout_s)
    from actionrec.data import decode_backends

    return decode_backends.open_backend(path, backend, timeout_s=timeout_s)


def keyframe_positions(path: str | Path) -> list[int]:
    """Output positions of the keyframes of ``path``'s video stream (one demux pass, no decoding)."""
    path = Path(path)
    _check_path(path)
    return list(packet_index(path).keyframes)


def iter_frames(path: str | Path, *, timeout_s: float = 600.0) -> Iterator[np.ndarray]:
    """Every frame of ``path`` in decoder output order as (H, W, 3) uint8 RGB, rotation applied (PyAV)."""
    path = Path(path)
    _check_path(path)
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


def decode_all(path: str | Path, backend: str = "pyav", *, timeout_s: float = 600.0) -> np.ndarray:
    """Every frame, decoded sequentially and all converted: (N, H, W, 3) uint8. The naive reference."""
    if backend == "pyav":
        frames = list(iter_frames(path, timeout_s=timeout_s))
        if not frames:
            raise VideoDecodeError(path, "video stream has no frames")
        return np.stack(frames)  # N x (H, W, 3) -> (N, H, W, 3)
    with open_video(path, backend, timeout_s=timeout_s) as video:
        return video.get_frames(np.arange(video.metadata.num_frames))
