"""Per-clip and per-video feature vectors, the way C3D descriptors are used.

Each video is cut into clips of ``clip_len`` frames (``frame_interval`` apart) whose starts are ``stride``
frames apart, as in C3D §4 ("Learning Spatiotemporal Features with 3D Convolutional Networks", arXiv
1412.0767: 16-frame clips, fc6 averaged over the video). For every video two files are written to the
output folder: ``NAME_clips.npy`` (N_clips x D float32) and ``NAME.npy`` (D, their average).

Outputs are written atomically (:func:`actionrec.io.atomic_write`) and the per-video file last, so its
presence means "complete"; videos whose two files already exist are skipped, so an interrupted run
resumes where it stopped. A video that cannot be decoded is reported and the others are still processed.

Clips are fed the way the model was trained: the :class:`~actionrec.data.preprocessing.Preprocessing`
of the model's card or, for an actionrec weights file that records one, the weights' own (its crop,
resize and normalisation). Its streams are read through :class:`~actionrec.data.sources.SampleSource`,
so a flow model reads the folders ``actionrec flow`` wrote (``FlowSource(root)``) or Farneback flow
computed on the fly (``FlowSource(method="farneback")``), and a two-stream model gets both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actionrec.data.preprocessing import Preprocessing
from actionrec.data.sources import FlowSource
from actionrec.errors import ActionrecError, ConfigError, VideoDecodeError
from actionrec.io import atomic_write

LIST_SUFFIXES = (".txt", ".lst", ".list")
GENERIC_LAYERS = ("pre_logits", "logits")
FEATURE_STREAMS = ("rgb", "flow")  # the streams a clip of a video gives (no future frames, no boxes)


@dataclass(frozen=True)
class ClipOptions:
    """How videos are cut into clips and decoded; every count must be at least 1. ``flow`` says where
    a flow model's flow comes from (default: stored flow, whose folder must then be given)."""

    clip_len: int
    stride: int
    frame_interval: int
    batch_size: int = 8
    backend: str = "pyav"
    flow: FlowSource | None = None

    def __post_init__(self) -> None:
        for name in ("clip_len", "frame_interval", "stride", "batch_size"):
            if getattr(self, name) < 1:
                raise ActionrecError(f"{name} must be >= 1, got {getattr(self, name)}")


def clip_options(
    pre: Any,
    *,
    clip_len: int | None = None,
    stride: int | None = None,
    frame_interval: int | None = None,
    batch_size: int = 8,
    backend: str = "pyav",
    flow: FlowSource | None = None,
) -> ClipOptions:
    """Options with the preprocessing's (or a model card's) clip length and frame interval where not
    given; the stride defaults to one clip span (adjacent, non-overlapping clips)."""
    clip_len = clip_len or pre.num_frames
    frame_interval = frame_interval or pre.frame_interval
    stride = stride or (clip_len - 1) * frame_interval + 1
    return ClipOptions(clip_len, stride, frame_interval, batch_size, backend, flow)


@dataclass(frozen=True)
class FeatureExtractor:
    """A model ready to turn clip batches into (B, D) features, with the preprocessing it expects.

    ``transform`` maps one clip's streams (``{"rgb": (T, H, W, 3) uint8, ...}``) to its tensors
    (``{"rgb": (C, T, h, w), ...}``): ``pre.transform()``, a
    :class:`~actionrec.data.streams.StreamTransform`. ``features`` takes the model input.
    """

    pre: Preprocessing
    features: Callable[[Any], torch.Tensor]
    transform: Callable[[Mapping[str, np.ndarray]], Mapping[str, torch.Tensor]]
    device: torch.device


