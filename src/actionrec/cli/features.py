"""``actionrec features``: per-clip and per-video feature vectors, the way C3D descriptors are used.

Each video is cut into clips of ``--clip-len`` frames (``--frame-interval`` apart) whose starts are
``--stride`` frames apart, as in C3D §4 ("Learning Spatiotemporal Features with 3D Convolutional
Networks", arXiv 1412.0767: 16-frame clips, fc6 averaged over the video). For every video two files are
written to ``--out``: ``NAME_clips.npy`` (N_clips x D float32) and ``NAME.npy`` (D, their average).

Outputs are written to a temporary file and renamed, so a half-written file never looks complete, and
videos whose two files already exist are skipped: an interrupted run resumes where it stopped. Videos
that cannot be decoded are reported on stderr (exit code 2) while the others are still processed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from actionrec.errors import ActionrecError, VideoDecodeError

LIST_SUFFIXES = (".txt", ".lst", ".list")
GENERIC_LAYERS = ("pre_logits", "logits")

EXAMPLE = """example:
  actionrec features videos/*.mp4 --model c3d --layer fc6 --weights c3d_sports1m.safetensors --out feats/
  actionrec features trainlist01.txt --model slowfast_r50_4x16 --out feats/ --batch-size 4
  (a .txt/.lst/.list argument is a list of videos, one per line; a second column such as a label is ignored)
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "features",
        help="extract per-clip and per-video features",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write NAME_clips.npy (clips x D) and NAME.npy (D, the clip average) per video. "
        "Resumable: videos whose outputs exist are skipped.",
    )
    p.add_argument("inputs", nargs="+", metavar="VIDEO_OR_LIST", help="video files or .txt lists of them")
    p.add_argument("--model", required=True, help="registered model name, e.g. c3d")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--weights", help="weights file for the model")
    p.add_argument("--num-classes", type=int, default=400, help="classes of the weights' classifier (400)")
    p.add_argument(
        "--layer",
        help="feature layer: the model's own (C3D: pool5 fc6 fc7; default fc6), "
        "or pre_logits / logits for any model (default pre_logits)",
    )
    p.add_argument("--clip-len", type=int, help="frames per clip (default: the model's)")
    p.add_argument("--stride", type=int, help="frames between clip starts (default: one clip span)")
    p.add_argument("--frame-interval", type=int, help="frames between clip frames (default: the model's)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per forward pass (default 8)")
    p.add_argument("--crop-size", type=int, help="centre crop size (default: the model's)")
    p.add_argument(
        "--short-side", type=int, help="resize the short side to this first (default: the model's)"
    )
    p.add_argument("--backend", default="pyav", help="video decoder: pyav, opencv, torchcodec, frames")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    return p


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


def _check_unique(videos: list[Path]) -> None:
    seen: dict[str, Path] = {}
    for video in videos:
        if video.stem in seen and seen[video.stem] != video:
            raise ActionrecError(f"{video} and {seen[video.stem]} would write the same output name")
        seen[video.stem] = video


def atomic_save(path: Path, array: np.ndarray) -> None:
    """np.save to a temporary name in the same folder, then rename (atomic on POSIX)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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


def _batches(indices: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for i in range(0, len(indices), size):
        yield indices[i : i + size]


def extract_video(
    video: Path,
    *,
    features: Callable[[Any], Any],
    transform: Callable[[np.ndarray], Any],
    card: Any,
    args: argparse.Namespace,
    device: Any,
) -> np.ndarray:
    """(N_clips, D) float32 features of one video."""
    import torch

    from actionrec.data.decode import open_video

    with open_video(video, args.backend) as reader:
        meta = reader.metadata
        clips = clip_indices(
            meta.num_frames,
            meta.fps,
            card=card,
            clip_len=args.clip_len,
            stride=args.stride,
            frame_interval=args.frame_interval,
        )
        out = []
        for batch in _batches(clips, args.batch_size):
            wanted = np.unique(batch)  # decode each frame once, in increasing order
            frames = reader.get_frames(wanted)  # (U, H, W, 3)
            # (b, L) positions into `wanted` -> (b, L, H, W, 3) -> b x (C, L, h, w) -> (b, C, L, h, w)
            x = torch.stack([transform(frames[np.searchsorted(wanted, clip)]) for clip in batch]).to(device)
            with torch.inference_mode():
                out.append(features(x).flatten(1).float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def _setup(args: argparse.Namespace) -> tuple[Any, Callable[[Any], Any], Callable[[np.ndarray], Any], Any]:
    import dataclasses

    import torch

    from actionrec.data.transforms import transform_for_card
    from actionrec.models.registry import create_model

    model = create_model(args.model, num_classes=args.num_classes, weights=args.weights)
    card = model.card
    crop = args.crop_size or card.crop_size
    # a new crop keeps the model's crop / short-side ratio unless --short-side is given too
    short = args.short_side or round(crop * card.short_side / card.crop_size)
    card = dataclasses.replace(card, crop_size=crop, short_side=short)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(args.device)
        except RuntimeError as e:
            raise ActionrecError(f"--device {args.device!r}: {e}") from e
    model.to(device).eval()
    return card, feature_fn(model, args.layer), transform_for_card(card, train=False), device


def _check_args(args: argparse.Namespace, card: Any) -> None:
    args.clip_len = args.clip_len or card.num_frames
    args.frame_interval = args.frame_interval or card.frame_interval
    args.stride = args.stride or (args.clip_len - 1) * args.frame_interval + 1
    for name in ("clip_len", "frame_interval", "stride", "batch_size"):
        if getattr(args, name) < 1:
            raise ActionrecError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from actionrec.models.registry import get_card

    _check_args(args, get_card(args.model))
    videos = expand_inputs(args.inputs)
    _check_unique(videos)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    card, features, transform, device = _setup(args)
    done = skipped = bad = 0
    for video in tqdm(videos, desc="features", unit="video"):
        clips_path, mean_path = output_paths(out, video)
        if clips_path.is_file() and mean_path.is_file():
            skipped += 1
            continue
        try:
            if not video.is_file() and not video.is_dir():
                raise VideoDecodeError(video, "no such file")
            clip_feats = extract_video(
                video, features=features, transform=transform, card=card, args=args, device=device
            )
        except (ActionrecError, OSError, RuntimeError, ValueError) as e:
            message = str(e) if isinstance(e, VideoDecodeError) else f"{video}: {e}"
            tqdm.write(f"actionrec features: error: {message}", file=sys.stderr)
            bad += 1
            continue
        atomic_save(clips_path, clip_feats)
        atomic_save(mean_path, clip_feats.mean(axis=0))  # written last: its presence means "complete"
        done += 1
    print(f"features: {done} written, {skipped} already there, {bad} failed -> {out}")
    return 2 if bad else 0
