"""Read optical flow stored as quantised JPEGs (the TSN / mmaction2 ``rawframes`` layout) as a stream.

``actionrec flow`` (:mod:`actionrec.data.flow`) writes, per video, ``flow_x_00001.jpg`` and
``flow_y_00001.jpg`` ... : greyscale JPEGs of the x and y displacement clipped to ``±bound`` px and
mapped to ``0..255`` around 128. mmaction2's and TSN's own extraction tools write the same names, or
``x_00001.jpg`` / ``y_00001.jpg``; both prefixes are read, numbered from 1 (or from 0) without gaps.
Flow ``i`` (zero-based here) is the displacement from frame ``i`` to frame ``i + 1``.

The reader returns the stored uint8 values as they are, so the flow transforms and the network see
exactly what is on disk; :func:`dequantize` turns them back into pixels when those are needed.
:func:`stack_windows` builds TSN's stacked-flow input: ``L`` consecutive flow fields per segment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from actionrec.data.decode.base import FrameIndexError
from actionrec.data.flow import DONE_MARKER, dequantize_flow
from actionrec.errors import VideoDecodeError

PREFIXES = ("flow_", "")  # flow_x_00001.jpg (actionrec, mmaction2) or x_00001.jpg (TSN's dense_flow)
_NAME = re.compile(r"^(flow_)?([xy])_(\d+)\.jpg$")


def _scan(folder: Path) -> dict[tuple[str, str], dict[int, Path]]:
    """Flow files in ``folder`` grouped by ``(prefix, axis)``, each as ``{number: path}``."""
    found: dict[tuple[str, str], dict[int, Path]] = {}
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match:
            prefix, axis, number = match.group(1) or "", match.group(2), int(match.group(3))
            found.setdefault((prefix, axis), {})[number] = path
    return found


def _pick_prefix(folder: Path, found: dict[tuple[str, str], dict[int, Path]]) -> str:
    prefixes = [p for p in PREFIXES if (p, "x") in found or (p, "y") in found]
    if not prefixes:
        raise VideoDecodeError(folder, "no flow images (flow_x_00001.jpg or x_00001.jpg) found")
    if len(prefixes) > 1:
        raise VideoDecodeError(folder, "holds both flow_x_*.jpg and x_*.jpg images; keep one naming scheme")
    return prefixes[0]


def _ordered_paths(folder: Path, prefix: str, found: dict[tuple[str, str], dict[int, Path]]) -> list[Path]:
    """``[x_0, y_0, x_1, y_1, ...]`` after checking the x and y numbers match and have no gaps."""
    xs, ys = found.get((prefix, "x"), {}), found.get((prefix, "y"), {})
    unpaired = sorted(set(xs) ^ set(ys))
    if unpaired:
        axis = "y" if unpaired[0] in xs else "x"
        name = f"{prefix}{axis}_{unpaired[0]:05d}.jpg"
        raise VideoDecodeError(
            folder, f"{name} is missing ({len(xs)} x and {len(ys)} y flow images; they must pair up)"
        )
    first = min(xs)
    if first not in (0, 1):
        raise VideoDecodeError(folder, f"flow images start at number {first}; expected 1 (or 0)")
    gaps = sorted(set(range(first, first + len(xs))) - set(xs))
    if gaps:
        raise VideoDecodeError(folder, f"{prefix}x_{gaps[0]:05d}.jpg and its y image are missing")
    return [found[(prefix, axis)][n] for n in sorted(xs) for axis in "xy"]


def _read_grey(folder: Path, path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise VideoDecodeError(folder, f"{path.name} is not a readable image")
    return image


class FlowFramesReader:
    """The flow images of one video folder, read on demand as uint8 ``(T, H, W, 2)`` (x, y) arrays.

    The folder is scanned once when the reader is made; every problem with its file names (no flow
    images, an x without its y, a gap in the numbering) is a :class:`VideoDecodeError` naming it.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise VideoDecodeError(self.folder, "flow folder not found")
        found = _scan(self.folder)
        self.prefix = _pick_prefix(self.folder, found)
        self._paths = _ordered_paths(self.folder, self.prefix, found)
        self.frame_size: tuple[int, int] = _read_grey(self.folder, self._paths[0]).shape[:2]

    @property
    def num_flows(self) -> int:
        """Number of flow fields (x/y pairs), one fewer than the frames they were computed from."""
        return len(self._paths) // 2

    def __len__(self) -> int:
        return self.num_flows

    def marker_bound(self) -> float | None:
        """The ``bound`` recorded in ``actionrec flow``'s ``.done`` marker; ``None`` without one."""
        marker = self.folder / DONE_MARKER
        if not marker.is_file():
            return None
        return float(json.loads(marker.read_text())["bound"])

    def _check_indices(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(indices).reshape(-1)
        if idx.size and idx.dtype.kind not in "iu":
            raise TypeError(f"flow indices must be integers, got dtype {idx.dtype}")
        n = self.num_flows
        bad = idx[(idx < 0) | (idx >= n)]
        if bad.size:
            reason = f"flow index {int(bad[0])} is out of range for {n} flows (0..{n - 1})"
            raise FrameIndexError(self.folder, reason)
        return idx.astype(np.int64)

    def _read_pair(self, index: int) -> np.ndarray:
        x_path, y_path = self._paths[2 * index], self._paths[2 * index + 1]
        x, y = _read_grey(self.folder, x_path), _read_grey(self.folder, y_path)
        for path, image in ((x_path, x), (y_path, y)):
            if image.shape != self.frame_size:
                size = f"{image.shape[1]}x{image.shape[0]}"
                expected = f"{self.frame_size[1]}x{self.frame_size[0]}"
                raise VideoDecodeError(self.folder, f"{path.name} is {size}, expected {expected}")
        return np.stack([x, y], axis=-1)

    def get_flow(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Flow fields at zero-based ``indices`` (repeats allowed, each file read once) as stored:
        uint8 ``(T, H, W, 2)``, channel 0 = x, channel 1 = y, 128 = no motion."""
        idx = self._check_indices(indices)
        out = np.empty((idx.size, *self.frame_size, 2), dtype=np.uint8)
        unique, inverse = np.unique(idx, return_inverse=True)
        for slot, index in enumerate(unique):
            out[inverse == slot] = self._read_pair(int(index))
        return out


def window_indices(*, starts: Sequence[int] | np.ndarray, length: int, num_flows: int) -> np.ndarray:
    """``(S, L)`` flow indices ``start .. start + L - 1`` per start, clamped to the last flow.

    Clamping repeats the last field at the end of a clip instead of failing, as TSN does for
    segments that start within ``L`` flows of the end.
    """
    if length < 1:
        raise ValueError(f"window length must be at least 1, got {length}")
    first = np.asarray(starts, dtype=np.int64).reshape(-1, 1)
    return np.minimum(first + np.arange(length), num_flows - 1)


def stack_windows(reader: FlowFramesReader, *, starts: Sequence[int] | np.ndarray, length: int) -> np.ndarray:
    """TSN's stacked flow: ``length`` consecutive flow fields from each segment start, uint8
    ``(S, L, H, W, 2)``; windows running past the last flow repeat it (see :func:`window_indices`)."""
    grid = window_indices(starts=starts, length=length, num_flows=reader.num_flows)
    return reader.get_flow(grid.reshape(-1)).reshape(*grid.shape, *reader.frame_size, 2)


def dequantize(flow: np.ndarray, *, bound: float) -> np.ndarray:
    """Stored uint8 flow back to float32 pixels, the exact inverse of ``actionrec flow``'s quantisation
    (:func:`actionrec.data.flow.quantize_flow`); within ``bound / 255`` px of the clipped original."""
    if flow.dtype != np.uint8:
        raise TypeError(f"expected uint8 quantised flow, got {flow.dtype}")
    return dequantize_flow(flow, bound)
