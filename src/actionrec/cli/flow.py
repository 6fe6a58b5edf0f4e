"""``actionrec flow``: extract optical flow images (TSN/mmaction2 rawframes layout) from videos."""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from actionrec.data.flow import METHODS, FlowOptions, extract_flow, is_complete
from actionrec.errors import ActionrecError

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv", ".gif"}
)
EXAMPLE = """example:
  actionrec flow data/ucf101/videos --out data/ucf101/flow --method tvl1 --bound 20 --workers 8
  writes data/ucf101/flow/<class>/<video>/flow_x_00001.jpg, flow_y_00001.jpg, ... and a .done marker;
  rerunning skips finished videos."""


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


def _videos_in(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
            yield path


def collect_jobs(inputs: Iterable[str | Path], out: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """``(video, output folder)`` pairs and the problems found (missing inputs).

    A video given directly goes to ``out/<stem>``; one found under a folder argument goes to
    ``out/<path relative to that folder, without suffix>``.
    """
    jobs: dict[Path, Path] = {}
    problems = []
    for item in map(Path, inputs):
        if item.is_dir():
            pairs = [(v, out / v.relative_to(item).with_suffix("")) for v in _videos_in(item)]
        elif item.is_file():
            pairs = [(item, out / item.stem)]
        else:
            problems.append(f"{item}: no such file or folder")
            continue
        for video, target in pairs:
            if target in jobs and jobs[target] != video:
                raise ActionrecError(f"{jobs[target]} and {video} would both write to {target}; rename one")
            jobs[target] = video
    return [(video, target) for target, video in jobs.items()], problems


def _extract_one(job: tuple[Path, Path, FlowOptions]) -> str | None:
    """Run one extraction; the error message for a bad video, ``None`` on success."""
    video, target, opts = job
    try:
        extract_flow(
            video, target, method=opts.method, bound=opts.bound, short_side=opts.short_side,
            backend=opts.backend, raft_weights=opts.raft_weights, device=opts.device,
        )  # fmt: skip
    except ActionrecError as e:  # returned, not raised: these exceptions do not survive pickling
        return str(e)
    return None


def _init_worker() -> None:
    import cv2
    import torch

    cv2.setNumThreads(1)  # one core per worker process
    torch.set_num_threads(1)


def _run_jobs(jobs: list[tuple[Path, Path, FlowOptions]], workers: int) -> Iterator[str | None]:
    if workers <= 1:
        yield from map(_extract_one, jobs)
        return
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold torch/OpenMP threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
        yield from pool.map(_extract_one, jobs)


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise ActionrecError(f"--workers must be at least 1, got {args.workers}")
    if args.bound <= 0:
        raise ActionrecError(f"--bound must be positive, got {args.bound}")
    pairs, bad = collect_jobs(args.inputs, args.out)
    todo = [(video, target) for video, target in pairs if not is_complete(target)]
    skipped = len(pairs) - len(todo)
    weights = None if args.raft_weights is None else str(args.raft_weights)
    opts = FlowOptions(args.method, args.bound, args.short_side or None, args.backend, weights, args.device)
    jobs = [(video, target, opts) for video, target in todo]
    done = 0
    with tqdm(total=len(jobs), desc="flow", unit="video", file=sys.stderr, disable=not jobs) as bar:
        for error in _run_jobs(jobs, args.workers):
            if error is None:
                done += 1
            else:
                bad.append(error)
            bar.update()
    print(f"flow: {done} extracted, {skipped} already complete, {len(bad)} failed -> {args.out}")
    for line in bad:
        print(f"actionrec flow: bad video: {line}", file=sys.stderr)
    return 2 if bad else 0