def expand_inputs(items: list[str]) -> list[Path]:
    """Video paths from the arguments; list files contribute their first column, relative to the list."""
    videos: list[Path] = []
    for item in items:
        path = Path(item)
        if path.suffix.lower() not in LIST_SUFFIXES:
            videos.append(path)
            continue
        if not path.is_file():
            raise ActionrecError(f"{path}: video list not found")
        for line in path.read_text().splitlines():
            fields = line.split()
            if fields and not fields[0].startswith("#"):
                video = Path(fields[0])
                videos.append(video if video.is_absolute() else path.parent / video)
    return videos


def output_paths(out: Path, video: Path) -> tuple[Path, Path]:
    """(per-clip file, per-video file) of one video."""
    return out / f"{video.stem}_clips.npy", out / f"{video.stem}.npy"


def check_unique(videos: list[Path]) -> None:
    """Refuse two different videos whose outputs would have the same name (the stem)."""
    seen: dict[str, Path] = {}
    for video in videos:
        if video.stem in seen and seen[video.stem] != video:
            raise ActionrecError(f"{video} and {seen[video.stem]} would write the same output name")
        seen[video.stem] = video


def clip_indices(
    num_frames: int,
    fps: float | None,
    *,
    pre: Preprocessing,
    clip_len: int,
    stride: int,
    frame_interval: int,
) -> np.ndarray:
    """(N_clips, clip_len) frame indices: sliding windows, on the model's fps timeline if it has one
    (``pre.fps``; ``fps``, the video's, is only used then)."""
    from actionrec.data.sampling import dense_clip_indices, resample_fps_indices

    timeline = np.arange(num_frames)
    if pre.fps:
        if not fps:
            raise ActionrecError(f"the model samples at {pre.fps} fps but the video's frame rate is unknown")
        timeline = resample_fps_indices(num_frames, src_fps=fps, dst_fps=pre.fps)
    span = (clip_len - 1) * frame_interval + 1
    starts = np.arange(0, len(timeline) - span + 1, stride)
    if starts.size == 0:  # shorter than one clip: one looped clip, as dense sampling does
        positions = dense_clip_indices(
            len(timeline), clip_len=clip_len, frame_interval=frame_interval, train=False
        )
    else:
        positions = starts[:, None] + np.arange(clip_len) * frame_interval  # (N, 1) + (L,) -> (N, L)
    return timeline[positions]


def feature_fn(model: Any, layer: str | None) -> Callable[[Any], Any]:
    """Clip batch -> (B, D) features: the model's ``extract`` if it has one, else pre-logits/logits."""
    if layer == "logits":
        return model
    if hasattr(model, "extract") and layer != "pre_logits":
        return lambda x: model.extract(x) if layer is None else model.extract(x, layer=layer)
    if layer not in (None, "pre_logits"):
        raise ActionrecError(f"model has no feature layer {layer!r}; use one of {', '.join(GENERIC_LAYERS)}")
    return lambda x: model.forward_head(model.forward_features(x), pre_logits=True)


def load_extractor(
    model_name: str,
    *,
    device: torch.device,
    num_classes: int = 400,
    weights: str | None = None,
    layer: str | None = None,
    crop_size: int | None = None,
    short_side: int | None = None,
) -> FeatureExtractor:
    """Build the model (with ``weights``) in eval mode on ``device``, with its evaluation transform.

    The preprocessing is the model card's, or the one an actionrec weights file records (so features
    of a model trained with its own crop or normalisation are computed exactly as it was trained).
    A new ``crop_size`` keeps the crop / short-side ratio unless ``short_side`` is given too.
    """
    from actionrec.models.registry import create_model

    model = create_model(model_name, num_classes=num_classes, weights=weights)
    pre = Preprocessing.from_weights(weights, base=Preprocessing.from_card(model.card))
    unsupported = [s for s in pre.streams if s not in FEATURE_STREAMS]
    if unsupported:
        raise ConfigError(
            f"features reads {' and '.join(FEATURE_STREAMS)} streams; {model_name} also takes {unsupported}"
        )
    crop = crop_size or pre.crop_size
    short = short_side or round(crop * pre.short_side / pre.crop_size)
    pre = dataclasses.replace(pre, crop_size=crop, short_side=short)
    model.to(device).eval()
    return FeatureExtractor(pre, feature_fn(model, layer), pre.transform(train=False), device)


