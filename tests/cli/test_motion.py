"""`actionrec motion`: a DynamoNet's predictions as a PNG strip of the expected size; bad input exits 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import actionrec.cli as cli
from actionrec.cli.motion import strip_size
from actionrec.data.synth import write_mp4
from actionrec.models.registry import create_model
from actionrec.weights import save_weights


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("motion_cli")
    frames = np.zeros((30, 60, 64, 3), np.uint8)
    for t in range(30):  # a bright square moving right 2 px a frame
        frames[t, 20:36, 2 * t : 2 * t + 16] = (250, 180, 40)
    video = root / "square.mp4"
    write_mp4(video, frames, fps=10)
    bad = root / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    torch.manual_seed(0)
    weights = save_weights(create_model("dynamonet_small", num_classes=3), root / "model.safetensors")
    return {"video": video, "bad": bad, "weights": weights, "root": root}


def test_writes_a_strip_of_four_rows_and_one_column_per_step(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    png = files["root"] / "out" / "strip.png"
    argv = [
        "motion",
        str(files["video"]),
        "--weights",
        str(files["weights"]),
        "--out",
        str(png),
        "--scale",
        "2",
    ]
    assert cli.main(argv) == 0
    with Image.open(png) as image:
        assert image.size == strip_size(8, 48, 2) == (8 * 96 + 7 * 2, 4 * 96 + 3 * 2)
        pixels = np.asarray(image.convert("RGB"))
    assert pixels[:96, :96].max() > 200  # the square is in the first input frame
    out = capsys.readouterr().out
    assert "8 steps" in out and "L1" in out


@pytest.mark.parametrize(
    ("which", "model", "message"),
    [
        ("missing", "dynamonet_small", "no such video file"),
        ("bad", "dynamonet_small", "broken.mp4"),
        ("video", "r2plus1d_small", "not a DynamoNet"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], which: str, model: str, message: str
) -> None:
    video = files["root"] / "missing.mp4" if which == "missing" else files[which]
    assert cli.main(["motion", str(video), "--model", model, "--out", str(files["root"] / "x.png")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" not in line]
    assert len(err) == 1 and err[0].startswith("actionrec motion: error:") and message in err[0]
