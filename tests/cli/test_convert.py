"""``actionrec convert``: public checkpoints -> our safetensors + card, inferred model and class count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from actionrec.cli import main
from actionrec.models import create_model
from actionrec.models.i3d import I3D
from actionrec.weights import read_card


def test_deepmind_pickle_to_safetensors(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = shared_data / "weights" / "i3d_rgb_kinetics400_deepmind.pkl"
    dst = tmp_path / "i3d.safetensors"
    assert (
        main(["convert", str(src), str(dst), "--labels", str(shared_data / "labels" / "kinetics400.txt")])
        == 0
    )
    assert (
        "i3d_inception_v1, 400 classes, 12.69M parameters (from a deepmind-flax checkpoint)"
        in capsys.readouterr().out
    )
    card = read_card(dst)
    assert card["model"] == "i3d_inception_v1" and card["num_classes"] == 400
    assert card["labels"][6] == "arm wrestling" and card["source_layout"] == "deepmind-flax"
    pre = card["preprocessing"]
    assert (pre["fps"], pre["crop_size"], pre["short_side"], pre["mean"]) == (25.0, 224, 256, [0.5, 0.5, 0.5])
    converted = create_model("i3d_inception_v1", weights=dst).state_dict()
    original = create_model("i3d_inception_v1", weights=src).state_dict()
    for key, value in original.items():
        torch.testing.assert_close(converted[key], value, rtol=0, atol=0)


def test_pytorch_i3d_class_count_inferred(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = I3D(num_classes=10)
    sd = {}
    for key, value in model.state_dict().items():  # our names -> pytorch-i3d's
        key = (
            key.replace("features.", "")
            .replace(".conv.", ".conv3d.")
            .replace("head.logits.", "logits.conv3d.")
        )
        sd[key] = value
    for key in [k for k in sd if k.endswith("bn.bias")]:
        sd[key.replace("bn.bias", "bn.weight")] = torch.ones_like(sd[key])
    torch.save(sd, tmp_path / "rgb_charades.pt")
    dst = tmp_path / "out.safetensors"
    assert main(["convert", str(tmp_path / "rgb_charades.pt"), str(dst), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "i3d_inception_v1" and summary["num_classes"] == 10
    assert summary["layout"] == "pytorch-i3d"
    torch.testing.assert_close(
        create_model("i3d_inception_v1", num_classes=10, weights=dst).head.logits.weight,
        model.head.logits.weight,
    )


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    torch.save({"fc.weight": torch.zeros(3, 4)}, tmp_path / "plain.pth")
    assert main(["convert", str(tmp_path / "plain.pth"), str(tmp_path / "o.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot tell which model" in err and "--model" in err
    assert main(["convert", str(tmp_path / "missing.pkl"), str(tmp_path / "o.safetensors")]) == 2
    assert "weights file not found" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()


def test_timesformer_checkpoint_names_its_scheme_and_input(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """An official-layout .pyth: the scheme from its keys, frames / size / depth from its shapes."""
    shape = {"num_frames": 4, "img_size": 32, "depth": 2}
    model = create_model("timesformer_tiny_joint", num_classes=7, **shape)
    state = {f"model.{k.replace('head.fc.', 'head.')}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 3, "model_state": state, "cfg": "TRAIN: {}"}, tmp_path / "joint.pyth")
    dst = tmp_path / "joint.safetensors"
    assert main(["convert", str(tmp_path / "joint.pyth"), str(dst), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "timesformer_tiny_joint" and summary["num_classes"] == 7
    assert summary["layout"] == "timesformer-official"
    card = read_card(dst)
    assert card["builder_kwargs"] == shape
    loaded = create_model("timesformer_tiny_joint", num_classes=7, weights=dst, **shape)
    torch.testing.assert_close(loaded.time_embed, model.time_embed)
