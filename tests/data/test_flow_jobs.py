"""Flow jobs: folder walking, resuming, and the worker pool reporting bad videos without stopping."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from actionrec.data.flow import FlowOptions, is_complete
from actionrec.data.flow_jobs import collect_jobs, pending_jobs, run_jobs
from actionrec.errors import ActionrecError


def _write_video(path: Path, num_frames: int) -> Path:
    """The moving-square video of test_flow.py (loaded by path: the tests are not a package)."""
    spec = importlib.util.spec_from_file_location("data_flow_tests", Path(__file__).with_name("test_flow.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.write_video(path, module.moving_square(num_frames))


def test_collect_jobs_maps_folders_and_files(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    (root / "jump").mkdir(parents=True)
    (root / "jump" / "a.mp4").write_bytes(b"")
    (root / "jump" / "notes.txt").write_bytes(b"")
    (root / "b.AVI").write_bytes(b"")
    single = tmp_path / "c.mkv"
    single.write_bytes(b"")
    out = tmp_path / "out"
    jobs, problems = collect_jobs([root, single, tmp_path / "missing"], out)
    assert jobs == [
        (root / "b.AVI", out / "b"),
        (root / "jump" / "a.mp4", out / "jump" / "a"),
        (single, out / "c"),
    ]
    assert problems == [f"{tmp_path / 'missing'}: no such file or folder"]
    (tmp_path / "b.mp4").write_bytes(b"")
    with pytest.raises(ActionrecError, match="would both write to"):
        collect_jobs([root, tmp_path / "b.mp4"], out)


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_run_jobs_reports_bad_videos_in_order_and_resume_skips_done_ones(
    tmp_path: Path, workers: int
) -> None:
    good = _write_video(tmp_path / "good.mp4", 3)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    pairs = [(broken, tmp_path / "out" / "broken"), (good, tmp_path / "out" / "good")]
    opts = FlowOptions(method="farneback", short_side=None)
    errors = list(run_jobs(pairs, opts, workers=workers))
    assert errors[1] is None and errors[0] is not None and "broken.mp4" in errors[0]
    assert is_complete(tmp_path / "out" / "good") and not (tmp_path / "out" / "broken").exists()
    assert pending_jobs(pairs) == [pairs[0]]
