"""Dense optical flow for the temporal stream of two-stream networks and TSN.

"Two-Stream Convolutional Networks for Action Recognition in Videos" (Simonyan & Zisserman, 2014,
arXiv 1406.2199, §3) feeds stacks of horizontal and vertical displacement fields to the temporal
stream; "Temporal Segment Networks" (Wang et al., 2016, arXiv 1608.00859, §3.2) uses TV-L1 flow,
stored as 8-bit images after clipping to ±20 px and rescaling to 0..255 — the ``rawframes`` layout
(``flow_x_00001.jpg``, ``flow_y_00001.jpg``, ...) that mmaction2 also reads.

Methods: TV-L1 (Zach, Pock & Bischof 2007, OpenCV's ``cv2.optflow.DualTVL1OpticalFlow``), Farneback
(OpenCV's polynomial-expansion flow on grey frames, much faster, less accurate) and RAFT-small
("RAFT: Recurrent All-Pairs Field Transforms for Optical Flow", Teed & Deng, 2020, arXiv 2003.12039,
torchvision's ``raft_small``) with weights from a local state-dict file only.

Flow ``i`` is the displacement from frame ``i`` to frame ``i + 1`` in pixels, channel 0 = x (right
positive), channel 1 = y (down positive): ``frame_i(x, y) ≈ frame_{i+1}(x + u, y + v)``.
"""

from __future__ import annotations

import functools
import itertools
import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from actionrec.errors import VideoDecodeError, WeightsError

METHODS = ("tvl1", "farneback", "raft_small")
DONE_MARKER = ".done"
FLOW_NAME = "flow_{axis}_{index:05d}.jpg"


def _check_frames(frames: np.ndarray) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"expected uint8 RGB frames of shape (T, H, W, 3), got {frames.dtype} {frames.shape}"
        )


def _grey(frames: np.ndarray) -> list[np.ndarray]:
    return [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]


def _flow_tvl1(frames: np.ndarray) -> np.ndarray:
    # OpenCV's defaults: tau 0.25, lambda 0.15, theta 0.3, 5 scales, 5 warps
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    grey = _grey(frames)
    return np.stack([tvl1.calc(a, b, None) for a, b in itertools.pairwise(grey)])


