"""DynamoNet: tensor and dict inputs, the reconstruction term, identity filters = copying the last frame,
label-free training through the engine's pretrain task on real (tiny) videos, fine-tuning from it,
and the measured parameters / GMACs its cards quote."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import actionrec.models.dynamonet as dynamonet  # registers the models
from actionrec.layers.motion_filters import shift_filter
from actionrec.models.complexity import count_macs, count_params
from actionrec.models.registry import create_model, example_input, get_card


def _pretrain_config():
    """Label-free training for 3 epochs in fp32 (the engine's pretrain task, as the recipe sets it)."""
    from actionrec.engine.config import load_config

    base = {
        "model": {"name": "dynamonet_small", "num_classes": 2},
        "task": {"name": "pretrain", "loss_weights": {"recon": 1.0}},
        "optim": {"lr": 0.01, "weight_decay": 0.0, "warmup_epochs": 0.0},
        "train": {"epochs": 3, "batch_size": 2, "num_workers": 0, "seed": 1, "precision": "fp32"},
    }
    return load_config(base)


pytestmark = pytest.mark.usefixtures("one_thread")


def _clip(batch: int = 2, frames: int = 8, size: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "rgb": torch.randn(batch, 3, frames, size, size, generator=g),
        "future": torch.randn(batch, 3, 1, size, size, generator=g),
    }


def _identity_generator(model: dynamonet.DynamoNet) -> None:
    """Make the generator emit the identity kernel for every clip and step (softmax of a huge logit)."""
    with torch.no_grad():
        model.generator.taps.weight.zero_()
        model.generator.taps.bias.copy_(shift_filter(model.generator.filter_size) * 100.0)


def test_tensor_input_gives_logits_and_dict_input_adds_the_recon_loss() -> None:
    torch.manual_seed(0)
    model = create_model("dynamonet_small", num_classes=5).eval()
    x = _clip()
    logits = model(x["rgb"])
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 5)
    out = model(x)
    assert set(out) == {"logits", "losses"} and set(out["losses"]) == {"recon"}
    torch.testing.assert_close(out["logits"], logits)  # the DMR's kernels are the same either way
    recon = out["losses"]["recon"]
    assert recon.ndim == 0 and torch.isfinite(recon) and recon > 0
    assert model({"rgb": x["rgb"]})["losses"]["recon"] > 0  # no future frame: frames 2..T only
    assert model(_clip(frames=4))["logits"].shape == (2, 5)  # a clip shorter than the DMR's 8 steps
    quiet = create_model("dynamonet_small", num_classes=5, recon=False, use_dmr=False)
    assert quiet(x)["losses"] == {} and quiet.head.in_features == quiet.backbone.num_features


@pytest.mark.parametrize("loss", ["l1", "l2"])
def test_identity_filters_predict_the_last_frame(loss: str) -> None:
    torch.manual_seed(0)
    model = create_model("dynamonet_small", num_classes=3, loss=loss).eval()
    _identity_generator(model)
    x = _clip()
    target = torch.cat([x["rgb"][:, :, 1:], x["future"]], dim=2)  # frames 2..T and the future one
    diff = target - x["rgb"]  # copying frame t as the guess for frame t + 1
    expected = diff.abs().mean() if loss == "l1" else diff.square().mean()
    torch.testing.assert_close(model(x)["losses"]["recon"], expected)
    frames = model.predict_frames(x["rgb"], x["future"])
    torch.testing.assert_close(frames["predicted"], x["rgb"])
    assert frames["filters"].shape == (2, 8, 7, 7) and frames["targets"].shape == (2, 3, 8, 32, 32)
    assert model.predict_frames(x["rgb"])["predicted"].shape == (2, 3, 7, 32, 32)


def test_recon_gradients_reach_backbone_and_generator_but_not_the_classifier() -> None:
    torch.manual_seed(0)
    model = create_model("dynamonet_small", num_classes=3)
    model(_clip(batch=2))["losses"]["recon"].backward()
    assert model.generator.temporal.weight.grad.abs().sum() > 0
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0
    assert model.head.fc.weight.grad is None  # the classifier learns nothing from frame prediction


def _write_unlabeled_videos(root: Path) -> list[tuple[str, None]]:
    from actionrec.data.synth import generate_synthetic

    generate_synthetic(
        root,
        classes=["move_right", "move_down"],
        videos_per_class=2,
        size=32,
        num_frames=12,
        seed=0,
        workers=1,
    )
    return [(str(p.relative_to(root)), None) for p in sorted(root.glob("*/*.mp4"))]


def test_label_free_pretraining_through_the_engine_then_fine_tuning(tmp_path: Path) -> None:
    from actionrec.data.datasets import VideoDataset
    from actionrec.data.preprocessing import Preprocessing
    from actionrec.data.sampling import SamplingConfig
    from actionrec.engine.train import train

    root = tmp_path / "videos"
    samples = _write_unlabeled_videos(root)
    card = get_card("dynamonet_small")
    pre = Preprocessing.from_card(card)
    data = VideoDataset(
        root,
        samples,  # every label None: nothing for a classifier to read
        ["move_right", "move_down"],  # names only (the engine writes them beside the weights)
        sampling=SamplingConfig(mode="dense", clip_len=4, frame_interval=2),
        transform=pre.transform(),
        train=True,
        num_workers=0,
        streams=card.streams,
        future_frames=card.future_frames,
    )
    sample = data[0]
    assert "label" not in sample and sample["future"].shape == (3, 1, 48, 48)  # the card's crop
    torch.manual_seed(0)
    model = create_model("dynamonet_small", num_classes=2, dmr_steps=4)
    batch = {k: torch.stack([data[i][k] for i in range(4)]) for k in ("rgb", "future")}
    with torch.no_grad():
        before = model.eval()(batch)["losses"]["recon"].item()
    out = tmp_path / "pretrain"
    train(_pretrain_config(), out_dir=out, model=model, train_set=data, val_set=None)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(r["train_loss_recon"] > 0 and "train_top1" not in r for r in records)
    with torch.no_grad():
        after = model.eval()(batch)["losses"]["recon"].item()
    assert after < before  # six label-free steps already predict the next frames better
    weights = out / "model.safetensors"
    tuned = create_model("dynamonet_small", num_classes=2, dmr_steps=4, weights=weights)  # strict load
    torch.testing.assert_close(tuned.generator.taps.bias, model.generator.taps.bias)
    tuned.reset_classifier(7)  # fine-tuning on other classes: a fresh head, the rest kept
    assert tuned(batch)["logits"].shape == (4, 7)


def _measured(notes: str) -> tuple[float, float]:
    m = re.search(r"Measured: ([\d.]+)M params, ([\d.]+) GMACs", notes)
    assert m, notes
    return float(m.group(1)), float(m.group(2))


@pytest.mark.parametrize("name", ["dynamonet_small", "dynamonet_r3d_18"])
def test_card_notes_quote_the_measured_params_and_gmacs(name: str) -> None:
    card = get_card(name)
    assert card.streams == ("rgb", "future") and card.future_frames == 1
    params_m, gmacs = _measured(card.notes)
    with torch.device("meta"):
        model = create_model(name, num_classes=400)
    assert count_params(model) / 1e6 == pytest.approx(params_m, abs=0.006)
    macs = count_macs(model, example_input(card, device="meta")) / 1e9
    assert macs == pytest.approx(gmacs, abs=0.006)
