"""``actionrec probe``: metadata table / JSON, bad videos as one stderr line each, exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actionrec.cli import main


def test_probe_prints_a_table(videos_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["probe", str(videos_dir / "arm_wrestling.mp4"), str(videos_dir / "rotation_90.mov")])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert out[0].split() == ["path", "backend", "codec", "size", "fps", "frames", "duration", "rotation"]
    assert out[1].split()[1:] == ["pyav", "h264", "340x256", "28.000", "280", "10.00s", "0"]
    assert out[2].split()[3] == "320x568" and out[2].split()[-1] == "90"


def test_probe_json_with_backend(videos_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["probe", str(videos_dir / "eye_makeup.avi"), "--json", "--backend", "opencv"])
    (meta,) = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert meta == {
        "path": str(videos_dir / "eye_makeup.avi"), "fps": 25.0, "num_frames": 164, "duration": 6.56,
        "width": 320, "height": 240, "rotation": 0, "codec": "fmp4", "backend": "opencv",
    }  # fmt: skip


def test_probe_reports_bad_videos_on_stderr(
    videos_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    good = str(videos_dir / "carphone.mp4")
    args = ["probe", good, str(tmp_path / "missing.mp4"), str(text), str(videos_dir / "corrupted.mp4")]
    rc = main([*args, "--json", "--verify"])
    captured = capsys.readouterr()
    assert rc == 2
    assert [m["path"] for m in json.loads(captured.out)] == [good]
    errors = captured.err.strip().splitlines()
    assert len(errors) == 3 and "Traceback" not in captured.err
    assert "missing.mp4: file not found" in errors[0] and "notes.mp4: not a readable video" in errors[1]
    assert "corrupted.mp4: decoding failed" in errors[2]


def test_probe_decodes_the_last_frame(videos_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # corrupted.mp4 opens (its container and first frame are fine) and breaks at frame 28 of 50
    assert main(["probe", str(videos_dir / "corrupted.mp4"), str(videos_dir / "carphone.mp4")]) == 2
    captured = capsys.readouterr()
    assert "carphone.mp4" in captured.out and "corrupted.mp4" not in captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "corrupted.mp4" in err[0] and "decoding failed" in err[0]


def test_probe_bad_backend_is_a_usage_error(videos_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["probe", str(videos_dir / "carphone.mp4"), "--backend", "decord"])
    assert info.value.code == 2 and "invalid choice" in capsys.readouterr().err
