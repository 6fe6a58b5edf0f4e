"""``actionrec features``: per-clip and per-video feature vectors, the way C3D descriptors are used.

For every video ``NAME_clips.npy`` (N_clips x D float32) and ``NAME.npy`` (D, their average) are written
to ``--out``; the extraction (clips, resuming, atomic outputs) is :mod:`actionrec.engine.features`. This
module parses the arguments and reports progress; videos that cannot be decoded are reported on stderr
(exit code 2) while the others are still processed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from actionrec.cli.flow import add_flow_source_arguments, flow_source
from actionrec.engine.features import (
    check_unique,
    clip_options,
    expand_inputs,
    extract_features,
    load_extractor,
)
from actionrec.errors import ActionrecError

EXAMPLE = """example:
  actionrec features videos/*.mp4 --model c3d --layer fc6 --weights c3d_sports1m.safetensors --out feats/
  actionrec features trainlist01.txt --model slowfast_r50_4x16 --out feats/ --batch-size 4
  actionrec features videos/*.mp4 --model i3d_inception_v1_flow --flow-root flow/ --out feats/
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
    add_flow_source_arguments(p)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    return p


def _device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; anything else must be a torch device string."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as e:
        raise ActionrecError(f"--device {name!r}: {e}") from e


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    videos = expand_inputs(args.inputs)
    check_unique(videos)
    out = Path(args.out)
    extractor = load_extractor(
        args.model,
        device=_device(args.device),
        num_classes=args.num_classes,
        weights=args.weights,
        layer=args.layer,
        crop_size=args.crop_size,
        short_side=args.short_side,
    )
    options = clip_options(  # clip length and frame interval default to the model's preprocessing
        extractor.pre,
        clip_len=args.clip_len,
        stride=args.stride,
        frame_interval=args.frame_interval,
        batch_size=args.batch_size,
        backend=args.backend,
        flow=flow_source(args),
    )
    counts = {"done": 0, "skipped": 0, "failed": 0}
    results = extract_features(videos, out, extractor=extractor, options=options)
    for _, status, message in tqdm(results, total=len(videos), desc="features", unit="video"):
        counts[status] += 1
        if message:
            tqdm.write(f"actionrec features: error: {message}", file=sys.stderr)
    done, skipped, failed = counts.values()
    print(f"features: {done} written, {skipped} already there, {failed} failed -> {out}")
    return 2 if failed else 0
