"""`actionrec test`: multi-view evaluation of saved weights on a recipe's test split."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from actionrec.cli import main
from actionrec.data.synth import generate_synthetic
from actionrec.models.registry import create_model
from actionrec.weights import save_weights

CLASSES = ["move_right", "move_left", "stay_still"]
RECIPE = "r2plus1d-small_8x3_synthetic-rgb"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("test_cli")
    data = generate_synthetic(
        root / "synthetic", classes=CLASSES, videos_per_class=3, num_frames=24, workers=1
    )
    torch.manual_seed(0)
    model = create_model("r2plus1d_small", num_classes=len(CLASSES))
    weights = save_weights(model, root / "model.safetensors", labels=CLASSES)
    torch.manual_seed(1)
    other = create_model("r2plus1d_small", num_classes=len(CLASSES))
    weights2 = save_weights(other, root / "other" / "model.safetensors", labels=CLASSES)
    return {"root": root, "data": data, "weights": weights, "weights2": weights2}


def test_clips_times_crops_views(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = setup["root"] / "out"
    argv = [
        "test",
        "--config",
        RECIPE,
        "--weights",
        str(setup["weights"]),
        "--out",
        str(out),
        "--clips",
        "2",
        "--crops",
        "3",
        f"--data.root={setup['data']}",
        "--train.num_workers=0",
        "--precision",
        "fp32",
    ]
    assert main(argv) == 0
    assert "top-1" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["num_views"] == 6 and (results["num_clips"], results["num_crops"]) == (2, 3)
    assert results["num_videos"] == 3  # one test video per class (the synthetic 80/20 split)
    assert set(results["per_class"]) == set(CLASSES)
    assert 0.0 <= results["top1"] <= results["top5"] == 1.0  # 3 classes: top-5 covers them all
    rows = list(csv.reader((out / "predictions.csv").open()))
    assert len(rows) == 4 and rows[0] == ["path", "label", "prediction", "score"]
    assert {"confusion.png", "per_class.png", "confusion.csv", "per_class.csv", "config.yaml"} <= {
        p.name for p in out.iterdir()
    }
    assert "data:\n  dataset: synthetic\n  root: " + str(setup["data"]) in (out / "config.yaml").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--optim.nonsense=3"], "optim.nonsense: unknown key"),
        (["--clips", "0"], "--clips"),
        (["--config", "no_such_recipe"], "no such config file"),
        (["--fusion", "svm"], "fuses two or more --weights files"),
        (["--segments", "25"], "segments: 25 given for a model sampled by 'dense'"),
    ],
)
def test_bad_input_is_one_line(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = [
        "test",
        "--config",
        RECIPE,
        "--weights",
        str(setup["weights"]),
        "--out",
        str(setup["root"] / "bad"),
        f"--data.root={setup['data']}",
        *extra,
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_crops_must_be_1_3_or_10(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["test", "--config", RECIPE, "--weights", str(setup["weights"]), "--out", "x", "--crops", "5"])
    assert exit_info.value.code == 2
    assert "--crops" in capsys.readouterr().err


def test_unreadable_test_videos_are_left_out_not_replaced(
    setup: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import shutil

    data = Path(shutil.copytree(setup["data"], tmp_path / "data"))
    test_list = (data / "testlist01.txt").read_text().split()
    broken = data / test_list[0]
    broken.write_text("not a video")
    out = tmp_path / "out"
    argv = ["test", "--config", RECIPE, "--weights", str(setup["weights"]), "--out", str(out)]
    argv += [f"--data.root={data}", "--train.num_workers=0", "--precision", "fp32"]
    assert main(argv) == 2
    assert "1 of 3 videos missing or unreadable" in capsys.readouterr().err
    assert [r.getMessage() for r in caplog.records if str(broken) in r.getMessage()]  # one line per video
    results = json.loads((out / "results.json").read_text())
    assert results["num_videos"] == 2 and results["failures"] == 1
    scored = [row[0] for row in csv.reader((out / "predictions.csv").open())][1:]
    assert len(scored) == len(set(scored)) == 2 and str(broken) not in scored


def _fusion_argv(setup: dict[str, Path], out: Path, *extra: str) -> list[str]:
    weights = [str(setup["weights"]), str(setup["weights2"])]
    return ["test", "--config", RECIPE, "--weights", *weights, "--out", str(out), *extra]


def test_two_models_are_fused(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = setup["root"] / "fusion"
    data = [f"--data.root={setup['data']}", "--train.num_workers=0", "--precision", "fp32"]
    assert main(_fusion_argv(setup, out, "--fusion-weights", "1", "1.5", *data)) == 0
    printed = capsys.readouterr().out
    assert f"{setup['weights']}: top-1" in printed and f"{setup['weights2']}: top-1" in printed
    assert "fusion (1 : 1.5): top-1" in printed
    fused = json.loads((out / "results.json").read_text())
    assert fused["fusion_weights"] == [1.0, 1.5] and fused["num_videos"] == 3 and fused["view_top1"] is None
    assert {p.name for p in (out / "model_1").iterdir()} >= {"results.json", "predictions.csv"}
    assert json.loads((out / "model_2" / "results.json").read_text())["num_videos"] == 3

    assert main(_fusion_argv(setup, out, "--json", *data)) == 0
    report = json.loads(capsys.readouterr().out)
    assert [m["weights"] for m in report["models"]] == [str(setup["weights"]), str(setup["weights2"])]
    assert report["fusion"]["fusion_weights"] == [1.0, 1.0]


def test_svm_fusion_is_fitted_on_the_training_videos(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = setup["root"] / "svm_fusion"
    data = [f"--data.root={setup['data']}", "--train.num_workers=0", "--precision", "fp32"]
    assert main(_fusion_argv(setup, out, "--fusion", "svm", *data)) == 0
    printed = capsys.readouterr().out
    assert "fusion (linear svm on " in printed
    fused = json.loads((out / "results.json").read_text())
    trained_on = len((setup["data"] / "trainlist01.txt").read_text().splitlines())
    assert fused["num_videos"] == 3 and f"on {trained_on} training videos" in fused["fusion"]
    assert fused["fusion_weights"] is None and 0.0 <= fused["top1"] <= 1.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fusion", "svm", "--fusion-weights", "1", "2"], "a fitted --fusion learns its own"),
        (["--fusion-weights", "1"], "--fusion-weights: 1 given for 2 --weights files"),
        (["--fusion-weights", "1", "0"], "--fusion-weights must be > 0"),
        (["--aggregate", "logits"], "use --aggregate softmax"),
    ],
)
def test_bad_fusion_input_is_one_line(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    data = [f"--data.root={setup['data']}", "--train.num_workers=0", "--precision", "fp32"]
    assert main(_fusion_argv(setup, setup["root"] / "bad_fusion", *extra, *data)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_models_of_different_classes_are_not_fused(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = create_model("r2plus1d_small", num_classes=len(CLASSES))
    other = save_weights(model, tmp_path / "model.safetensors", labels=["a", "b", "c"])
    argv = [
        "test",
        "--config",
        RECIPE,
        "--weights",
        str(setup["weights"]),
        str(other),
        "--out",
        str(tmp_path),
    ]
    assert main([*argv, f"--data.root={setup['data']}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "class lists differ" in err[-1]


def test_tsn_is_tested_on_the_segments_asked_for(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The paper tests TSN on 25 snippets: --segments overrides the 3 the weights record."""
    torch.manual_seed(0)
    weights = save_weights(
        create_model("tsn_small", num_classes=len(CLASSES)), setup["root"] / "tsn.safetensors", labels=CLASSES
    )
    data = [f"--data.root={setup['data']}", "--train.num_workers=0", "--precision", "fp32"]
    out = setup["root"] / "tsn25"
    argv = ["test", "--config", "tsn-small_1x1x3_synthetic-rgb", "--weights", str(weights), "--out", str(out)]
    assert main([*argv, "--segments", "25", "--json", *data]) == 0
    assert json.loads(capsys.readouterr().out)["num_videos"] == 3
    from actionrec.engine.config import load_config
    from actionrec.engine.evaluate import build_test_dataset
    from actionrec.models.registry import get_card

    cfg = load_config("tsn-small_1x1x3_synthetic-rgb", overrides=[f"--data.root={setup['data']}"])
    card = get_card("tsn_small")
    assert build_test_dataset(cfg, card, weights=str(weights), num_segments=25)[0]["rgb"].shape[1] == 25
    assert build_test_dataset(cfg, card, weights=str(weights))[0]["rgb"].shape[1] == 3
