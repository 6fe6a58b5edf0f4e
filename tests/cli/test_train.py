"""``actionrec train``: help, config errors as one line with exit code 2, and a real tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actionrec.cli import main


def test_help_shows_an_example(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "actionrec train --config" in out and "--optim.lr" in out


@pytest.mark.parametrize(
    "args",
    [
        ["--config", "no-such-recipe"],
        ["--config", "r2plus1d-small_8x3_synthetic-rgb", "--optim.lr=-1"],
        ["--config", "r2plus1d-small_8x3_synthetic-rgb", "--set", "optim.lrr=1"],
        [],  # neither --config nor a run to resume
    ],
)
def test_bad_config_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture, args: list) -> None:
    assert main(["train", "--out", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("actionrec train: error:")
    assert not (tmp_path / "run").exists()  # nothing was started


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as e:
        main(["train", "--out", str(tmp_path), "--optim.lrr=1"])
    assert e.value.code == 2


@pytest.mark.slow
def test_trains_the_small_model_on_synthetic_videos(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from actionrec.data.synth import generate_synthetic

    root = generate_synthetic(
        tmp_path / "synth",
        classes=["move_right", "move_left"],
        videos_per_class=4,
        size=32,
        num_frames=8,
        seed=0,
        workers=1,
    )
    out = tmp_path / "run"
    args = [
        "train",
        "--config",
        "r2plus1d-small_8x3_synthetic-rgb",
        "--out",
        str(out),
        "--json",
        f"--data.root={root}",
        "--sampling.clip_len=8",
        "--sampling.frame_interval=1",
        "--input.crop_size=32",
        "--input.short_side=32",
        "--train.epochs=1",
        "--train.batch_size=4",
        "--train.num_workers=0",
        "--train.eval_every=1",
    ]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs_completed"] == 1 and Path(summary["weights"]).is_file()
    assert main(["train", "--out", str(out), "--resume", "--json"]) == 0  # already finished: exports again
