"""Prediction on video files: a video -> top-k classes, all logits, and optionally a timeline.

The preprocessing is the model's own (its :class:`~actionrec.models.registry.ModelCard`, or the
``preprocessing`` entry of an actionrec weights card, which records how the weights were trained;
one schema, :class:`~actionrec.data.preprocessing.Preprocessing`). Its streams are read as the
dataset reads them (:class:`~actionrec.data.sources.SampleSource`): a flow model takes the flow
``actionrec flow`` wrote for the video (``FlowSource(root)``: the folder ``root/<video stem>``) or
Farneback flow computed on the fly (``FlowSource(method="farneback")``); a region-graph model takes
the video's box file (``actionrec boxes`` writes them; ``BoxSource``). A ``future`` stream (frames
after the clip, a training target) is not read: such a model predicts from its clip alone.

* ``"fps"`` (I3D): the whole video resampled to ``fps`` by index ``int(k * src_fps / fps)``, at most
  ``max_frames`` frames, short side resized (bilinear), centre crop, normalised, one forward pass; the
  logits are what the model returns (I3D averages its per-time-step logits).
* ``"dense"``: ``num_clips`` clips of ``num_frames`` frames ``frame_interval`` apart, spaced uniformly
  over the video; their logits are averaged.
* ``"segment"`` / ``"uniform"``: TSN segments / an even grid of frames over the whole video, one pass.

``score`` is the softmax probability of the (averaged) logits. A timeline runs the same
preprocessing on sliding windows through the video and records each window's class probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from actionrec.data.boxes import BoxSource
from actionrec.data.preprocessing import DEFAULT_CLIPS, Preprocessing
from actionrec.data.sources import FlowSource, SampleSource
from actionrec.data.streams import model_input, pad_boxes
from actionrec.engine.fast import fast_inference, map_tensors
from actionrec.errors import ActionrecError

CHUNK = 32  # frames decoded and resized at a time
BOX_KEYS = ("boxes", "boxes_mask")
__all__ = ["DEFAULT_CLIPS", "Prediction", "Preprocessing", "Timeline", "predict_video"]


@dataclass
class Timeline:
    """Class probabilities of sliding windows: ``times`` (W,) window centres in seconds, ``scores`` (W, K)."""

    times: np.ndarray
    scores: np.ndarray
    window: float
    stride: float

    def plot(self, path: str | Path, classes: Sequence[str], *, top: int = 5, title: str = "") -> Path:
        from actionrec.engine.plots import plot_timeline

        return plot_timeline(self.times, self.scores, classes, path, top=top, title=title)

    def to_dict(self, classes: Sequence[str]) -> dict[str, Any]:
        best = np.argsort(-self.scores, axis=1, kind="stable")[:, 0]
        return {
            "window": self.window,
            "stride": self.stride,
            "times": [round(float(t), 3) for t in self.times],
            "top1": [classes[i] for i in best],
            "top1_score": [float(self.scores[w, i]) for w, i in enumerate(best)],
        }


@dataclass
class Prediction:
    """One video's result: ``top`` entries have label, index, score (probability) and logit."""

    video: str
    top: list[dict[str, Any]]
    logits: list[float]
    classes: list[str] = field(default_factory=list)
    timeline: Timeline | None = None

    @property
    def label(self) -> str:
        return self.top[0]["label"]

    def to_dict(self) -> dict[str, Any]:
        return {"video": self.video, "top": self.top, "logits": self.logits}


def _class_names(labels: Sequence[str] | None, num_classes: int) -> list[str]:
    if labels is None:
        return [str(i) for i in range(num_classes)]
    if len(labels) != num_classes:
        raise ActionrecError(f"{len(labels)} labels given but the model has {num_classes} classes")
    return list(labels)


def _read_clip(source: SampleSource, row: np.ndarray, transform: Any) -> dict[str, torch.Tensor]:
    """(T,) frame indices -> each stream's (C, T, H, W), decoded and transformed CHUNK frames at a time.

    The test transform (resize, centre crop, normalise) works frame by frame, so chunking changes
    nothing but the memory held: a long HD video never sits in memory as full-size float frames.
    """
    parts = [transform(source.read(row[s : s + CHUNK])) for s in range(0, len(row), CHUNK)]
    out = {k: torch.cat([p[k] for p in parts], dim=1) for k in parts[0] if k not in BOX_KEYS}  # (C, t, H, W)
    if "boxes" in parts[0]:  # (t_i, N_i, 4) chunks: padded to the largest N_i, joined along time
        n = max(p["boxes"].shape[1] for p in parts)
        pad = [(p["boxes"], p["boxes_mask"], n - p["boxes"].shape[1]) for p in parts]
        out["boxes"] = torch.cat([torch.nn.functional.pad(b, (0, 0, 0, k)) for b, _, k in pad])  # (T, N, 4)
        out["boxes_mask"] = torch.cat([torch.nn.functional.pad(m, (0, k)) for _, m, k in pad])  # (T, N)
    return out


