"""Prediction on video files: a video -> top-k classes, all logits, and optionally a timeline.

The preprocessing is the model's own (its :class:`~actionrec.models.registry.ModelCard`, or the
``preprocessing`` entry of an actionrec weights card, which records how the weights were trained):

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

from actionrec.engine.fast import fast_inference
from actionrec.errors import ActionrecError

CHUNK = 32  # frames decoded and resized at a time
DEFAULT_CLIPS = {"dense": 10, "segment": 1, "uniform": 1, "fps": 1}


@dataclass(frozen=True)
class Preprocessing:
    """Everything needed to turn a video file into model input."""

    sampling: str = "dense"
    num_frames: int = 16
    frame_interval: int = 1
    num_segments: int = 8
    snippet_len: int = 1
    fps: float | None = None
    max_frames: int | None = None
    crop_size: int = 112
    short_side: int = 128
    mean: tuple[float, ...] = (0.43216, 0.394666, 0.37645)
    std: tuple[float, ...] = (0.22803, 0.22145, 0.216989)
    input_kind: str = "clip"
    in_channels: int = 3

    @classmethod
    def from_card(cls, card: Any, *, base: Preprocessing | None = None) -> Preprocessing:
        """From a ModelCard, or from a weights card's ``preprocessing`` dict (gaps filled from ``base``).

        Both dict schemas are read: the training loop's (``sampling`` a dict of SamplingConfig fields)
        and ``save_weights``'s (flat ``sampling`` mode, ``num_frames``, ``frame_interval``, ``fps``, ...).
        """
        if isinstance(card, Mapping):
            return cls._from_dict(card, base or cls())
        mean, std = card.mean_std
        return cls(
            sampling=card.sampling,
            num_frames=card.num_frames,
            frame_interval=card.frame_interval,
            num_segments=card.num_frames,
            fps=card.fps,
            max_frames=card.max_frames,
            crop_size=card.crop_size,
            short_side=card.short_side,
            mean=tuple(mean),
            std=tuple(std),
            input_kind=card.input_kind,
            in_channels=card.in_channels,
        )

    @classmethod
    def _from_dict(cls, d: Mapping[str, Any], base: Preprocessing) -> Preprocessing:
        from actionrec.models.registry import NORMALIZATION

        s = d.get("sampling") if isinstance(d.get("sampling"), Mapping) else {"mode": d.get("sampling")}

        def pick(*values: Any) -> Any:
            return next((v for v in values if v is not None), None)

        mean, std = d.get("mean"), d.get("std")
        if (mean is None or std is None) and d.get("normalization") in NORMALIZATION:
            mean, std = NORMALIZATION[d["normalization"]]
        mean, std = tuple(mean or base.mean), tuple(std or base.std)
        return cls(
            sampling=pick(s.get("mode"), base.sampling),
            num_frames=pick(s.get("clip_len"), d.get("num_frames"), base.num_frames),
            frame_interval=pick(s.get("frame_interval"), d.get("frame_interval"), base.frame_interval),
            num_segments=pick(s.get("num_segments"), d.get("num_frames"), base.num_segments),
            snippet_len=pick(s.get("snippet_len"), base.snippet_len),
            fps=pick(s.get("fps"), d.get("fps"), base.fps),
            max_frames=pick(s.get("max_frames"), d.get("max_frames"), base.max_frames),
            crop_size=pick(d.get("crop_size"), base.crop_size),
            short_side=pick(d.get("short_side"), base.short_side),
            mean=mean,
            std=std,
            input_kind=pick(d.get("input_kind"), base.input_kind),
            in_channels=pick(d.get("in_channels"), len(mean)),
        )

    def sampling_config(self, num_clips: int | None = None) -> Any:
        from actionrec.data.sampling import SamplingConfig

        clips = 1 if self.sampling == "fps" else (num_clips or DEFAULT_CLIPS[self.sampling])
        return SamplingConfig(
            mode=self.sampling,
            clip_len=self.num_frames,
            frame_interval=self.frame_interval,
            num_segments=self.num_segments,
            snippet_len=self.snippet_len,
            num_clips=clips,
            fps=self.fps,
            max_frames=self.max_frames,
        )

    def transform(self) -> Any:
        from actionrec.data.transforms import build_transform

        return build_transform(
            train=False,
            crop_size=self.crop_size,
            short_side=self.short_side,
            mean=self.mean,
            std=self.std,
            flow=self.in_channels == 2,
        )

    def window_seconds(self, src_fps: float) -> float:
        """The default timeline window: the time one clip of the model spans."""
        span = self.num_frames * (self.frame_interval if self.sampling == "dense" else 1)
        if self.sampling == "segment":
            span = self.num_segments * self.snippet_len
        return span / (self.fps or src_fps)


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


def _read_clip(reader: Any, row: np.ndarray, transform: Any) -> torch.Tensor:
    """(T,) frame indices -> (C, T, H, W), decoded and transformed CHUNK frames at a time.

    The test transform (resize, centre crop, normalise) works frame by frame, so chunking changes
    nothing but the memory held: a long HD video never sits in memory as full-size float frames.
    """
    parts = [transform(reader.get_frames(row[s : s + CHUNK])) for s in range(0, len(row), CHUNK)]
    return torch.cat(parts, dim=1)  # chunks of (C, t, H, W) -> (C, T, H, W)


def _forward(runner: nn.Module, clips: torch.Tensor, *, chunk: int = 8) -> torch.Tensor:
    """(N, C, T, H, W) -> (N, K) float32 logits."""
    outs = []
    for s in range(0, clips.shape[0], chunk):
        out = runner(clips[s : s + chunk])
        outs.append((out if isinstance(out, torch.Tensor) else out["logits"]).float().cpu())
    return torch.cat(outs)


def _video_logits(
    runner: nn.Module,
    reader: Any,
    pre: Preprocessing,
    *,
    num_clips: int | None,
    start: int = 0,
    stop: int | None = None,
) -> torch.Tensor:
    """Mean logits (K,) over the clips the preprocessing samples from frames [start, stop)."""
    from actionrec.data.sampling import sample_indices

    meta = reader.metadata
    stop = meta.num_frames if stop is None else stop
    indices = sample_indices(
        pre.sampling_config(num_clips), num_frames=stop - start, fps=meta.fps, train=False
    )
    transform = pre.transform()
    clips = torch.stack([_read_clip(reader, row, transform) for row in indices + start])  # (N, C, T, H, W)
    logits = _forward(runner, clips)
    return logits.mean(0)  # (N, K) -> (K,)


def _windows(num_frames: int, src_fps: float, window: float, stride: float) -> list[tuple[int, int]]:
    """[start, stop) frame ranges of ``window`` seconds every ``stride`` seconds, covering the video."""
    length = max(1, min(num_frames, round(window * src_fps)))
    step = max(1, round(stride * src_fps))
    starts = list(range(0, max(num_frames - length, 0) + 1, step))
    if starts[-1] + length < num_frames:  # keep the tail of the video
        starts.append(num_frames - length)
    return [(s, s + length) for s in starts]


def _timeline(
    runner: nn.Module, reader: Any, pre: Preprocessing, window: float | None, stride: float | None
) -> Timeline:
    meta = reader.metadata
    window = window or pre.window_seconds(meta.fps)
    stride = stride or window / 2
    spans = _windows(meta.num_frames, meta.fps, window, stride)
    clips = 1 if pre.sampling == "dense" else None  # one centred clip per window
    scores = [
        _video_logits(runner, reader, pre, num_clips=clips, start=a, stop=b).softmax(-1) for a, b in spans
    ]
    times = np.array([(a + b) / 2 / meta.fps for a, b in spans])
    return Timeline(times=times, scores=torch.stack(scores).numpy(), window=window, stride=stride)


def _check_input_kind(pre: Preprocessing, path: str | Path) -> None:
    if pre.input_kind == "two_stream" or pre.in_channels != 3:
        raise ActionrecError(f"{path}: this model takes optical flow input; predict runs RGB models only")


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
) -> Prediction:
    """Classify one video file with the model's own preprocessing (see the module docstring).

    ``card`` overrides ``model.card`` (a ModelCard or a weights card's ``preprocessing`` dict).
    ``timeline=True`` (or a ``window`` length in seconds) adds class scores over sliding windows
    ``stride`` seconds apart (default: one model clip long, half-overlapping).
    """
    from actionrec.data.decode import open_video

    model_card = getattr(model, "card", None)
    base = Preprocessing.from_card(model_card) if model_card is not None else None
    pre = Preprocessing.from_card(card, base=base) if card is not None else base
    if pre is None:
        raise ActionrecError("the model has no card; pass card= (a ModelCard or a preprocessing dict)")
    _check_input_kind(pre, path)
    runner = fast_inference(model, precision=precision)
    with open_video(path, backend=backend) as reader:
        logits = _video_logits(runner, reader, pre, num_clips=num_clips)
        names = _class_names(labels, logits.shape[0])
        line = _timeline(runner, reader, pre, window, stride) if (timeline or window) else None
    probs = logits.softmax(-1)
    order = torch.argsort(logits, descending=True, stable=True)[: min(topk, logits.shape[0])]
    top = [
        {"label": names[i], "index": int(i), "score": float(probs[i]), "logit": float(logits[i])}
        for i in order.tolist()
    ]
    return Prediction(
        video=str(path), top=top, logits=[float(v) for v in logits], classes=names, timeline=line
    )
