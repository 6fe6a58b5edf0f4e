"""Tasks: classification, multi-task with weighted named terms, label-free pretraining, best.pt by metric."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from actionrec.engine.config import TaskSection
from actionrec.engine.tasks import Task, split_output
from actionrec.engine.train import train
from actionrec.errors import ConfigError

from .test_train import TinyNet, ToyClips, toy_config


class Unlabeled(Dataset):
    """Clips without labels: only ``video`` (and the bookkeeping keys)."""

    def __init__(self, n: int = 8) -> None:
        self.clips = ToyClips(n, aug=False).clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        return {"rgb": self.clips[i], "index": i, "path": f"clip{i}.mp4"}


class Reconstructs(nn.Module):
    """A label-free model: predicts the clip's last frame from its first one; no logits at all."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> dict:
        pred = self.conv(x[:, :, 0])  # (B, C, T, H, W) -> (B, C, H, W)
        return {"losses": {"recon": (pred - x[:, :, -1]).abs().mean()}}


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_split_output_accepts_tensor_dict_and_object() -> None:
    logits = torch.zeros(2, 3)
    assert split_output(logits)[0] is logits
    assert split_output({"logits": logits, "losses": {"a": torch.ones(())}})[1]["a"] == 1
    assert split_output({"losses": {"a": torch.ones(())}})[0] is None

    class Out:
        def __init__(self) -> None:
            self.logits, self.losses = logits, {"b": torch.zeros(())}

    assert set(split_output(Out())[1]) == {"b"}


def test_weighted_sum_of_named_terms() -> None:
    task = Task(TaskSection(name="multitask", loss_weights={"cls": 0.5, "recon": 2.0}))
    out = {"logits": torch.tensor([[2.0, 0.0]]), "losses": {"recon": torch.tensor(0.25)}}
    terms, logits = task.terms(out, torch.tensor([0]))
    assert set(terms) == {"cls", "recon"} and logits is not None
    torch.testing.assert_close(task.total(terms), 0.5 * terms["cls"] + 0.5)
    with pytest.raises(ConfigError, match="no loss term recnstr"):
        Task(TaskSection(name="multitask", loss_weights={"recnstr": 1.0})).terms(out, torch.tensor([0]))
    with pytest.raises(ConfigError, match="pretraining has no classification term"):
        Task(TaskSection(name="pretrain", loss_weights={"cls": 1.0}))


def test_a_label_free_task_trains_without_labels(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = toy_config(**{"task.name": "pretrain", "train.epochs": 3, "optim.lr": 0.05})
    result = train(cfg, out_dir=tmp_path, model=Reconstructs(), train_set=Unlabeled(8), val_set=Unlabeled(4))
    records = _records(tmp_path)
    assert records[-1]["train_loss_recon"] < records[0]["train_loss_recon"]
    assert "train_top1" not in records[-1] and "val_top1" not in records[-1]  # no accuracy without labels
    assert "val_loss_recon" in records[-1] and result.best_top1 is None
    assert (tmp_path / "best.pt").is_file()  # chosen by val_loss, the pretraining default


def test_multitask_logs_every_term_and_keeps_best_by_the_named_metric(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = toy_config(
        **{
            "task.name": "multitask",
            "task.loss_weights": "{aux: 0.1}",
            "task.best_metric": "val_loss_cls",
            "train.epochs": 3,
        }
    )
    train(cfg, out_dir=tmp_path, model=TinyNet(aux=True), train_set=ToyClips(12), val_set=ToyClips(6, seed=5))
    records = _records(tmp_path)
    for r in records:
        assert {"train_loss", "train_loss_cls", "train_loss_aux", "train_top1"} <= set(r)
        expected = r["train_loss_cls"] + 0.1 * r["train_loss_aux"]
        assert r["train_loss"] == pytest.approx(expected, rel=1e-5)
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    vals = [r["val_loss_cls"] for r in records]
    assert best["best_value"] == pytest.approx(min(vals)) and best["epoch"] == 1 + vals.index(min(vals))


def test_per_step_predictions_are_weighted_over_time() -> None:
    """Ng et al.'s LSTM scheme: the loss at step s weighted by s / (S - 1), checked by hand."""
    task = Task(TaskSection())
    steps = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [1.0, 3.0]]])  # (B=1, S=3, K=2)
    weights = torch.tensor([0.0, 0.5, 1.0])
    out = {
        "logits": (steps * weights[:, None]).sum(1) / weights.sum(),
        "step_logits": steps,
        "step_weights": weights,
    }
    terms, _ = task.terms(out, torch.tensor([1]))
    ce = [math.log(1 + math.exp(2.0)), math.log(1 + math.exp(-1.0)), math.log(1 + math.exp(-2.0))]
    expected = (0.0 * ce[0] + 0.5 * ce[1] + 1.0 * ce[2]) / 1.5
    assert terms["cls"].item() == pytest.approx(expected, rel=1e-6)
    plain, _ = task.terms({"logits": steps[:, 2], "step_logits": steps}, torch.tensor([1]))
    assert plain["cls"].item() == pytest.approx(sum(ce) / 3, rel=1e-6)  # no weights: every step alike
