"""``actionrec features``: per-clip and per-video outputs, resuming, bad videos, any model, end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from actionrec.cli import main
from actionrec.data.synth import write_mp4
from actionrec.engine.features import expand_inputs

SMALL = ["--crop-size", "16", "--short-side", "18", "--device", "cpu"]  # cheap, any model runs at 16x16


def _write_mp4(path: Path, num_frames: int, *, size: tuple[int, int] = (48, 64), fps: int = 25) -> Path:
    frames = np.random.default_rng(num_frames).integers(0, 256, (num_frames, *size, 3), dtype=np.uint8)
    write_mp4(path, frames, fps=fps)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    bad = root / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 4)
    return {
        "long": _write_mp4(root / "long.mp4", 40),
        "short": _write_mp4(root / "short.mp4", 12),
        "bad": bad,
    }


def test_c3d_fc6_per_clip_and_average(
    videos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "feats"
    code = main(
        [
            "features",
            str(videos["long"]),
            str(videos["short"]),
            "--model",
            "c3d",
            "--layer",
            "fc6",
            "--out",
            str(out),
            "--clip-len",
            "16",
            "--stride",
            "16",
            "--batch-size",
            "2",
            *SMALL,
        ]
    )
    assert code == 0, capsys.readouterr().err
    clips = np.load(out / "long_clips.npy")
    mean = np.load(out / "long.npy")
    assert clips.shape == (2, 4096) and clips.dtype == np.float32
    np.testing.assert_allclose(mean, clips.mean(axis=0), rtol=1e-6)
    assert (clips >= 0).all()  # fc6 after ReLU
    assert np.load(out / "short_clips.npy").shape == (1, 4096)
    assert not list(out.glob(".*tmp"))  # no temporary files left behind


def test_resume_skips_complete_videos_only(
    videos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "feats"
    args = [
        "features",
        str(videos["long"]),
        str(videos["short"]),
        "--model",
        "c3d",
        "--layer",
        "pool5",
        "--out",
        str(out),
        *SMALL,
    ]
    assert main(args) == 0
    stamp = (out / "long_clips.npy").stat().st_mtime_ns
    (out / "short.npy").unlink()  # an interrupted run: the per-video file was never renamed into place
    capsys.readouterr()
    assert main(args) == 0
    assert "1 written, 1 already there, 0 failed" in capsys.readouterr().out
    assert (out / "long_clips.npy").stat().st_mtime_ns == stamp
    assert np.load(out / "short.npy").shape == (8192,)


def test_bad_video_reported_and_others_processed(
    videos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "feats"
    missing = videos["long"].parent / "missing.mp4"
    code = main(
        [
            "features",
            str(videos["bad"]),
            str(missing),
            str(videos["short"]),
            "--model",
            "c3d",
            "--out",
            str(out),
            *SMALL,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "broken.mp4" in err and "missing.mp4" in err
    assert (out / "short.npy").is_file() and not (out / "broken.npy").exists()


def test_any_model_through_pre_logits_and_list_file(videos: dict[str, Path], tmp_path: Path) -> None:
    listing = videos["long"].parent / "list.txt"
    listing.write_text("long.mp4 3\n\n# comment\nshort.mp4 1\n")
    assert expand_inputs([str(listing)]) == [videos["long"], videos["short"]]
    listing.write_text("short.mp4\n")
    out = tmp_path / "feats"
    options = ["--model", "fast_only_r50", "--clip-len", "8", "--frame-interval", "1", "--stride", "4"]
    assert main(["features", str(listing), *options, "--out", str(out), *SMALL]) == 0
    assert np.load(out / "short_clips.npy").shape == (2, 256)  # 12 frames: starts 0 and 4; pre-logits width


def test_unknown_layer_is_a_clean_error(
    videos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(
        [
            "features",
            str(videos["short"]),
            "--model",
            "fast_only_r50",
            "--layer",
            "fc6",
            "--out",
            str(tmp_path),
            *SMALL,
        ]
    )
    assert code == 2
    assert "fc6" in capsys.readouterr().err


def test_flow_model_needs_a_flow_root_or_farneback(
    videos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ["features", str(videos["short"]), "--model", "i3d_inception_v1_flow", "--out", str(tmp_path)]
    assert main([*args, "--flow-method", "stored", "--device", "cpu"]) == 2
    assert "--flow-root" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before any video
