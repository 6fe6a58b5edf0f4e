"""Several streams of one sample moved by one random draw: RGB, optical flow and per-frame boxes.

A sample's streams share their geometry: whatever crop, scale and flip the RGB frames get, the flow
frames and the object boxes must get too. :class:`StreamTransform` draws one seed per sample and
runs every image stream's :class:`~actionrec.data.transforms.ClipPipeline` with a generator made
from it; the pipelines of a sample are built with the same geometric steps in the same order, so
they consume the generator identically and draw the same boxes and flips (colour jitter, which
comes after the geometry, only in the RGB pipeline). Flow pipelines are flow-aware (a flip negates
the x displacement). Boxes follow the same draws through :func:`trace_geometry`, which replays the
geometric steps on the frame size alone.

Boxes are ``(T, N, 4)`` float ``x1, y1, x2, y2`` in pixels of the decoded frames with a ``(T, N)``
bool mask of the valid ones. After the geometry they are in pixels of the output crop, clipped to
it; a box left with no area is dropped (its mask set to False, its coordinates zeroed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from actionrec.data import transforms as T

# The streams a model card may declare, and the sample keys that carry a model's input.
STREAMS = ("rgb", "flow", "future", "boxes")
INPUT_KEYS = ("rgb", "flow", "future", "boxes", "boxes_mask")


def model_input(batch: Mapping[str, object]) -> object:
    """What the model is called with: the one stream of a single-stream sample (a tensor), or the
    mapping of every stream the sample carries (``{"rgb": ..., "flow": ...}``) — the dataset builds
    exactly the streams the model's card declares, so this is the model's input."""
    present = [k for k in INPUT_KEYS if k in batch]
    if not present:
        raise KeyError(f"the batch holds no input stream (one of {', '.join(INPUT_KEYS)})")
    if len(present) == 1:
        return batch[present[0]]
    return {k: batch[k] for k in present}


@dataclass(frozen=True)
class GeometryOp:
    """One step of a sample's geometry: ``kind`` is ``"scale"`` (sx, sy), ``"crop"`` (top, left, h, w)
    or ``"flip"`` (the output width)."""

    kind: str
    values: tuple[float, ...]


def trace_geometry(
    steps: Sequence[object], height: int, width: int, generator: torch.Generator | None = None
) -> list[GeometryOp]:
    """The geometric operations ``steps`` apply to ``height`` x ``width`` frames, drawing exactly as
    the steps do on a clip (same generator calls in the same order)."""
    ops: list[GeometryOp] = []
    h, w = height, width
    for step in steps:
        if isinstance(step, T.ResizeShortSide):
            nh, nw = step.output_size(h, w)
            ops.append(GeometryOp("scale", (nw / w, nh / h)))
            h, w = nh, nw
        elif isinstance(step, (T.RandomResizedCrop, T.MultiScaleCrop)):
            top, left, ch, cw = step.get_params(h, w, generator)
            ops += [
                GeometryOp("crop", (top, left, ch, cw)),
                GeometryOp("scale", (step.size / cw, step.size / ch)),
            ]
            h, w = step.size, step.size
        elif isinstance(step, (T.RandomCrop, T.CenterCrop)):
            box = step.get_params(h, w, generator) if isinstance(step, T.RandomCrop) else step.box(h, w)
            ops.append(GeometryOp("crop", tuple(float(v) for v in box)))
            h, w = box[2], box[3]
        elif isinstance(step, T.RandomHorizontalFlip):
            if step.get_params(generator):
                ops.append(GeometryOp("flip", (float(w),)))
        elif isinstance(step, (T.ThreeCrop, T.TenCrop)):
            raise ValueError(f"boxes follow one view per clip; {type(step).__name__} makes several")
    return ops


def transform_boxes(boxes: Tensor, mask: Tensor, ops: Sequence[GeometryOp]) -> tuple[Tensor, Tensor]:
    """Apply ``ops`` to ``(..., 4)`` boxes ``x1, y1, x2, y2``; boxes cropped away leave the mask."""
    b, m = boxes.clone().float(), mask.clone().bool()
    for op in ops:
        if op.kind == "scale":
            sx, sy = op.values
            b *= torch.tensor([sx, sy, sx, sy])
        elif op.kind == "crop":
            top, left, h, w = op.values
            b -= torch.tensor([left, top, left, top])
            b[..., 0::2] = b[..., 0::2].clamp(0, w)
            b[..., 1::2] = b[..., 1::2].clamp(0, h)
            m &= (b[..., 2] > b[..., 0]) & (b[..., 3] > b[..., 1])
        elif op.kind == "flip":
            (w,) = op.values
            b = torch.stack([w - b[..., 2], b[..., 1], w - b[..., 0], b[..., 3]], dim=-1)
    return b * m.unsqueeze(-1), m


class StreamTransform:
    """Transforms the named streams of one sample with one random draw.

    ``pipelines`` maps an image stream (``rgb``, ``flow``, ``future``) to its pipeline; they must
    share their geometric steps (build them with the same crop and flip settings). ``boxes`` (with
    ``boxes_mask``) follow the geometry of ``geometry_from`` (default ``rgb``); the frame size they
    refer to is that of ``geometry_from``'s frames.
    """

    def __init__(self, pipelines: Mapping[str, T.ClipPipeline], *, geometry_from: str = "rgb") -> None:
        if geometry_from not in pipelines:
            raise ValueError(f"geometry_from={geometry_from!r} names no pipeline ({', '.join(pipelines)})")
        self.pipelines = dict(pipelines)
        self.geometry_from = geometry_from

    def __call__(
        self, streams: Mapping[str, np.ndarray | Tensor], generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        seed = int(torch.randint(0, 2**62, (), generator=generator).item())
        out: dict[str, Tensor] = {}
        for name, frames in streams.items():
            if name in self.pipelines:
                out[name] = self.pipelines[name](frames, torch.Generator().manual_seed(seed))
        if "boxes" in streams:
            height, width = np.shape(streams[self.geometry_from])[1:3]  # (T, H, W, C) frames
            steps = self.pipelines[self.geometry_from].steps
            ops = trace_geometry(steps, int(height), int(width), torch.Generator().manual_seed(seed))
            boxes = torch.as_tensor(np.asarray(streams["boxes"]), dtype=torch.float32)
            mask = torch.as_tensor(np.asarray(streams.get("boxes_mask", np.ones(boxes.shape[:-1], bool))))
            out["boxes"], out["boxes_mask"] = transform_boxes(boxes, mask, ops)
        return out


def pad_boxes(samples: Sequence[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Ragged ``(*S, N_i, 4)`` boxes and ``(*S, N_i)`` masks (``S`` alike: (T,) or (V, T)) ->
    ``(B, *S, N, 4)`` zero-padded and ``(B, *S, N)``, N the largest N_i."""
    if not samples:
        return torch.zeros(0, 0, 0, 4), torch.zeros(0, 0, 0, dtype=torch.bool)
    n = max(b.shape[-2] for b, _ in samples)
    lead = samples[0][0].shape[:-2]
    boxes = torch.zeros(len(samples), *lead, n, 4)
    mask = torch.zeros(boxes.shape[:-1], dtype=torch.bool)
    for i, (b, m) in enumerate(samples):
        boxes[i, ..., : b.shape[-2], :] = b
        mask[i, ..., : b.shape[-2]] = m
    return boxes, mask
