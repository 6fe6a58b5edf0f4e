"""``actionrec flow``: extract optical flow images (TSN/mmaction2 rawframes layout) from videos.

The job list, resuming and worker pool are :mod:`actionrec.data.flow_jobs`; this module parses the
arguments and reports progress and bad videos.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from actionrec.data.flow import METHODS, FlowOptions
from actionrec.data.flow_jobs import collect_jobs, pending_jobs, run_jobs
from actionrec.data.sources import FLOW_METHODS, FlowSource
from actionrec.errors import ActionrecError

EXAMPLE = """example:
  actionrec flow data/ucf101/videos --out data/ucf101/flow --method tvl1 --bound 20 --workers 8
  writes data/ucf101/flow/<class>/<video>/flow_x_00001.jpg, flow_y_00001.jpg, ... and a .done marker;
  rerunning skips finished videos."""


def add_flow_source_arguments(p: argparse.ArgumentParser) -> None:
    """``--flow-root`` / ``--flow-method``: where a flow model's flow comes from (predict, features)."""
    p.add_argument(
        "--flow-root",
        metavar="DIR",
        help="flow models: the folder `actionrec flow` wrote (the flow of VIDEO is DIR/<VIDEO's stem>)",
    )
    p.add_argument(
        "--flow-method",
        choices=FLOW_METHODS,
        default="stored",
        help="flow models: read stored flow (default) or compute Farneback flow on the fly",
    )


def flow_source(args: argparse.Namespace) -> FlowSource:
    return FlowSource(args.flow_root, args.flow_method)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "flow",
        help="extract optical flow images from videos",
        description="Compute optical flow for videos and store it as quantised JPEGs (flow_x/flow_y).",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="VIDEO_OR_DIR", help="videos, or folders searched for videos")
    p.add_argument("--out", required=True, type=Path, help="output root; one folder per video")
    p.add_argument("--method", choices=METHODS, default="tvl1", help="flow algorithm (default: tvl1)")
    p.add_argument("--bound", type=float, default=20.0, help="clip flow to ±BOUND px before quantising")
    p.add_argument("--short-side", type=int, default=256, help="resize frames to this short side (0: keep)")
    p.add_argument("--backend", default="pyav", help="video decoder backend (default: pyav)")
    p.add_argument("--workers", type=int, default=1, help="videos processed in parallel (default: 1)")
    p.add_argument("--raft-weights", type=Path, default=None, help="local raft_small state dict (raft_small)")
    p.add_argument("--device", default="cpu", help="device for raft_small (default: cpu)")
    return p


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise ActionrecError(f"--workers must be at least 1, got {args.workers}")
    if args.bound <= 0:
        raise ActionrecError(f"--bound must be positive, got {args.bound}")
    pairs, bad = collect_jobs(args.inputs, args.out)
    todo = pending_jobs(pairs)
    skipped = len(pairs) - len(todo)
    weights = None if args.raft_weights is None else str(args.raft_weights)
    opts = FlowOptions(args.method, args.bound, args.short_side or None, args.backend, weights, args.device)
    done = 0
    with tqdm(total=len(todo), desc="flow", unit="video", file=sys.stderr, disable=not todo) as bar:
        for error in run_jobs(todo, opts, workers=args.workers):
            if error is None:
                done += 1
            else:
                bad.append(error)
            bar.update()
    print(f"flow: {done} extracted, {skipped} already complete, {len(bad)} failed -> {args.out}")
    for line in bad:
        print(f"actionrec flow: bad video: {line}", file=sys.stderr)
    return 2 if bad else 0