def _stack_views(views: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Views' streams -> (N, C, T, H, W) each; their boxes padded to (N, T, N_boxes, 4) with the mask."""
    batch = {k: torch.stack([v[k] for v in views]) for k in views[0] if k not in BOX_KEYS}
    if "boxes" in views[0]:
        batch["boxes"], batch["boxes_mask"] = pad_boxes([(v["boxes"], v["boxes_mask"]) for v in views])
    return batch


def _forward(runner: nn.Module, clips: Any, n: int, *, chunk: int = 8) -> torch.Tensor:
    """``n`` clips (a tensor or a dict of streams, (N, C, T, H, W) each) -> (N, K) float32 logits."""
    outs = []
    for s in range(0, n, chunk):
        out = runner(map_tensors(clips, lambda t, s=s: t[s : s + chunk]))
        outs.append((out if isinstance(out, torch.Tensor) else out["logits"]).float().cpu())
    return torch.cat(outs)


def _video_logits(
    runner: nn.Module,
    source: SampleSource,
    pre: Preprocessing,
    *,
    num_clips: int | None,
    start: int = 0,
    stop: int | None = None,
) -> torch.Tensor:
    """Mean logits (K,) over the clips the preprocessing samples from frames [start, stop)."""
    from actionrec.data.sampling import sample_indices

    stop = source.num_frames if stop is None else stop
    clips = num_clips or DEFAULT_CLIPS[pre.sampling]
    fps = source.fps if pre.sampling == "fps" else 0.0
    indices = sample_indices(pre.sampling_config(clips), num_frames=stop - start, fps=fps, train=False)
    transform = pre.transform()
    views = [_read_clip(source, row, transform) for row in indices + start]
    return _forward(runner, model_input(_stack_views(views)), len(views)).mean(0)  # (N, K) -> (K,)


def _windows(num_frames: int, src_fps: float, window: float, stride: float) -> list[tuple[int, int]]:
    """[start, stop) frame ranges of ``window`` seconds every ``stride`` seconds, covering the video."""
    length = max(1, min(num_frames, round(window * src_fps)))
    step = max(1, round(stride * src_fps))
    starts = list(range(0, max(num_frames - length, 0) + 1, step))
    if starts[-1] + length < num_frames:  # keep the tail of the video
        starts.append(num_frames - length)
    return [(s, s + length) for s in starts]


def _timeline(
    runner: nn.Module, source: SampleSource, pre: Preprocessing, window: float | None, stride: float | None
) -> Timeline:
    fps = source.fps
    window = window or pre.window_seconds(fps)
    stride = stride or window / 2
    spans = _windows(source.num_frames, fps, window, stride)
    clips = 1 if pre.sampling == "dense" else None  # one centred clip per window
    scores = [
        _video_logits(runner, source, pre, num_clips=clips, start=a, stop=b).softmax(-1) for a, b in spans
    ]
    times = np.array([(a + b) / 2 / fps for a, b in spans])
    return Timeline(times=times, scores=torch.stack(scores).numpy(), window=window, stride=stride)


def predict_video(
    model: nn.Module,
    path: str | Path,
    *,
    card: Any = None,
    precision: str = "auto",
    topk: int = 5,
    labels: Sequence[str] | None = None,
    backend: str = "pyav",
    window: float | None = None,
    stride: float | None = None,
    timeline: bool = False,
    num_clips: int | None = None,
    flow: FlowSource | None = None,
    boxes: BoxSource | None = None,
) -> Prediction:
    """Classify one video file with the model's own preprocessing (see the module docstring).

    ``card`` overrides ``model.card`` (a ModelCard or a weights card's ``preprocessing`` dict).
    ``flow`` says where a flow model's flow comes from (see the module docstring); ``boxes`` where a
    region model's box file is (default: beside the video, see :mod:`actionrec.data.boxes`).
    ``timeline=True`` (or a ``window`` length in seconds) adds class scores over sliding windows
    ``stride`` seconds apart (default: one model clip long, half-overlapping).
    """
    pre = _preprocessing(model, card)
    streams = tuple(s for s in pre.streams if s != "future")  # training targets, not read to predict
    runner = fast_inference(model, precision=precision)
    with SampleSource(path, streams=streams, flow=flow, backend=backend, boxes=boxes) as source:
        logits = _video_logits(runner, source, pre, num_clips=num_clips)
        names = _class_names(labels, logits.shape[0])
        line = _timeline(runner, source, pre, window, stride) if (timeline or window) else None
    probs = logits.softmax(-1)
    order = torch.argsort(logits, descending=True, stable=True)[: min(topk, logits.shape[0])]
    top = [
        {"label": names[i], "index": int(i), "score": float(probs[i]), "logit": float(logits[i])}
        for i in order.tolist()
    ]
    return Prediction(
        video=str(path), top=top, logits=[float(v) for v in logits], classes=names, timeline=line
    )


def _preprocessing(model: nn.Module, card: Any) -> Preprocessing:
    """``card`` (a ModelCard or a weights card's ``preprocessing`` dict) over the model's own card."""
    model_card = getattr(model, "card", None)
    base = Preprocessing.from_card(model_card) if model_card is not None else None
    if isinstance(card, Mapping):
        return Preprocessing.from_dict(card, base=base)
    if card is not None:
        return Preprocessing.from_card(card)
    if base is None:
        raise ActionrecError("the model has no card; pass card= (a ModelCard or a preprocessing dict)")
    return base
