"""Where a sample's streams are read from: the video file, flow folders, or flow computed on the fly.

:class:`SampleSource` opens what one video's streams need, and nothing else: the video for ``rgb``
and ``future`` frames, the folder ``actionrec flow`` wrote for stored ``flow`` (read by
:class:`~actionrec.data.flow_frames.FlowFramesReader`, any of the ``rawframes`` namings), or, with
``FlowSource(method="farneback")``, the video again, and Farneback flow between each sampled frame and
the next, quantised exactly as ``actionrec flow`` stores it (so the flow transforms and the network
see the same values either way; for small datasets, where extracting flow first is not worth it).

Flow ``i`` is the motion from frame ``i`` to ``i + 1``; a clip's flow stream is the flow at the
clip's frame indices, the last flow repeated for the video's last frame. The dataset and
``predict`` both read through this class, so a model sees the same input in training and in use.

A :class:`FrameCache` keeps whole decoded videos in memory (a byte budget per process): for small
datasets read for many epochs (the synthetic benchmark's 48-px videos), where opening and seeking a
file costs more than the network. The frames served are the ones decoding gives (tested equal).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from actionrec.data.boxes import BoxFileError, BoxSource, MissingBoxFileError
from actionrec.data.flow import DONE_MARKER, compute_flow, quantize_flow
from actionrec.data.flow_frames import FlowFramesReader
from actionrec.errors import ConfigError, VideoDecodeError

FLOW_METHODS = ("stored", "farneback")


@dataclass(frozen=True)
class FlowSource:
    """Stored flow under ``root`` (one folder per video: its relative path without the suffix, as
    ``actionrec flow`` writes), or ``method="farneback"``, computed from the frames and quantised to
    ``±bound`` pixels."""

    root: str | None = None
    method: str = "stored"
    bound: float = 20.0

    def __post_init__(self) -> None:
        if self.method not in FLOW_METHODS:
            raise ConfigError(f"flow method {self.method!r} is not one of {', '.join(FLOW_METHODS)}")

    def folder(self, video: Path, relative: str | Path | None = None) -> Path:
        """The flow folder of ``video`` (``relative``: its path under the dataset root)."""
        if self.root is None:
            raise ConfigError(
                "this model takes optical flow: name the folder `actionrec flow` wrote (data.options."
                "flow_root, --flow-root), or compute it on the fly (flow_method, --flow-method farneback)"
            )
        return Path(self.root) / Path(relative if relative is not None else video.name).with_suffix("")


class FrameCache:
    """Whole decoded videos by path, ``(frames (T, H, W, 3) uint8, fps)``, up to ``max_mb`` MiB in all;
    a video that no longer fits is simply not kept (no eviction: an epoch reads every video once)."""

    def __init__(self, max_mb: float) -> None:
        self.max_bytes, self.used = int(max_mb * 2**20), 0
        self.videos: dict[str, tuple[np.ndarray, float]] = {}

    def get(self, path: Path) -> tuple[np.ndarray, float] | None:
        return self.videos.get(str(path))

    def fits(self, nbytes: int) -> bool:
        return self.used + nbytes <= self.max_bytes

    def put(self, path: Path, frames: np.ndarray, fps: float) -> None:
        if self.fits(frames.nbytes):
            self.videos[str(path)] = (frames, fps)
            self.used += frames.nbytes


def needs_video(streams: tuple[str, ...], flow: FlowSource) -> bool:
    """Whether reading ``streams`` opens the video file (not for stored flow alone)."""
    return "rgb" in streams or "future" in streams or ("flow" in streams and flow.method == "farneback")


class SampleSource:
    """The readers for ``streams`` of one video; use as a context manager, then :meth:`read`."""

    def __init__(
        self,
        video: str | Path,
        *,
        streams: tuple[str, ...],
        flow: FlowSource | None = None,
        relative: str | Path | None = None,
        backend: str = "pyav",
        timeout_s: float = 60.0,
        cache: FrameCache | None = None,
        boxes: BoxSource | None = None,
    ) -> None:
        from actionrec.data.decode import open_video

        self.path, self.streams, self.flow = Path(video), streams, flow or FlowSource()
        self._stack = contextlib.ExitStack()
        self.boxes = None  # read first: a video without boxes is not opened
        if "boxes" in streams:
            try:
                self.boxes = (boxes or BoxSource()).load(self.path, relative)
            except BoxFileError as e:
                reason = "no box file" if isinstance(e, MissingBoxFileError) else f"bad box file ({e})"
                raise VideoDecodeError(self.path, reason) from None
        computed = "flow" in streams and self.flow.method == "farneback"
        self.video = None
        self.cached = cache.get(self.path) if cache is not None else None
        if needs_video(streams, self.flow) and self.cached is None:
            self.video = self._stack.enter_context(open_video(self.path, backend, timeout_s=timeout_s))
            if not self.video.metadata.num_frames:
                raise VideoDecodeError(self.path, "no frames")
            if cache is not None:
                self.cached = self._decode_all(cache)
        self.flows = None
        if "flow" in streams and not computed:
            self.flows = FlowFramesReader(self.flow.folder(self.path, relative))

    def _decode_all(self, cache: FrameCache) -> tuple[np.ndarray, float] | None:
        """Every frame of the open video into ``cache``; None (read as usual) when that fails."""
        video = self.video
        assert video is not None
        n = int(video.metadata.num_frames or 0)
        meta = video.metadata
        if not cache.fits(n * int(meta.height or 0) * int(meta.width or 0) * 3):
            return None  # full: read only the sampled frames, as without a cache
        try:
            frames = np.ascontiguousarray(video.get_frames(np.arange(n)))  # (T, H, W, 3)
        except (VideoDecodeError, ValueError, IndexError):
            return None
        entry = (frames, float(video.metadata.fps))
        cache.put(self.path, *entry)
        return entry

    def __enter__(self) -> SampleSource:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stack.close()

    @property
    def num_frames(self) -> int:
        """Frames to sample from: the video's, or (flow folders alone) one more than the flows."""
        if self.cached is not None:
            return len(self.cached[0])
        if self.video is not None:
            return int(self.video.metadata.num_frames)
        return self.flows.num_flows + 1  # type: ignore[union-attr]

    @property
    def fps(self) -> float:
        if self.cached is not None:
            return self.cached[1]
        if self.video is not None:
            return float(self.video.metadata.fps)
        marker = self.flows.folder / DONE_MARKER  # type: ignore[union-attr]
        fps = json.loads(marker.read_text()).get("fps") if marker.is_file() else None
        if not fps:
            raise VideoDecodeError(self.flows.folder, "flow folder records no frame rate; sample by frames")  # type: ignore[union-attr]
        return float(fps)

    def read(self, indices: np.ndarray, *, future: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The streams at frame ``indices`` (any shape ``S``): ``rgb`` uint8 ``(*S, H, W, 3)``, ``flow``
        uint8 ``(*S, H, W, 2)`` (128 = still), ``future`` at the ``future`` indices, ``boxes`` float32
        ``(*S, N, 4)`` with ``boxes_mask`` bool ``(*S, N)``."""
        indices = np.asarray(indices, dtype=np.int64)
        last = self.num_frames - 1
        flow_at = np.minimum(indices, max(last - 1, 0))  # flow i: frame i -> i + 1
        wanted: list[np.ndarray] = []
        if "rgb" in self.streams:
            wanted.append(indices.ravel())
        if "future" in self.streams and future is not None:
            wanted.append(np.asarray(future).ravel())
        computed = "flow" in self.streams and self.flows is None
        if computed:
            wanted += [flow_at.ravel(), np.minimum(flow_at + 1, last).ravel()]
        frames = self._decode(np.concatenate(wanted)) if wanted else {}
        out: dict[str, np.ndarray] = {}
        if "rgb" in self.streams:
            out["rgb"] = _gather(frames, indices)
        if "future" in self.streams and future is not None:
            out["future"] = _gather(frames, np.asarray(future))
        if "flow" in self.streams:
            out["flow"] = (
                self._computed_flow(frames, flow_at, last) if computed else self._stored_flow(flow_at)
            )
        if self.boxes is not None:
            out["boxes"], out["boxes_mask"] = self.boxes.at(indices)  # (*S, N, 4), (*S, N)
            frames = out.get("rgb")
            size = getattr(self.boxes, "size", None)
            if frames is not None and size is not None and (frames.shape[-2], frames.shape[-3]) != size:
                scale = np.array([frames.shape[-2] / size[0], frames.shape[-3] / size[1]] * 2, np.float32)
                out["boxes"] = out["boxes"] * scale  # the file's pixels -> the decoded frames' pixels
        return out

    def _decode(self, indices: np.ndarray) -> dict[int, np.ndarray]:
        unique = np.unique(indices)
        if self.cached is not None:
            return {int(i): self.cached[0][i] for i in unique}
        decoded = self.video.get_frames(unique)  # type: ignore[union-attr]
        return {int(i): f for i, f in zip(unique, decoded)}

    def _stored_flow(self, flow_at: np.ndarray) -> np.ndarray:
        n = self.flows.num_flows  # type: ignore[union-attr]
        flat = np.minimum(flow_at.ravel(), n - 1)  # a flow folder may hold fewer flows than the video
        return self.flows.get_flow(flat).reshape(*flow_at.shape, *self.flows.frame_size, 2)  # type: ignore[union-attr]

    def _computed_flow(self, frames: dict[int, np.ndarray], flow_at: np.ndarray, last: int) -> np.ndarray:
        cache: dict[int, np.ndarray] = {}
        for i in np.unique(flow_at):
            pair = np.stack([frames[int(i)], frames[min(int(i) + 1, last)]])
            cache[int(i)] = quantize_flow(compute_flow(pair, method="farneback")[0], self.flow.bound)
        return np.stack([cache[int(i)] for i in flow_at.ravel()]).reshape(
            *flow_at.shape, *cache[int(flow_at.flat[0])].shape
        )


def _gather(frames: dict[int, np.ndarray], indices: np.ndarray) -> np.ndarray:
    first = frames[int(indices.flat[0])]
    return np.stack([frames[int(i)] for i in indices.ravel()]).reshape(*indices.shape, *first.shape)
