"""Per-clip and per-video feature vectors, the way C3D descriptors are used.

Each video is cut into clips of ``clip_len`` frames (``frame_interval`` apart) whose starts are ``stride``
frames apart, as in C3D §4 ("Learning Spatiotemporal Features with 3D Convolutional Networks", arXiv
1412.0767: 16-frame clips, fc6 averaged over the video). For every video two files are written to the
output folder: ``NAME_clips.npy`` (N_clips x D float32) and ``NAME.npy`` (D, their average).

Outputs are written atomically (:func:`actionrec.io.atomic_write`) and the per-video file last, so its
presence means "complete"; videos whose two files already exist are skipped, so an interrupted run
resumes where it stopped. A video that cannot be decoded is reported and the others are still processed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actionrec.errors import ActionrecError, VideoDecodeError
from actionrec.io import atomic_write

LIST_SUFFIXES = (".txt", ".lst", ".list")
GENERIC_LAYERS = ("pre_logits", "logits")


@dataclass(frozen=True)
class ClipOptions:
    """How videos are cut into clips and decoded; every count must be at least 1."""

    clip_len: int
    stride: int
    frame_interval: int
    batch_size: int = 8
    backend: str = "pyav"

    def __post_init__(self) -> None:
        for name in ("clip_len", "frame_interval", "stride", "batch_size"):
            if getattr(self, name) < 1:
                raise ActionrecError(f"{name} must be >= 1, got {getattr(self, name)}")


def clip_options(
    card: Any,
    *,
    clip_len: int | None = None,
    stride: int | None = None,
    frame_interval: int | None = None,
    batch_size: int = 8,
    backend: str = "pyav",
) -> ClipOptions:
    """Options with the model card's clip length and frame interval where not given; the stride
    defaults to one clip span (adjacent, non-overlapping clips)."""
    clip_len = clip_len or card.num_frames
    frame_interval = frame_interval or card.frame_interval
    stride = stride or (clip_len - 1) * frame_interval + 1
    return ClipOptions(clip_len, stride, frame_interval, batch_size, backend)


@dataclass(frozen=True)
class FeatureExtractor:
    """A model ready to turn clip batches into (B, D) features, with the card and transform it expects."""

    card: Any
    features: Callable[[torch.Tensor], torch.Tensor]
    transform: Callable[[np.ndarray], torch.Tensor]
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
    num_frames: int, fps: float, *, card: Any, clip_len: int, stride: int, frame_interval: int
) -> np.ndarray:
    """(N_clips, clip_len) frame indices: sliding windows, on the model's fps timeline if it has one."""
    from actionrec.data.sampling import dense_clip_indices, resample_fps_indices

    timeline = np.arange(num_frames)
    if card.fps:
        timeline = resample_fps_indices(num_frames, src_fps=fps, dst_fps=card.fps)
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

    A new ``crop_size`` keeps the model's crop / short-side ratio unless ``short_side`` is given too.
    """
    from actionrec.data.transforms import transform_for_card
    from actionrec.models.registry import create_model

    model = create_model(model_name, num_classes=num_classes, weights=weights)
    card = model.card
    crop = crop_size or card.crop_size
    short = short_side or round(crop * card.short_side / card.crop_size)
    card = dataclasses.replace(card, crop_size=crop, short_side=short)
    model.to(device).eval()
    return FeatureExtractor(card, feature_fn(model, layer), transform_for_card(card, train=False), device)


def _batches(indices: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for i in range(0, len(indices), size):
        yield indices[i : i + size]


def extract_video(video: Path, *, extractor: FeatureExtractor, options: ClipOptions) -> np.ndarray:
    """(N_clips, D) float32 features of one video."""
    from actionrec.data.decode import open_video

    with open_video(video, options.backend) as reader:
        meta = reader.metadata
        clips = clip_indices(
            meta.num_frames,
            meta.fps,
            card=extractor.card,
            clip_len=options.clip_len,
            stride=options.stride,
            frame_interval=options.frame_interval,
        )
        out = []
        for batch in _batches(clips, options.batch_size):
            wanted = np.unique(batch)  # decode each frame once, in increasing order
            frames = reader.get_frames(wanted)  # (U, H, W, 3)
            # (b, L) positions into `wanted` -> (b, L, H, W, 3) -> b x (C, L, h, w) -> (b, C, L, h, w)
            clips_in = [extractor.transform(frames[np.searchsorted(wanted, clip)]) for clip in batch]
            x = torch.stack(clips_in).to(extractor.device)
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
    out.mkdir(parents=True, exist_ok=True)
    for video in videos:
        clips_path, mean_path = output_paths(out, video)
        if clips_path.is_file() and mean_path.is_file():
            yield video, "skipped", ""
            continue
        try:
            if not video.is_file() and not video.is_dir():
                raise VideoDecodeError(video, "no such file")
            clip_feats = extract_video(video, extractor=extractor, options=options)
        except (ActionrecError, OSError, RuntimeError, ValueError) as e:
            yield video, "failed", str(e) if isinstance(e, VideoDecodeError) else f"{video}: {e}"
            continue
        save_array(clips_path, clip_feats)
        save_array(mean_path, clip_feats.mean(axis=0))  # written last: its presence means "complete"
        yield video, "done", ""
