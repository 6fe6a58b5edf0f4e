"""Optical-flow extraction speed: frame pairs per second for one worker, per method."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from actionrec.data.decode import open_video
from actionrec.data.flow import compute_flow
from actionrec.data.transforms import resize_clip

METHODS = ("farneback", "tvl1", "raft_small")


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