def _flow_farneback(frames: np.ndarray) -> np.ndarray:
    grey = _grey(frames)
    return np.stack(
        [
            cv2.calcOpticalFlowFarneback(
                a,
                b,
                None,
                pyr_scale=0.5,
                levels=3,
                winsize=15,
                iterations=3,
                poly_n=5,
                poly_sigma=1.2,
                flags=0,
            )
            for a, b in itertools.pairwise(grey)
        ]
    )


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsError(f"{path}: RAFT weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt or unsafe files
        raise WeightsError(f"{path}: cannot load RAFT weights ({type(e).__name__}: {e})") from e
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


@functools.lru_cache(maxsize=2)
def _raft_model(weights: str | None, device: str) -> torch.nn.Module:
    from torchvision.models.optical_flow import raft_small

    model = raft_small(weights=None, progress=False)
    if weights is not None:
        try:
            model.load_state_dict(_load_state_dict(Path(weights)))
        except RuntimeError as e:
            raise WeightsError(f"{weights}: not raft_small weights ({str(e).splitlines()[0]})") from e
    return model.eval().to(device)


def _raft_padding(side: int) -> int:
    """Pixels to add so a side is a multiple of 8 and at least 128 (RAFT's correlation pyramid)."""
    return max(128, side + (-side) % 8) - side


@torch.inference_mode()
def _flow_raft(
    frames: np.ndarray, weights: str | None, device: str, batch_size: int, updates: int
) -> np.ndarray:
    model = _raft_model(weights, device)
    h, w = frames.shape[1:3]
    clip = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float()  # (T, H, W, 3) -> (T, 3, H, W)
    clip = clip / 127.5 - 1.0  # RAFT expects [-1, 1]
    pad_h, pad_w = _raft_padding(h), _raft_padding(w)
    clip = torch.nn.functional.pad(clip, (0, pad_w, 0, pad_h), mode="replicate")
    out = []
    for i in range(0, clip.shape[0] - 1, batch_size):
        j = min(i + batch_size, clip.shape[0] - 1)
        refinements = model(clip[i:j], clip[i + 1 : j + 1], num_flow_updates=updates)
        flow = refinements[-1]  # the last refinement, (B, 2, H', W')
        out.append(flow[:, :, :h, :w].permute(0, 2, 3, 1).float().cpu())  # (B, 2, H, W) -> (B, H, W, 2)
    return torch.cat(out).numpy()


def compute_flow(
    frames: np.ndarray,
    *,
    method: str = "tvl1",
    raft_weights: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 8,
    num_flow_updates: int = 12,
) -> np.ndarray:
    """Optical flow between consecutive frames: uint8 RGB ``(T, H, W, 3)`` -> float32 ``(T-1, H, W, 2)``.

    ``method`` is ``"tvl1"``, ``"farneback"`` or ``"raft_small"``. RAFT loads ``raft_weights`` (a
    local torchvision ``raft_small`` state dict, read with ``weights_only=True``); without it the
    network is randomly initialised and a warning says so. ``device``, ``batch_size`` (frame pairs per
    forward pass) and ``num_flow_updates`` (recurrent refinements) apply to RAFT only.
    Fewer than two frames give an empty ``(0, H, W, 2)`` result.
    """
    _check_frames(frames)
    if method not in METHODS:
        raise ValueError(f"unknown flow method {method!r}; choose one of {METHODS}")
    if frames.shape[0] < 2:
        return np.zeros((0, *frames.shape[1:3], 2), dtype=np.float32)
    if method == "tvl1":
        flow = _flow_tvl1(frames)
    elif method == "farneback":
        flow = _flow_farneback(frames)
    else:
        weights = None if raft_weights is None else str(Path(raft_weights).resolve())
        if weights is None:
            warnings.warn(
                "raft_small has random weights (no raft_weights file given): its flow is meaningless, "
                "use it for speed benchmarks only",
                stacklevel=2,
            )
        flow = _flow_raft(frames, weights, str(device), batch_size, num_flow_updates)
    return flow.astype(np.float32, copy=False)


def quantize_flow(flow: np.ndarray, bound: float = 20.0) -> np.ndarray:
    """Clip to ``[-bound, bound]`` pixels and map linearly to uint8 ``0..255`` (zero -> 128), rounding
    to nearest; the TSN/two-stream storage convention. Any shape."""
    scaled = (np.clip(flow, -bound, bound) + bound) * (255.0 / (2.0 * bound))
    return np.rint(scaled).astype(np.uint8)


def dequantize_flow(quantized: np.ndarray, bound: float = 20.0) -> np.ndarray:
    """Inverse of :func:`quantize_flow` (up to ``bound / 255`` px): uint8 -> float32 pixels."""
    return (quantized.astype(np.float32) * (2.0 * bound / 255.0) - bound).astype(np.float32)


def is_complete(out_dir: str | Path) -> bool:
    """Whether ``out_dir`` holds a finished extraction (its done-marker exists)."""
    return (Path(out_dir) / DONE_MARKER).is_file()


def _resize_short_side(frames: np.ndarray, short_side: int | None) -> np.ndarray:
    h, w = frames.shape[1:3]
    if not short_side or min(h, w) == short_side:
        return frames
    scale = short_side / min(h, w)
    size = (int(w * scale + 0.5), int(h * scale + 0.5))  # cv2 takes (width, height)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, size, interpolation=interp) for f in frames])


def _write_flow(folder: Path, flow: np.ndarray, first_index: int, bound: float) -> None:
    quantized = quantize_flow(flow, bound)  # (n, H, W, 2) uint8
    for k, q in enumerate(quantized):
        for axis, channel in (("x", 0), ("y", 1)):
            path = folder / FLOW_NAME.format(axis=axis, index=first_index + k)
            image = np.ascontiguousarray(q[..., channel])
            if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise OSError(f"cannot write {path}")


@dataclass(frozen=True)
class FlowOptions:
    """How :func:`extract_flow` decodes, resizes, computes and stores flow."""

    method: str = "tvl1"
    bound: float = 20.0
    short_side: int | None = 256
    backend: str = "pyav"
    raft_weights: str | None = None
    device: str = "cpu"
    chunk_size: int = 64


def extract_flow(
    video_path: str | Path,
    out_dir: str | Path,
    *,
    method: str = "tvl1",
    bound: float = 20.0,
    short_side: int | None = 256,
    backend: str = "pyav",
    raft_weights: str | Path | None = None,
    device: str = "cpu",
    chunk_size: int = 64,
) -> Path:
    """Write a video's flow as ``flow_x_00001.jpg`` / ``flow_y_00001.jpg`` ... into ``out_dir``.

    Frames are resized to ``short_side`` (``None`` keeps their size) and decoded ``chunk_size`` at a
    time. The images go into a sibling ``.<name>.partial`` folder that is renamed to ``out_dir`` once
    every image and the done-marker (``.done``, JSON: method, bound, size, count) are written, so
    ``out_dir`` either is complete or does not exist; an already complete ``out_dir`` is left as is
    and a leftover partial folder from an interrupted run is discarded. Two processes must not
    extract into the same ``out_dir`` at once. Raises :class:`VideoDecodeError` for unreadable
    videos and for videos of fewer than two frames.
    """
    if method not in METHODS:
        raise ValueError(f"unknown flow method {method!r}; choose one of {METHODS}")
    weights = None if raft_weights is None else str(raft_weights)
    opts = FlowOptions(method, bound, short_side, backend, weights, device, chunk_size)
    out_dir = Path(out_dir)
    if is_complete(out_dir):
        return out_dir
    partial = out_dir.parent / f".{out_dir.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        count, (height, width), fps = _extract_into(Path(video_path), partial, opts)
        marker = {"video": str(video_path), "method": method, "bound": bound, "fps": fps}
        marker |= {"height": height, "width": width, "num_flows": count}
        (partial / DONE_MARKER).write_text(json.dumps(marker) + "\n")
        shutil.rmtree(out_dir, ignore_errors=True)  # an incomplete folder left by an older run
        partial.rename(out_dir)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return out_dir


def _extract_into(video: Path, folder: Path, opts: FlowOptions) -> tuple[int, tuple[int, int], float]:
    """Decode ``video`` chunk by chunk (chunks overlap by one frame) and write its flow images."""
    from actionrec.data.decode import open_video

    with open_video(video, backend=opts.backend) as reader:
        num_frames, fps = reader.metadata.num_frames, float(reader.metadata.fps)
        if num_frames < 2:
            raise VideoDecodeError(video, f"has {num_frames} frame(s); optical flow needs at least 2")
        size = (0, 0)
        for start in range(0, num_frames - 1, opts.chunk_size):
            indices = np.arange(start, min(start + opts.chunk_size + 1, num_frames))
            frames = _resize_short_side(reader.get_frames(indices), opts.short_side)
            flow = compute_flow(
                frames, method=opts.method, raft_weights=opts.raft_weights, device=opts.device
            )
            _write_flow(folder, flow, start + 1, opts.bound)
            size = frames.shape[1:3]
    return num_frames - 1, size, fps
