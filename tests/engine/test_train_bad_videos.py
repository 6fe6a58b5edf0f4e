"""Training through a dataset in which some videos cannot be read completes and reports them."""

from __future__ import annotations

from pathlib import Path

import pytest

from actionrec.cli import main
from actionrec.data.synth import generate_synthetic


def _break_videos(root: Path) -> list[Path]:
    """Damage two training videos: one cut at half its size, one replaced by text."""
    train = [line.split()[0] for line in (root / "trainlist01.txt").read_text().splitlines() if line.strip()]
    cut, text = root / train[0], root / train[-1]
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    text.write_text("this is not a video\n")
    return [cut, text]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_training_skips_and_reports_unreadable_videos(
    tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture, workers: int
) -> None:
    root = generate_synthetic(
        tmp_path / "synth",
        classes=["move_right", "move_left"],
        videos_per_class=10,
        size=32,
        num_frames=8,
        seed=0,
        workers=1,
    )
    broken = _break_videos(root)
    args = [
        "train",
        "--config",
        "r2plus1d-small_8x3_synthetic-rgb",
        "--out",
        str(tmp_path / "run"),
        f"--data.root={root}",
        "--sampling.clip_len=8",
        "--sampling.frame_interval=1",
        "--input.crop_size=32",
        "--input.short_side=32",
        "--train.epochs=1",
        "--train.batch_size=4",
        f"--train.num_workers={workers}",
        "--train.eval_every=1",
    ]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "synthetic/train: skipped 2 of 16 videos" in err
    named = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert sorted(p.name for p in broken) == sorted(Path(m.split()[2]).name for m in named)  # once each
    assert (tmp_path / "run" / "model.safetensors").is_file()
