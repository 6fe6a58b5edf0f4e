"""``actionrec flow``: resumable extraction end to end, bad videos reported with exit code 2."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from actionrec.cli import main
from actionrec.data.flow import is_complete


def write_video(path: Path, num_frames: int) -> Path:
    """A tiny h264 video of a bright bar sliding right 2 px per frame."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for t in range(num_frames):
            frame = np.full((32, 32, 3), 60, dtype=np.uint8)
            frame[8:24, 4 + 2 * t : 12 + 2 * t] = 200
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_help_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["flow", "--help"])
    assert exit_info.value.code == 0
    assert "actionrec flow data/ucf101/videos --out" in capsys.readouterr().out


def test_flow_command_extracts_skips_and_reports_bad_videos(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    videos = tmp_path / "videos"
    (videos / "walk").mkdir(parents=True)
    write_video(videos / "walk" / "one.mp4", 3)
    write_video(videos / "two.mp4", 4)
    (videos / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    out = tmp_path / "flow"
    args = ["flow", str(videos), "--out", str(out), "--method", "farneback", "--short-side", "0"]

    assert main(args) == 2
    captured = capsys.readouterr()
    assert "2 extracted, 0 already complete, 1 failed" in captured.out
    assert "bad video:" in captured.err and "broken.mp4" in captured.err
    assert is_complete(out / "walk" / "one") and is_complete(out / "two")
    assert len(list((out / "two").glob("flow_x_*.jpg"))) == 3
    assert not (out / "broken").exists()

    (videos / "broken.mp4").unlink()
    assert main(args) == 0
    assert "0 extracted, 2 already complete, 0 failed" in capsys.readouterr().out


def test_missing_input_and_bad_option_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flow", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["flow", str(tmp_path), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err
