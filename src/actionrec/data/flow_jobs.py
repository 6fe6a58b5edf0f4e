"""Flow extraction for many videos: which video goes to which folder, resuming, and a worker pool.

Each video's flow goes into its own folder (see :func:`actionrec.data.flow.extract_flow`); folders that
are already complete are skipped, so an interrupted run resumes where it stopped. Videos run in
``spawn``-ed worker processes, one OpenCV / torch thread each, and a video that cannot be decoded is
reported by message without stopping the others.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from actionrec.data.flow import FlowOptions, extract_flow, is_complete
from actionrec.errors import ActionrecError

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv", ".gif"}
)


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


def pending_jobs(pairs: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """The pairs whose output folder is not complete yet: what a resumed run still has to do."""
    return [(video, target) for video, target in pairs if not is_complete(target)]


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


def run_jobs(pairs: list[tuple[Path, Path]], opts: FlowOptions, *, workers: int = 1) -> Iterator[str | None]:
    """Extract every ``(video, folder)`` pair, yielding per pair, in order, ``None`` or its error message.

    With ``workers > 1`` the videos run in a pool of ``spawn``-ed processes (never a fork of a process
    that may hold torch / OpenMP threads).
    """
    jobs = [(video, target, opts) for video, target in pairs]
    if workers <= 1:
        yield from map(_extract_one, jobs)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
        yield from pool.map(_extract_one, jobs)
