"""Optical-flow speed for one worker: extraction per method (frame pairs per second), and reading flow
stored by ``actionrec flow`` against computing it on the fly (clips per second)."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from actionrec.data.decode import open_video
from actionrec.data.flow import FlowOptions, compute_flow
from actionrec.data.transforms import resize_clip

METHODS = ("farneback", "tvl1", "raft_small")
SOURCES = {"stored": "stored", "farneback": "farneback on the fly"}  # FlowSource method -> row name


def bench_flow(
    path: str | Path, *, methods: tuple[str, ...] = METHODS, pairs: int = 4, short_side: int = 256
) -> list[dict[str, Any]]:
    """Flow of ``pairs`` consecutive frame pairs of ``path`` at ``short_side`` for each method, one thread.

    RAFT-small runs with random weights unless the user has some (speed does not depend on them).
    """
    with open_video(path) as video:
        frames = video.get_frames(np.arange(min(pairs + 1, video.metadata.num_frames)))
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2)  # (T, H, W, C) -> (T, C, H, W)
    h, w = clip.shape[-2:]
    scale = short_side / min(h, w)
    clip = resize_clip(clip, (round(h * scale), round(w * scale)))
    frames = clip.permute(0, 2, 3, 1).contiguous().numpy()  # (T, C, H, W) -> (T, H, W, C)
    rows = []
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)  # one worker's speed: TV-L1 / Farneback run in OpenCV, RAFT in torch
    cv2.setNumThreads(1)
    try:
        for method in methods:
            compute_flow(frames[:2], method=method)  # warm-up (model build, OpenCV init)
            t0 = time.perf_counter()
            compute_flow(frames, method=method)
            seconds = time.perf_counter() - t0
            rows.append(
                {
                    "method": method,
                    "size": f"{frames.shape[1]}x{frames.shape[2]}",
                    "pairs": len(frames) - 1,
                    "pairs_per_s": (len(frames) - 1) / seconds,
                }
            )
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
    return rows


def bench_flow_source(
    path: str | Path,
    *,
    options: FlowOptions | None = None,
    clips: int = 8,
    clip_len: int = 16,
    repeats: int = 3,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Flow clips/s through :class:`~actionrec.data.sources.SampleSource`, stored by ``actionrec flow``
    against Farneback on the fly, one thread (one DataLoader worker's speed).

    The video's flow is extracted once into a temporary folder the way ``actionrec flow`` does
    (``collect_jobs`` / ``run_jobs``; ``options`` default to its defaults with Farneback). Flow on the
    fly is computed at the video's own size, so when ``options.short_side`` is not the video's short
    side both sources read a copy re-encoded to it (``actionrec prepare``, keyframe every 16 frames):
    both then return clips of one shape. ``clips`` dense clips of ``clip_len`` consecutive frames
    (``seed``) are read by each source in alternation, ``repeats`` times after one warm-up; every clip
    opens its own source from cold, as the dataset does per sample.

    One row per source: ``size`` and ``frames`` of what it returned, clips/s, flow frames/s,
    ``stored_speedup`` (stored's rate over the row's), for stored ``extract_s`` (the one-time
    extraction of the whole video), and for the other ``mean_abs_diff``, its mean absolute difference
    from the stored clips in quantisation levels (JPEG storage is lossy; the quantisation is the same).
    """
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        with tempfile.TemporaryDirectory(prefix="actionrec-flow-bench-") as tmp:
            opts = options or FlowOptions(method="farneback")
            return _flow_source_rows(Path(path), Path(tmp), opts, clips, clip_len, repeats, seed)
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)


def _flow_source_rows(
    video: Path, tmp: Path, opts: FlowOptions, clips: int, clip_len: int, repeats: int, seed: int
) -> list[dict[str, Any]]:
    from actionrec.bench.timing import interleaved
    from actionrec.data import decode
    from actionrec.data.flow_jobs import collect_jobs, run_jobs
    from actionrec.data.prepare import PrepareConfig, prepare_video
    from actionrec.data.sampling import SamplingConfig, sample_indices
    from actionrec.data.sources import FlowSource, SampleSource
    from actionrec.errors import ActionrecError

    with open_video(video, opts.backend) as reader:
        meta = reader.metadata
    if opts.short_side and min(meta.width, meta.height) != opts.short_side:
        copy = tmp / "video" / f"{video.stem}.mp4"
        prepare_video(video, copy, PrepareConfig(short_side=opts.short_side, mode="reencode"))
        video = copy
    opts = dataclasses.replace(opts, short_side=None)  # the video has the size wanted
    jobs, problems = collect_jobs([video], tmp / "flow")
    t0 = time.perf_counter()
    problems += [e for e in run_jobs(jobs, opts) if e is not None]
    extract_s = time.perf_counter() - t0
    if problems:
        raise ActionrecError("; ".join(problems))

    with open_video(video, opts.backend) as reader:
        n, fps = reader.metadata.num_frames, reader.metadata.fps
    cfg, rng = SamplingConfig(mode="dense", clip_len=clip_len), np.random.default_rng(seed)
    draws = [sample_indices(cfg, num_frames=n, fps=fps, train=True, rng=rng) for _ in range(clips)]
    sources = {
        method: FlowSource(str(tmp / "flow") if method == "stored" else None, method, opts.bound)
        for method in SOURCES
    }

    def reader_of(flow: FlowSource) -> Any:
        def read() -> list[np.ndarray]:
            out = []
            for indices in draws:
                decode._index_cache.clear()  # a cold open, as for a video not read since the last epoch
                with SampleSource(video, streams=("flow",), flow=flow, backend=opts.backend) as source:
                    out.append(source.read(indices)["flow"])
            return out

        return read

    readers = [reader_of(flow) for flow in sources.values()]
    first = {method: read() for method, read in zip(sources, readers)}  # the warm-up, kept to compare
    timings = interleaved(readers, repeats=repeats, warmup=0)
    stored_rate = timings[0].rate(clips)
    rows = []
    for (method, got), timing in zip(first.items(), timings):
        frames = sum(int(np.prod(c.shape[:-3])) for c in got)
        same_shape = all(a.shape == b.shape for a, b in zip(got, first["stored"]))
        diff = None
        if method != "stored" and same_shape:
            diff = float(
                np.mean([np.abs(a.astype(np.int16) - b).mean() for a, b in zip(got, first["stored"])])
            )
        rows.append(
            {
                "source": SOURCES[method],
                "size": "x".join(map(str, got[0].shape[-3:-1])),
                "clips": len(got),
                "frames": frames,
                "clips_per_s": timing.rate(len(got)),
                "frames_per_s": timing.rate(frames),
                "stored_speedup": stored_rate / timing.rate(len(got)),
                "extract_s": extract_s if method == "stored" else None,
                "mean_abs_diff": diff,
            }
        )
    return rows
