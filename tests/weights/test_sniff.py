"""Telling a checkpoint's model and class count from its contents."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from actionrec.errors import ActionrecError
from actionrec.models import create_model
from actionrec.models.i3d import I3D
from actionrec.weights import save_weights
from actionrec.weights.sniff import infer_model_name, model_for_checkpoint


def test_our_file_names_its_model_and_class_count(tmp_path: Path) -> None:
    path = save_weights(create_model("r2plus1d_small", num_classes=3), tmp_path / "m.safetensors")
    assert infer_model_name(path) == "r2plus1d_small"
    model, result = model_for_checkpoint("r2plus1d_small", path)
    assert model.num_classes == 3 and result.card["num_classes"] == 3


def test_pytorch_i3d_layout_is_i3d_rgb(tmp_path: Path) -> None:
    sd = {
        k.replace("features.", "").replace(".conv.", ".conv3d.").replace("head.logits.", "logits.conv3d."): v
        for k, v in I3D(num_classes=5).state_dict().items()
    }
    torch.save(sd, tmp_path / "rgb.pt")
    assert infer_model_name(tmp_path / "rgb.pt") == "i3d_inception_v1"


def test_a_plain_state_dict_names_no_model(tmp_path: Path) -> None:
    torch.save({"fc.weight": torch.zeros(3, 4)}, tmp_path / "plain.pth")
    with pytest.raises(ActionrecError, match="cannot tell which model"):
        infer_model_name(tmp_path / "plain.pth")