def _batches(indices: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for i in range(0, len(indices), size):
        yield indices[i : i + size]


def needs_video_file(pre: Preprocessing, flow: FlowSource | None) -> bool:
    """Whether the video file itself is read (not only a folder of stored flow)."""
    return "rgb" in pre.streams or (flow is not None and flow.method == "farneback")


def check_flow(pre: Preprocessing, flow: FlowSource | None) -> None:
    """Refuse, before any video, a flow model with no flow to read (stored flow without a folder)."""
    flow = flow or FlowSource()
    if "flow" in pre.streams and flow.method == "stored" and flow.root is None:
        flow.folder(Path("video"))  # raises the ConfigError that says how to give the flow


def extract_video(
    video: Path, *, extractor: FeatureExtractor, options: ClipOptions, flow: FlowSource | None = None
) -> np.ndarray:
    """(N_clips, D) float32 features of one video; ``flow`` (default ``options.flow``) is where a
    flow model's flow comes from."""
    from actionrec.data.sources import SampleSource
    from actionrec.data.streams import model_input
    from actionrec.engine.fast import to_device

    pre = extractor.pre
    flow = flow if flow is not None else options.flow
    with SampleSource(video, streams=pre.streams, flow=flow, backend=options.backend) as source:
        clips = clip_indices(
            source.num_frames,
            source.fps if pre.fps else None,  # flow folders alone may not know their frame rate
            pre=pre,
            clip_len=options.clip_len,
            stride=options.stride,
            frame_interval=options.frame_interval,
        )
        out = []
        for batch in _batches(clips, options.batch_size):
            streams = source.read(batch)  # {"rgb": (b, L, H, W, 3), "flow": (b, L, H, W, 2)} uint8
            # b x {"rgb": (C, L, h, w), ...} -> {"rgb": (b, C, L, h, w), ...}
            per_clip = [extractor.transform({k: v[i] for k, v in streams.items()}) for i in range(len(batch))]
            stacked = {k: torch.stack([clip[k] for clip in per_clip]) for k in per_clip[0]}
            x = to_device(model_input(stacked), extractor.device)
            with torch.inference_mode():
                out.append(extractor.features(x).flatten(1).float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def save_array(path: Path, array: np.ndarray) -> Path:
    """``np.save`` through the atomic writer: a half-written file never carries the final name."""
    return atomic_write(path, lambda f: np.save(f, array))


def extract_features(
    videos: list[Path], out: Path, *, extractor: FeatureExtractor, options: ClipOptions
) -> Iterator[tuple[Path, str, str]]:
    """Extract and save every video's features, yielding ``(video, status, error message)`` per video.

    The status is ``"done"``, ``"skipped"`` (both outputs already there) or ``"failed"`` (the message
    says why; the video's outputs are not written).
    """
    check_flow(extractor.pre, options.flow)
    out.mkdir(parents=True, exist_ok=True)
    for video in videos:
        clips_path, mean_path = output_paths(out, video)
        if clips_path.is_file() and mean_path.is_file():
            yield video, "skipped", ""
            continue
        try:
            if needs_video_file(extractor.pre, options.flow) and not video.is_file() and not video.is_dir():
                raise VideoDecodeError(video, "no such file")
            clip_feats = extract_video(video, extractor=extractor, options=options)
        except (ActionrecError, OSError, RuntimeError, ValueError) as e:
            yield video, "failed", str(e) if isinstance(e, VideoDecodeError) else f"{video}: {e}"
            continue
        save_array(clips_path, clip_feats)
        save_array(mean_path, clip_feats.mean(axis=0))  # written last: its presence means "complete"
        yield video, "done", ""
