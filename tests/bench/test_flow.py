"""Stored flow vs flow on the fly: a smoke run of the measurement on a tiny video (no speed asserted)."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import torch

from actionrec.bench.flow import bench_flow_source
from actionrec.data.flow import FlowOptions
from actionrec.data.synth import make_clip, write_mp4


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench_flow") / "move_right.mp4"
    write_mp4(path, make_clip("move_right", seed=1).frames, fps=16, gop=8)  # 48x48, 24-32 frames
    return path


@pytest.mark.parametrize(("short_side", "size"), [(None, "48x48"), (32, "32x32")])  # as is; re-encoded
def test_stored_and_on_the_fly_read_the_same_clips(video: Path, short_side: int | None, size: str) -> None:
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    options = FlowOptions(method="farneback", short_side=short_side)
    rows = bench_flow_source(video, options=options, clips=3, clip_len=8, repeats=1)
    assert (torch.get_num_threads(), cv2.getNumThreads()) == (threads, cv_threads)  # restored
    stored, live = rows
    assert (stored["source"], live["source"]) == ("stored", "farneback on the fly")
    for row in rows:
        assert row["size"] == size  # both sources return clips of one shape
        assert (row["clips"], row["frames"]) == (3, 3 * 8)
        assert row["clips_per_s"] > 0
        assert row["frames_per_s"] == pytest.approx(8 * row["clips_per_s"])
    assert stored["stored_speedup"] == 1.0
    assert live["stored_speedup"] == pytest.approx(stored["clips_per_s"] / live["clips_per_s"])
    assert stored["extract_s"] > 0 and live["extract_s"] is None
    # same Farneback flow, same quantisation; only the JPEG storage (quality 95) differs
    assert stored["mean_abs_diff"] is None
    assert live["mean_abs_diff"] < 0.5
