"""``actionrec prepare``: re-encode a video tree with short keyframe intervals, or extract JPEG frames.

Keeps relative paths, runs in parallel, resumes where a previous run stopped (finished outputs are
skipped; half-written ones never carry the final name) and ends with a done/skipped/failed summary.
"""

from __future__ import annotations

import argparse
import os
import sys

from actionrec.data.prepare import VIDEO_EXTENSIONS, PrepareConfig, prepare_tree


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "prepare",
        help="re-encode videos with short GOPs (fast sparse decoding) or extract JPEG frames",
        description="Re-encode every video under SRC into DST (same relative paths, .mp4, H.264 yuv420p, "
        "a keyframe every --gop frames, short side --short-side), or with --mode frames extract each "
        "video to a folder of JPEGs (img_00001.jpg ..., the layout the 'frames' backend reads).",
        epilog="example:\n  actionrec prepare ucf101/videos ucf101/videos_256 --gop 16 --workers 8\n"
        "  actionrec prepare videos/ rawframes/ --mode frames --short-side 320",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", help="folder of source videos (searched recursively)")
    p.add_argument("dst", help="output folder (created; must not lie inside SRC)")
    p.add_argument("--short-side", type=int, default=256, help="output short side (px); 0 keeps the size")
    p.add_argument("--gop", type=int, default=16, help="keyframe interval in frames (reencode mode)")
    p.add_argument("--mode", choices=("reencode", "frames"), default="reencode")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="parallel processes")
    p.add_argument("--crf", type=int, default=18, help="x264 constant rate factor (lower: better, bigger)")
    p.add_argument("--preset", default="fast", help="x264 preset (default fast)")
    p.add_argument("--jpeg-quality", type=int, default=95, help="JPEG quality in frames mode")
    p.add_argument(
        "--ext", nargs="+", default=list(VIDEO_EXTENSIONS), metavar="EXT",
        help="file extensions to take (default: common video formats)",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    cfg = PrepareConfig(
        short_side=args.short_side, gop=args.gop, mode=args.mode, crf=args.crf, preset=args.preset,
        jpeg_quality=args.jpeg_quality, extensions=tuple(args.ext),
    )  # fmt: skip
    summary = prepare_tree(args.src, args.dst, cfg, workers=args.workers, progress=not args.no_progress)
    for _, reason in summary.failed:
        print(f"actionrec prepare: failed: {reason}", file=sys.stderr)
    print(f"prepared {args.src} -> {args.dst} ({args.mode}): {summary.line()}")
    return 2 if summary.failed else 0
