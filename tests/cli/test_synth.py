"""``actionrec synth`` end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from actionrec.cli import main


def test_synth_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench"
    code = main(
        [
            "synth",
            "--out",
            str(out),
            "--classes",
            "move_left,move_right",
            "--videos-per-class",
            "2",
            "--size",
            "16",
            "--frames",
            "4",
            "--workers",
            "1",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "1 move_left  (pair: horizontal)" in printed and f"wrote 4 videos to {out}" in printed
    assert len(list(out.glob("*/*.mp4"))) == 4 and (out / "trainlist01.txt").read_text().count("\n") == 2


def test_synth_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "--out", str(tmp_path), "--classes", "move_left,dance"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("actionrec synth: error: unknown synthetic classes ['dance']") and "\n" not in err


def test_synth_help_shows_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    assert "actionrec synth --out data/synthetic" in capsys.readouterr().out
