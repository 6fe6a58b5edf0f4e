"""`actionrec predict`: our weights with a card, text and JSON output, bad videos, timeline, label errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from actionrec.cli import main
from actionrec.data.synth import write_mp4
from actionrec.models.registry import create_model
from actionrec.weights import save_weights

CLASSES = ["spin", "slide", "hop"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict_cli")
    rng = np.random.default_rng(0)
    video = root / "clip.mp4"
    write_mp4(video, rng.integers(0, 255, (20, 64, 80, 3), dtype=np.uint8), fps=10)
    bad = root / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    torch.manual_seed(0)
    model = create_model("r2plus1d_small", num_classes=len(CLASSES))
    weights = save_weights(model, root / "model.safetensors", labels=CLASSES)
    labels = root / "labels.txt"
    labels.write_text("\n".join(CLASSES) + "\n")
    return {"video": video, "bad": bad, "weights": weights, "labels": labels, "root": root}


@pytest.mark.slow
def test_card_weights_json_and_bad_video(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    png = files["root"] / "timeline.png"
    argv = [
        "predict",
        str(files["video"]),
        str(files["bad"]),
        "--weights",
        str(files["weights"]),
        "--json",
        "--topk",
        "2",
        "--timeline",
        str(png),
        "--clips",
        "2",
        "--precision",
        "fp32",
    ]
    assert main(argv) == 2  # one video was bad
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 1  # the good video, as one JSON object per line
    record = json.loads(lines[0])
    assert record["video"] == str(files["video"])
    assert len(record["logits"]) == 3 and len(record["top"]) == 2
    assert {t["label"] for t in record["top"]} <= set(CLASSES)  # labels came from the weights' card
    assert record["top"][0]["score"] >= record["top"][1]["score"]
    err_lines = [line for line in err.splitlines() if "error" in line]
    assert len(err_lines) == 1 and "broken.mp4" in err_lines[0] and "Traceback" not in err
    assert (files["root"] / "timeline_clip.png").read_bytes()[:4] == b"\x89PNG"  # per-video name


def test_text_output_with_model_and_label_file(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "predict",
        str(files["video"]),
        "--model",
        "r2plus1d_small",
        "--weights",
        str(files["weights"]),
        "--labels",
        str(files["labels"]),
        "--topk",
        "3",
        "--clips",
        "1",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(files["video"])
    assert [line.split()[0] for line in out[1:]] == ["1.", "2.", "3."]
    assert sorted(line.split()[1] for line in out[1:]) == sorted(CLASSES)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "--model is required"),
        (["--model", "r2plus1d_small", "--labels", "kinetics1000"], "not one of the known names"),
        (["--model", "no_such_model"], "unknown model"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["predict", str(files["video"]), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_labels_that_do_not_fit_the_weights(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "k400.txt"
    labels.write_text("".join(f"class {i}\n" for i in range(400)))
    argv = [
        "predict",
        str(files["video"]),
        "--model",
        "r2plus1d_small",
        "--weights",
        str(files["weights"]),
        "--labels",
        str(labels),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "400 labels for a model with 3 classes" in err[0]


def test_weights_of_a_model_built_with_overrides(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The card's builder arguments (a recipe's model.overrides) rebuild the same network: a 4-block
    TimeSformer on 32-px frames, not the registered default."""
    shape = {"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 48, "num_heads": 2}
    model = create_model("timesformer_tiny_divided", num_classes=len(CLASSES), **shape)
    weights = save_weights(model, files["root"] / "timesformer.safetensors", labels=CLASSES)
    argv = ["predict", str(files["video"]), "--weights", str(weights), "--json", "--precision", "fp32"]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert len(record["logits"]) == len(CLASSES)


def test_models_with_boxes_or_future_frames(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A region-graph model reads the video's box file (beside it, or under --boxes-root); a model
    trained with future frames (DynamoNet) predicts from its clip alone."""
    from actionrec.data.boxes import write_boxes

    video = tmp_path / "clip.mp4"
    video.write_bytes(files["video"].read_bytes())
    torch.manual_seed(0)
    strg = save_weights(
        create_model("strg_small", num_classes=3, zero_init_graph=False),
        tmp_path / "strg.safetensors",
        labels=CLASSES,
    )
    argv = ["predict", str(video), "--weights", str(strg), "--json", "--clips", "2"]
    assert main(argv) == 2  # no box file: one line, exit 2
    assert "no box file" in capsys.readouterr().err
    rows = [[f, 10 + f, 12, 40 + f, 44, 0.9] for f in range(0, 20, 2)]  # every other frame has a box
    write_boxes(tmp_path / "boxes" / "clip.boxes.json", rows, width=80, height=64, num_frames=20)
    assert main([*argv, "--boxes-root", str(tmp_path / "boxes")]) == 0
    with_boxes = json.loads(capsys.readouterr().out)["logits"]
    write_boxes(video.with_suffix(".boxes.json"), rows[:1], width=80, height=64, num_frames=20)
    assert main(argv) == 0  # beside the video: other boxes, other logits
    assert json.loads(capsys.readouterr().out)["logits"] != with_boxes
    dyn = save_weights(
        create_model("dynamonet_small", num_classes=3), tmp_path / "dyn.safetensors", labels=CLASSES
    )
    assert main(["predict", str(video), "--weights", str(dyn), "--json", "--clips", "2"]) == 0
    assert len(json.loads(capsys.readouterr().out)["logits"]) == 3
