"""``actionrec boxes``: detect objects in videos with Faster R-CNN and write box files.

The detector is torchvision's ``fasterrcnn_resnet50_fpn`` built without downloading anything
(``weights=None, weights_backbone=None``) and loaded from a local state dict (``--weights``, read with
``torch.load(weights_only=True)``), e.g. the COCO checkpoint torchvision publishes, fetched beforehand.
Every frame (or every ``--every``-th) of each video is detected; the ``--max-boxes`` best boxes a frame
(after ``--classes`` / ``--score-threshold``) go to the video's box file in the format of
:mod:`actionrec.data.boxes`: next to the video, or with ``--out`` under that folder at the video's
path relative to the folder argument (a ``boxes_root`` for the dataset). Files are written atomically
and videos whose box file exists are skipped, so an interrupted run resumes; ``--shard k/n`` takes
every n-th video from the k-th (1-based) for running on several machines. Videos that fail are
listed at the end (exit status 2).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from actionrec.data.boxes import box_file, write_boxes
from actionrec.data.flow_jobs import VIDEO_SUFFIXES
from actionrec.errors import ActionrecError, VideoDecodeError, WeightsError

EXAMPLE = """example:
  actionrec boxes data/something/videos --weights fasterrcnn_resnet50_fpn_coco.pth \\
      --out data/something/boxes --every 2 --max-boxes 10 --workers 4
  writes data/something/boxes/<video path without suffix>.boxes.json (frame, x1, y1, x2, y2, score);
  train with data.options.boxes_root=data/something/boxes. Rerunning skips finished videos."""


@dataclass(frozen=True)
class DetectOptions:
    weights: str
    every: int = 1
    max_boxes: int = 10
    score_threshold: float = 0.0
    classes: tuple[int, ...] = ()
    min_size: int = 800
    max_frames: int | None = None
    batch_size: int = 4
    device: str = "cpu"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "boxes",
        help="detect objects in videos and write box files (for region-graph models)",
        description="Run a local Faster R-CNN over videos and write their per-frame boxes.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs", nargs="+", metavar="VIDEO_DIR_OR_LIST", help="videos, folders of videos, .txt lists"
    )
    p.add_argument("--weights", required=True, type=Path, help="local fasterrcnn_resnet50_fpn state dict")
    p.add_argument(
        "--out", type=Path, help="box-file root mirroring the inputs (default: next to each video)"
    )
    p.add_argument("--format", choices=("json", "csv"), default="json", help="box-file encoding (json)")
    p.add_argument("--every", type=int, default=1, help="detect every K-th frame (default 1: all)")
    p.add_argument("--max-boxes", type=int, default=10, help="boxes kept a frame, best first (default 10)")
    p.add_argument("--score-threshold", type=float, default=0.0, help="drop boxes scoring less (default 0)")
    p.add_argument("--classes", default="", help="comma-separated COCO category ids to keep (default: all)")
    p.add_argument("--min-size", type=int, default=800, help="detector input short side (default 800)")
    p.add_argument("--max-frames", type=int, help="detect at most this many frames a video (quick runs)")
    p.add_argument("--batch-size", type=int, default=4, help="frames per detector call (default 4)")
    p.add_argument("--shard", default="1/1", help="K/N: process every N-th video from the K-th (1-based)")
    p.add_argument("--workers", type=int, default=1, help="videos processed in parallel (default 1)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    return p


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ActionrecError(f"--shard must be K/N like 2/8, got {text!r}") from None
    if not 1 <= k <= n:
        raise ActionrecError(f"--shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def _parse_classes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ActionrecError(f"--classes must be comma-separated integers, got {text!r}") from None


def collect_videos(inputs: Sequence[str | Path]) -> tuple[list[tuple[Path, str]], list[str]]:
    """``(video, path relative to its folder argument)`` pairs, and the inputs that do not exist.
    A ``.txt`` input lists one video a line (relative lines are taken from the list's folder)."""
    found: dict[Path, str] = {}
    problems = []
    for item in map(Path, inputs):
        if item.is_dir():
            for video in sorted(item.rglob("*")):
                if video.suffix.lower() in VIDEO_SUFFIXES and video.is_file():
                    found.setdefault(video, video.relative_to(item).as_posix())
        elif item.is_file() and item.suffix == ".txt":
            for line in item.read_text().splitlines():
                if line.strip():
                    rel = line.split()[0]
                    found.setdefault(item.parent / rel, rel)
        elif item.is_file():
            found.setdefault(item, item.name)
        else:
            problems.append(f"{item}: no such file or folder")
    return list(found.items()), problems


def _target(video: Path, rel: str, out: Path | None, fmt: str) -> Path:
    path = box_file(video, boxes_root=out, relative=rel)  # .boxes.json unless a .boxes.csv exists
    return path.with_name(path.name.rsplit(".boxes.", 1)[0] + f".boxes.{fmt}")


def build_detector(opts: DetectOptions) -> torch.nn.Module:
    """torchvision's Faster R-CNN from a local state dict; never downloads."""
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    try:
        state = torch.load(opts.weights, map_location="cpu", weights_only=True)
    except Exception as e:  # a file that is no torch checkpoint fails in many ways (struct.error, ...)
        raise WeightsError(f"{opts.weights}: cannot read a torch state dict ({e})") from None
    if not isinstance(state, dict):
        raise WeightsError(f"{opts.weights}: expected a state dict, got {type(state).__name__}")
    model = fasterrcnn_resnet50_fpn(
        weights=None,
        weights_backbone=None,
        min_size=opts.min_size,
        max_size=max(opts.min_size, round(opts.min_size * 1333 / 800)),
        box_score_thresh=opts.score_threshold,
        box_detections_per_img=max(100, opts.max_boxes),
    )
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise WeightsError(f"{opts.weights}: not a fasterrcnn_resnet50_fpn state dict ({first})") from None
    return model.eval().to(opts.device)


def detect_video(
    model: torch.nn.Module, video: Path, opts: DetectOptions
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Rows (K, 6) ``frame, x1, y1, x2, y2, score`` of one video and its (num_frames, height, width)."""
    from actionrec.data.decode import open_video

    with open_video(video) as reader:
        n = int(reader.metadata.num_frames or 0)
        if n == 0:
            raise VideoDecodeError(video, "no frames")
        frames = np.arange(0, n, opts.every)[: opts.max_frames]
        rows: list[np.ndarray] = []
        shape = (n, 0, 0)
        for start in range(0, len(frames), opts.batch_size):
            chunk = frames[start : start + opts.batch_size]
            images = reader.get_frames(chunk)  # (k, H, W, 3) uint8
            shape = (n, images.shape[1], images.shape[2])
            rows += _detect(model, images, chunk, opts)
    return (np.concatenate(rows) if rows else np.zeros((0, 6))), shape


class DetectedBoxes:
    """A box source that detects on demand (what ``actionrec predict --detector`` uses): a video's table
    runs the detector on the frames a clip samples, once each, instead of reading a box file."""

    def __init__(self, model: torch.nn.Module, opts: DetectOptions) -> None:
        self.model, self.opts = model, opts

    def load(self, video: str | Path, relative: object = None) -> _LazyTable:
        return _LazyTable(self, Path(video))


class _LazyTable:
    def __init__(self, source: DetectedBoxes, video: Path) -> None:
        from actionrec.data.boxes import BoxTable

        self.source, self.video = source, video
        self.table = BoxTable(np.zeros((0, 6)))  # filled frame by frame

    def at(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from actionrec.data.decode import open_video

        wanted = sorted({int(i) for i in np.asarray(indices).ravel()} - set(self.table.by_frame))
        opts = self.source.opts
        if wanted:
            with open_video(self.video) as reader:
                for start in range(0, len(wanted), opts.batch_size):
                    chunk = wanted[start : start + opts.batch_size]
                    for frame, rows in zip(
                        chunk, _detect(self.source.model, reader.get_frames(chunk), chunk, opts)
                    ):
                        self.table.by_frame[frame] = rows[:, 1:5]  # best first, at most max_boxes
        return self.table.at(indices)


def _detect(
    model: torch.nn.Module, images: np.ndarray, frames: Sequence[int], opts: DetectOptions
) -> list[np.ndarray]:
    """(k, H, W, 3) uint8 frames -> the kept rows (n, 6) of each."""
    batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    with torch.inference_mode():
        outputs = model(list(batch.to(opts.device)))
    return [_keep(int(frame), out, opts) for frame, out in zip(frames, outputs)]


def _keep(frame: int, out: dict[str, torch.Tensor], opts: DetectOptions) -> np.ndarray:
    boxes, scores, labels = out["boxes"].cpu(), out["scores"].cpu(), out["labels"].cpu()
    keep = scores >= opts.score_threshold
    if opts.classes:
        keep &= torch.isin(labels, torch.tensor(opts.classes))
    order = scores[keep].argsort(descending=True)[: opts.max_boxes]
    chosen = torch.cat([boxes[keep][order], scores[keep][order, None]], 1).double().numpy()  # (k, 5)
    return np.concatenate([np.full((len(chosen), 1), frame), chosen], 1)


_MODEL: torch.nn.Module | None = None


def _init_worker(opts: DetectOptions) -> None:
    global _MODEL
    torch.set_num_threads(1)
    _MODEL = build_detector(opts)


def _run_one(job: tuple[Path, Path, DetectOptions]) -> str | None:
    video, target, opts = job
    assert _MODEL is not None
    return _detect_and_write(_MODEL, video, target, opts)


def _detect_and_write(model: torch.nn.Module, video: Path, target: Path, opts: DetectOptions) -> str | None:
    """None when ``video``'s box file is written, else one line saying why not (the run goes on)."""
    try:
        rows, (n, h, w) = detect_video(model, video, opts)
        write_boxes(target, rows, width=w, height=h, num_frames=n, every=opts.every)
    except (ActionrecError, OSError, ValueError, IndexError, RuntimeError) as e:
        return f"{video}: {e.reason if isinstance(e, VideoDecodeError) else e}"
    return None


def _results(
    jobs: list[tuple[Path, Path]], opts: DetectOptions, workers: int, model: torch.nn.Module
) -> Iterator[str | None]:
    """An error message (or None) for each job; ``model`` (already built: a bad weights file has
    failed before any progress bar) runs them here, or each of ``workers`` spawned processes builds one."""
    if workers == 1 or len(jobs) <= 1:
        for video, target in jobs:
            yield _detect_and_write(model, video, target, opts)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(opts,)) as pool:
        yield from pool.map(_run_one, [(v, t, opts) for v, t in jobs])


def run(args: argparse.Namespace) -> int:
    for name in ("every", "max_boxes", "min_size", "batch_size", "workers"):
        if getattr(args, name) < 1:
            raise ActionrecError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.max_frames is not None and args.max_frames < 1:
        raise ActionrecError(f"--max-frames must be at least 1, got {args.max_frames}")
    if not Path(args.weights).is_file():
        raise ActionrecError(
            f"{args.weights}: no such weights file (a local fasterrcnn_resnet50_fpn state dict)"
        )
    k, n = _parse_shard(args.shard)
    opts = DetectOptions(
        weights=str(args.weights),
        every=args.every,
        max_boxes=args.max_boxes,
        score_threshold=args.score_threshold,
        classes=_parse_classes(args.classes),
        min_size=args.min_size,
        max_frames=args.max_frames,
        batch_size=args.batch_size,
        device=args.device,
    )
    videos, bad = collect_videos(args.inputs)
    if not videos:
        raise ActionrecError(f"no videos found in {' '.join(map(str, args.inputs))}")
    mine = videos[k - 1 :: n]
    jobs = [(v, _target(v, rel, args.out, args.format)) for v, rel in mine]
    todo = [(v, t) for v, t in jobs if not t.is_file()]
    done = 0
    model = build_detector(opts) if todo else torch.nn.Identity()
    with tqdm(total=len(todo), desc="boxes", unit="video", file=sys.stderr, disable=not todo) as bar:
        for error in _results(todo, opts, args.workers, model):
            if error is None:
                done += 1
            else:
                bad.append(error)
            bar.update()
    where = args.out or "next to the videos"
    print(f"boxes: {done} detected, {len(jobs) - len(todo)} already done, {len(bad)} failed -> {where}")
    for line in bad:
        print(f"actionrec boxes: failed: {line}", file=sys.stderr)
    return 2 if bad else 0
