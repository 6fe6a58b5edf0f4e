"""``actionrec predict``: classify video files with a registered model and its weights."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from actionrec.cli.flow import add_flow_source_arguments, flow_source
from actionrec.engine.fast import PRECISIONS
from actionrec.errors import ActionrecError, VideoDecodeError

EXAMPLE = """example:
  actionrec predict arm_wrestling.mp4 --model i3d_inception_v1 \\
      --weights i3d_rgb_kinetics400_deepmind.pkl --labels kinetics400 --topk 5
  actionrec predict a.mp4 b.avi --weights runs/r2p1d/model.safetensors --json --timeline timeline.png
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "predict",
        help="classify video files",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Top-k classes of each video, with the model's own preprocessing (sampling, resize, "
        "crop, normalisation). Bad videos are reported one line each on stderr and make the exit code 2.",
    )
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files")
    p.add_argument(
        "--model", help="registered model name (optional when --weights is an actionrec .safetensors)"
    )
    p.add_argument(
        "--weights", help="weights file: actionrec .safetensors, a torch state dict or a public checkpoint"
    )
    p.add_argument(
        "--labels", help="label file, or one of kinetics400 kinetics600 kinetics700 ucf101 hmdb51 ssv2"
    )
    p.add_argument("--topk", type=int, default=5, help="classes to show per video (default 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per video and line on stdout")
    p.add_argument("--timeline", metavar="PNG", help="plot class scores over sliding windows to this PNG")
    p.add_argument("--window", type=float, help="timeline window in seconds (default: one model clip)")
    p.add_argument("--clips", type=int, help="clips per video for dense-sampled models (default 10)")
    p.add_argument(
        "--precision", choices=PRECISIONS, default="auto", help="inference precision (default auto)"
    )
    p.add_argument("--backend", default="pyav", help="video decoder: pyav, opencv, torchcodec, frames")
    add_flow_source_arguments(p)
    boxes = p.add_argument_group("object boxes (region-graph models)")
    boxes.add_argument(
        "--boxes-root", help="folder holding <video name>.boxes.json (default: the file beside the video)"
    )
    boxes.add_argument(
        "--detector",
        metavar="WEIGHTS",
        help="detect the boxes first with torchvision's Faster R-CNN from this local state dict",
    )
    boxes.add_argument("--max-boxes", type=int, default=10, help="boxes kept a frame (default 10)")
    boxes.add_argument(
        "--detector-min-size", type=int, default=800, help="short side the detector sees (default 800)"
    )
    return p


def box_source(args: argparse.Namespace) -> Any:
    """Where a region model's boxes come from: the detector (built once, run on the sampled frames)
    or the box files (beside the videos or under --boxes-root)."""
    from actionrec.data.boxes import BoxSource

    if not args.detector:
        return BoxSource(args.boxes_root, max_boxes=args.max_boxes)
    from actionrec.cli.boxes import DetectedBoxes, DetectOptions, build_detector

    if not Path(args.detector).is_file():
        raise ActionrecError(f"{args.detector}: no such weights file (a fasterrcnn_resnet50_fpn state dict)")
    opts = DetectOptions(weights=args.detector, max_boxes=args.max_boxes, min_size=args.detector_min_size)
    return DetectedBoxes(build_detector(opts), opts)


def _weights_card(path: str | None) -> dict[str, Any] | None:
    """The JSON card of an actionrec .safetensors file, None for other weights formats."""
    if path is None or Path(path).suffix != ".safetensors":
        return None
    from actionrec.weights import read_card

    return read_card(path)


def load_predictor(args: argparse.Namespace) -> tuple[Any, list[str] | None, Any]:
    """(model, class names or None, preprocessing card or None) from --model/--weights/--labels."""
    from actionrec.engine.labels import resolve_labels
    from actionrec.models.registry import create_model

    card = _weights_card(args.weights)
    name = args.model or (card or {}).get("model")
    if not name:
        raise ActionrecError(
            "--model is required unless --weights is an actionrec .safetensors file with a card"
        )
    labels = resolve_labels(args.labels) if args.labels else (card or {}).get("labels")
    kwargs: dict[str, Any] = {}
    if card and name == card.get("model"):  # the architecture arguments it was trained with
        kwargs.update(card.get("builder_kwargs") or {})
    if card and card.get("num_classes"):
        kwargs["num_classes"] = int(card["num_classes"])
    elif labels:
        kwargs["num_classes"] = len(labels)
    model = create_model(name, weights=args.weights, **kwargs)
    num_classes = getattr(model, "num_classes", None)
    if labels and num_classes and len(labels) != num_classes:
        raise ActionrecError(f"{len(labels)} labels for a model with {num_classes} classes; check --labels")
    if args.weights is None:
        print("actionrec predict: warning: no --weights, the model is randomly initialised", file=sys.stderr)
    return model, labels, (card or {}).get("preprocessing")


def _timeline_path(base: str, video: str, many: bool) -> Path:
    path = Path(base)
    return path.with_name(f"{path.stem}_{Path(video).stem}{path.suffix or '.png'}") if many else path


def _print_text(prediction: Any) -> None:
    print(prediction.video)
    width = max(len(t["label"]) for t in prediction.top)
    for rank, t in enumerate(prediction.top, 1):
        print(f"  {rank}. {t['label']:<{width}}  {t['score']:7.2%}  (logit {t['logit']:.3f})")


def _predict_one(
    model: Any, video: str, labels: list[str] | None, pre: Any, args: argparse.Namespace, boxes: Any
) -> Any:
    from actionrec.engine.predict import predict_video

    return predict_video(
        model,
        video,
        card=pre,
        precision=args.precision,
        topk=args.topk,
        labels=labels,
        backend=args.backend,
        timeline=bool(args.timeline),
        window=args.window,
        num_clips=args.clips,
        flow=flow_source(args),
        boxes=boxes,
    )


def run(args: argparse.Namespace) -> int:
    if args.topk < 1:
        raise ActionrecError(f"--topk must be >= 1, got {args.topk}")
    if args.clips is not None and args.clips < 1:
        raise ActionrecError(f"--clips must be >= 1, got {args.clips}")
    model, labels, pre = load_predictor(args)
    regions = "boxes" in getattr(getattr(model, "card", None), "streams", ())
    boxes = box_source(args) if regions else None
    bad = 0
    for video in args.videos:
        try:
            prediction = _predict_one(model, video, labels, pre, args, boxes)
        except (ActionrecError, OSError, RuntimeError, ValueError) as e:
            message = str(e) if isinstance(e, VideoDecodeError) else f"{video}: {e}"
            print(f"actionrec predict: error: {message}", file=sys.stderr)
            bad += 1
            continue
        if args.json:
            print(json.dumps(prediction.to_dict()), flush=True)
        else:
            _print_text(prediction)
        if args.timeline and prediction.timeline is not None:
            png = _timeline_path(args.timeline, video, len(args.videos) > 1)
            prediction.timeline.plot(png, prediction.classes, title=Path(video).name)
    return 2 if bad else 0
