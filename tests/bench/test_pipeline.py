"""The pipeline benchmark's arithmetic (exact) and a smoke run of each measurement (no timing asserted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from actionrec.bench.pipeline import UnitCosts, bench_file, bench_prepared, frames_to_decode, limit_seconds
from actionrec.data.synth import make_clip, write_mp4


def test_frames_to_decode_counts_each_frame_once_from_the_keyframe_before() -> None:
    keys = [0, 10, 20]
    assert frames_to_decode(np.array([5]), keys) == 6  # 0..5
    assert frames_to_decode(np.array([12, 15]), keys) == 6  # 10..15, decoded through once
    assert frames_to_decode(np.array([5, 12]), keys) == 6 + 3  # 0..5, then seek: 10..12
    assert frames_to_decode(np.array([8, 9, 8]), keys) == 10  # repeats cost nothing
    assert frames_to_decode(np.array([25, 3]), keys) == 4 + 6  # any order
    costs = UnitCosts(num_frames=30, decode_s=0.001, convert_s=0.01)
    assert limit_seconds(np.array([5, 12]), keys, costs) == pytest.approx(9 * 0.001 + 2 * 0.01)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "move_right.mp4"
    write_mp4(path, make_clip("move_right", seed=1).frames, fps=16, gop=8)  # keyframes at 0, 8, 16, 24
    return path


def test_bench_file_and_prepared_report_every_figure(video: Path, tmp_path: Path) -> None:
    row = bench_file(video, "tsn8", repeats=1).to_dict()
    assert row["wanted"] == 8 and row["frames"] >= 24 and row["keyframes"] >= 3
    for key in ("ours_clips_per_s", "naive_clips_per_s", "limit_clips_per_s", "ours_over_limit"):
        assert row[key] > 0
    prepared = bench_prepared(video, "dense16x2", tmp_path, repeats=1)
    assert {p.name for p in tmp_path.iterdir()} == {f"{video.stem}_reencode.mp4", f"{video.stem}_frames"}
    assert (
        min(prepared[k] for k in ("original_clips_per_s", "reencode_clips_per_s", "frames_clips_per_s")) > 0
    )
    assert prepared["frames_speedup"] == prepared["frames_clips_per_s"] / prepared["original_clips_per_s"]
