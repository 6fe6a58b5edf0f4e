"""``prepare``: short-GOP re-encodes and JPEG frame folders of real videos, resumable and parallel."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from actionrec.cli import main
from actionrec.data.decode import decode_all, keyframe_positions, open_video
from actionrec.data.prepare import PrepareConfig, find_videos, prepare_tree, target_size
from actionrec.errors import ConfigError

SOURCES = {"a.mp4": "carphone.mp4", "sub/b.avi": "eye_makeup.avi", "sub/r.mov": "rotation_90.mov"}


@pytest.fixture
def src(videos_dir: Path, tmp_path: Path) -> Path:
    """A small tree of links to shared videos, plus one that breaks at frame 28."""
    root = tmp_path / "src"
    for rel, name in {**SOURCES, "bad.mp4": "corrupted.mp4"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(videos_dir / name)
    (root / "notes.txt").write_text("not a video")
    return root


def _close_to_source(source: Path, prepared: Path, frame: int) -> float:
    """Mean abs difference between a prepared frame and the source frame resized the same way."""
    with open_video(prepared) as video:
        got = video.get_frames([frame])[0]
    ref = cv2.resize(decode_all(source)[frame], (got.shape[1], got.shape[0]), interpolation=cv2.INTER_AREA)
    return float(np.abs(got.astype(np.int16) - ref).mean())


def test_target_size_keeps_aspect_and_even_sides() -> None:
    assert target_size(340, 256, 256) == (340, 256)
    assert target_size(176, 144, 64) == (78, 64)
    assert target_size(320, 568, 64) == (64, 114)
    assert target_size(175, 143, 0) == (174, 142)


def test_reencode_tree(src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    found = [p.relative_to(src).as_posix() for p in find_videos(src)]
    assert found == ["a.mp4", "bad.mp4", "sub/b.avi", "sub/r.mov"]
    summary = prepare_tree(src, dst, PrepareConfig(short_side=64, gop=8), workers=2, progress=False)
    assert sorted(summary.done) == ["a.mp4", "sub/b.avi", "sub/r.mov"] and summary.skipped == []
    assert [rel for rel, _ in summary.failed] == ["bad.mp4"] and "decoding failed" in summary.failed[0][1]
    written = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*"))
    assert written == ["a.mp4", "sub", "sub/b.mp4", "sub/r.mp4"]  # bad.mp4 broke midway: no file, no partial
    for rel, name in SOURCES.items():
        out = dst / Path(rel).with_suffix(".mp4")
        with open_video(src / rel) as source, open_video(out) as video:
            n = source.metadata.num_frames
            assert video.metadata.num_frames == n and video.metadata.codec == "h264"
            assert video.metadata.fps == pytest.approx(source.metadata.fps)
            assert min(video.metadata.width, video.metadata.height) == 64
        assert keyframe_positions(out) == list(range(0, n, 8)), name
    upright = open_video(dst / "sub/r.mp4").metadata
    assert (upright.width, upright.height, upright.rotation) == (64, 114, 0)
    assert _close_to_source(src / "a.mp4", dst / "a.mp4", 100) < 4
    assert _close_to_source(src / "sub/r.mov", dst / "sub/r.mp4", 2) < 4  # stored upright


def test_resume_skips_complete_outputs_and_redoes_partial_ones(src: Path, tmp_path: Path) -> None:
    dst, cfg = tmp_path / "dst", PrepareConfig(short_side=48, gop=4)
    (src / "bad.mp4").unlink()
    assert len(prepare_tree(src, dst, cfg, progress=False).done) == 3
    (dst / "a.mp4").unlink()
    (dst / "a.partial.mp4").write_bytes(b"half an mp4 left by a killed run")
    summary = prepare_tree(src, dst, cfg, workers=2, progress=False)
    assert summary.done == ["a.mp4"] and sorted(summary.skipped) == ["sub/b.avi", "sub/r.mov"]
    assert not (dst / "a.partial.mp4").exists() and open_video(dst / "a.mp4").metadata.num_frames == 120


def test_extract_frames(src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "frames"
    cfg = PrepareConfig(short_side=64, mode="frames", jpeg_quality=95)
    summary = prepare_tree(src, dst, cfg, workers=1, progress=False)
    assert sorted(summary.done) == ["a.mp4", "sub/b.avi", "sub/r.mov"] and not (dst / "bad").exists()
    folder = dst / "sub" / "b"
    assert sorted(p.name for p in folder.iterdir())[:2] == ["img_00001.jpg", "img_00002.jpg"]
    assert json.loads((folder / "meta.json").read_text())["num_frames"] == 164
    video = open_video(folder)
    assert (video.metadata.backend, video.metadata.num_frames, video.metadata.fps) == ("frames", 164, 25.0)
    assert (video.metadata.width, video.metadata.height) == (84, 64)  # even sides in both modes
    assert _close_to_source(src / "sub/b.avi", folder, 80) < 4


def test_bad_configs_extensions_and_colliding_outputs(src: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mode"):
        PrepareConfig(mode="transcode")
    with pytest.raises(ConfigError, match="gop"):
        PrepareConfig(gop=0)
    with pytest.raises(ConfigError, match="inside the source"):
        prepare_tree(src, src / "out", PrepareConfig(), progress=False)
    (src / "bad.mp4").unlink()
    (src / "sub" / "b.mp4").symlink_to(src / "sub" / "r.mov")  # b.avi and b.mp4 both become b.mp4
    summary = prepare_tree(src, tmp_path / "dst", PrepareConfig(short_side=32, mode="frames"), progress=False)
    assert sorted(summary.done) == ["a.mp4", "sub/b.avi", "sub/r.mov"]
    assert [rel for rel, _ in summary.failed] == ["sub/b.mp4"] and "already taken" in summary.failed[0][1]
    only_mp4 = PrepareConfig(short_side=32, mode="frames", extensions=("MP4",))
    assert [p.name for p in find_videos(src, only_mp4.extensions)] == ["a.mp4", "b.mp4"]


def test_prepare_cli(src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["prepare", str(src), str(tmp_path / "out"), "--short-side", "32", "--gop", "4", "--no-progress"]
    assert main([*args, "--workers", "2"]) == 2
    captured = capsys.readouterr()
    assert "done 3, skipped 0, failed 1" in captured.out
    assert captured.err.count("\n") == 1 and "bad.mp4: decoding failed" in captured.err
    (src / "bad.mp4").unlink()
    assert main([*args, "--workers", "1"]) == 0
    assert "done 0, skipped 3, failed 0" in capsys.readouterr().out
