"""``actionrec synth``: write the synthetic motion benchmark (UCF101 layout) to a folder."""

from __future__ import annotations

import argparse

from actionrec.data.synth import SYNTH_CLASSES, SYNTH_PAIRS, generate_synthetic

EXAMPLE = "example:\n  actionrec synth --out data/synthetic --videos-per-class 50 --size 48 --frames 32"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "synth",
        help="generate the synthetic motion benchmark",
        description="Generate the synthetic motion benchmark: mp4 clips whose classes differ only in "
        "motion (direction / time order pairs), with UCF101-style split files.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--classes", default=None, help=f"comma-separated subset of: {','.join(SYNTH_CLASSES)} (default: all)"
    )
    p.add_argument("--videos-per-class", type=int, default=50)
    p.add_argument("--size", type=int, default=48, help="frame width and height in pixels (even)")
    p.add_argument("--frames", type=int, default=32, help="frames of the longest clip")
    p.add_argument("--fps", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None, help="processes (default: CPUs, at most 8)")
    return p


def run(args: argparse.Namespace) -> int:
    classes = (
        [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else list(SYNTH_CLASSES)
    )
    out = generate_synthetic(
        args.out,
        classes=classes,
        videos_per_class=args.videos_per_class,
        size=args.size,
        num_frames=args.frames,
        fps=args.fps,
        seed=args.seed,
        workers=args.workers,
        progress=True,
    )
    pairs = {c: name for name, pair in SYNTH_PAIRS.items() for c in pair}
    print(f"{len(classes)} classes:")
    for i, c in enumerate(classes, 1):
        print(f"  {i:2d} {c}" + (f"  (pair: {pairs[c]})" if c in pairs else ""))
    print(f"wrote {len(classes) * args.videos_per_class} videos to {out}")
    return 0
