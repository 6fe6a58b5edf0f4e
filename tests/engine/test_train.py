"""The training loop on a tiny model and a tiny in-memory clip dataset (3 x 8 x 32 x 32 clips).

``ToyClips`` and ``TinyNet`` are also loaded (by path) by test_checkpoint.py and test_distributed.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torch import nn
from torch.utils.data import Dataset

from actionrec.engine.config import load_config
from actionrec.engine.optim import LrFactor, build_optimizer, build_scheduler, param_groups
from actionrec.engine.train import train


class ToyClips(Dataset):
    """``n`` clips whose class is the dominant colour channel; optional random flip + noise."""

    def __init__(self, n: int = 12, *, num_classes: int = 3, seed: int = 0, aug: bool = True) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = [i % num_classes for i in range(n)]
        self.clips = torch.rand(n, 3, 8, 32, 32, generator=g) * 0.5  # (N, C, T, H, W)
        for i, y in enumerate(self.labels):
            self.clips[i, y % 3] += 0.5
        self.classes = [f"class{k}" for k in range(num_classes)]
        self.aug = aug
        self.failures: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        clip = self.clips[i]
        if self.aug:  # draws from torch's and numpy's global generators, as real transforms do
            if torch.rand(()) < 0.5:
                clip = clip.flip(-1)
            clip = clip + torch.from_numpy(np.random.normal(0, 0.05, clip.shape).astype(np.float32))
        return {"rgb": clip, "label": self.labels[i], "index": i, "path": f"clip{i}.mp4"}

    def report(self) -> str:
        return "toy dataset: 0 videos skipped"


class TinyNet(nn.Module):
    """Conv3d -> (BN) -> ReLU -> pool -> dropout -> linear; ``aux`` adds an auxiliary loss output."""

    def __init__(
        self, num_classes: int = 3, *, bn: bool = True, dropout: float = 0.2, aux: bool = False
    ) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm3d(8) if bn else nn.Identity()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(8, num_classes)
        self.aux = nn.Parameter(torch.ones(1)) if aux else None

    def forward(self, x: torch.Tensor):
        h = torch.relu(self.bn(self.conv(x))).mean((2, 3, 4))  # (B, 8, T, H, W) -> (B, 8)
        logits = self.fc(self.drop(h))
        if self.aux is None:
            return logits
        return {"logits": logits, "losses": {"aux": 10.0 * self.aux.square().sum()}}


def toy_config(**overrides: object):
    base = {
        "model": {"name": "tiny", "num_classes": 3},
        "optim": {"lr": 0.1, "weight_decay": 0.0, "warmup_epochs": 1.0},
        # fp32: these tests compare runs number for number (auto would be bf16 on an AMX CPU)
        "train": {
            "epochs": 3,
            "batch_size": 4,
            "num_workers": 0,
            "deterministic": True,
            "seed": 1,
            "precision": "fp32",
        },
    }
    return load_config(base, overrides=[f"--{k}={v}" for k, v in overrides.items()])


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118


def test_train_learns_and_writes_outputs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = toy_config(**{"train.epochs": 4})
    result = train(
        cfg, out_dir=tmp_path, model=TinyNet(), train_set=ToyClips(12), val_set=ToyClips(6, seed=5)
    )
    assert result.epochs_completed == 4 and result.global_step == 12 and not result.interrupted
    assert result.final_top1 == 100.0 and result.best_top1 == 100.0
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    for name in ("last.pt", "best.pt", "config.yaml", "curves.png", "model.safetensors"):
        assert (tmp_path / name).is_file(), name
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epoch"] == 4 and state["config"]["optim"]["lr"] == 0.1
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        card = json.loads(f.metadata()["actionrec"])
    assert card["num_classes"] == 3 and card["labels"] == ["class0", "class1", "class2"]
    err = capsys.readouterr().err
    assert "epoch 4/4" in err and "toy dataset" not in err  # a dataset report only when videos were skipped


def test_refuses_to_overwrite_a_run_without_resume(tmp_path: Path) -> None:
    cfg = toy_config(**{"train.epochs": 1})
    train(cfg, out_dir=tmp_path, model=TinyNet(), train_set=ToyClips(4))
    with pytest.raises(Exception, match="already holds a run"):
        train(cfg, out_dir=tmp_path, model=TinyNet(), train_set=ToyClips(4))


def test_auxiliary_losses_are_added_and_trained(tmp_path: Path) -> None:
    model = TinyNet(aux=True)
    result = train(toy_config(**{"train.epochs": 1}), out_dir=tmp_path, model=model, train_set=ToyClips(8))
    assert result.history[0]["train_loss"] > 5.0  # 10 * aux^2 with aux starting at 1
    assert model.aux.item() < 1.0  # the auxiliary term received gradients


def test_accumulation_matches_a_larger_batch(tmp_path: Path) -> None:
    weights = []
    for batch, acc in ((4, 1), (2, 2)):
        torch.manual_seed(0)
        model = TinyNet(bn=False, dropout=0.0)
        cfg = toy_config(**{"train.batch_size": batch, "optim.accumulate": acc, "train.epochs": 2})
        train(cfg, out_dir=tmp_path / f"b{batch}", model=model, train_set=ToyClips(8, aug=False))
        weights.append(model.state_dict())
    for k in weights[0]:
        torch.testing.assert_close(weights[0][k], weights[1][k], rtol=1e-5, atol=1e-6)


def test_gradient_clipping_bounds_each_update(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TinyNet(bn=False, dropout=0.0)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    cfg = toy_config(
        **{
            "optim.grad_clip": 1e-3,
            "optim.momentum": 0.0,
            "optim.lr": 1.0,
            "optim.warmup_epochs": 0,
            "optim.schedule": "constant",
            "train.epochs": 1,
        }
    )
    train(cfg, out_dir=tmp_path, model=model, train_set=ToyClips(8, aug=False))  # 2 steps
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm() <= 2 * 1.0 * 1e-3 + 1e-6
    assert (after - before).norm() > 1e-3


@pytest.mark.parametrize("options", [{"train.precision": "bf16"}, {"train.channels_last": True}])
def test_bf16_autocast_and_channels_last_train(tmp_path: Path, options: dict) -> None:
    result = train(
        toy_config(**options, **{"train.epochs": 2}),
        out_dir=tmp_path,
        model=TinyNet(),
        train_set=ToyClips(8),
        val_set=ToyClips(4),
    )
    assert np.isfinite(result.history[-1]["train_loss"]) and result.history[-1]["val_top1"] >= 0


def test_fp16_on_cpu_is_a_config_error(tmp_path: Path) -> None:
    from actionrec.errors import ConfigError

    with pytest.raises(ConfigError, match=r"train\.precision"):
        train(
            toy_config(**{"train.precision": "fp16"}),
            out_dir=tmp_path,
            model=TinyNet(),
            train_set=ToyClips(4),
        )


def test_no_weight_decay_on_bias_and_norm() -> None:
    model = TinyNet()
    groups = param_groups(model, weight_decay=0.1)
    decayed = {id(p) for p in groups[0]["params"]}
    assert decayed == {id(model.conv.weight), id(model.fc.weight)}
    assert groups[1]["weight_decay"] == 0.0 and len(groups[1]["params"]) == 4  # conv/fc bias, bn weight/bias
    opt = build_optimizer(model, toy_config().optim)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 0.0]  # toy config: weight_decay 0


def test_lr_multipliers_get_their_own_groups_and_follow_the_schedule() -> None:
    model = TinyNet()
    model.lr_multipliers = lambda: {"conv.weight": 5.0, "conv.bias": 10.0}  # TSN's flow conv1 rule
    cfg = toy_config(**{"optim.lr": 0.1}).optim
    opt = build_optimizer(model, cfg)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert lr_of[id(model.conv.weight)] == pytest.approx(0.5)
    assert lr_of[id(model.conv.bias)] == pytest.approx(1.0)
    assert lr_of[id(model.fc.weight)] == pytest.approx(0.1) and opt.param_groups[0]["lr"] == pytest.approx(
        0.1
    )
    sched = build_scheduler(opt, cfg, steps_per_epoch=10, epochs=2)
    opt.step()
    sched.step()
    factor = LrFactor(cfg, steps_per_epoch=10, epochs=2)(1)
    assert lr_of[id(model.conv.weight)] * factor == pytest.approx(
        next(g["lr"] for g in opt.param_groups if any(p is model.conv.weight for p in g["params"]))
    )
    model.lr_multipliers = lambda: {"nope.weight": 2.0}
    with pytest.raises(ValueError, match="unknown parameters"):
        build_optimizer(model, cfg)


def test_warmup_then_cosine_schedule() -> None:
    cfg = toy_config(**{"optim.warmup_epochs": 1, "optim.warmup_factor": 0.0, "optim.min_lr": 0.01}).optim
    f = LrFactor(cfg, steps_per_epoch=10, epochs=3)
    assert f(0) == 0.0 and f(5) == pytest.approx(0.5) and f(10) == pytest.approx(1.0)
    assert f(20) == pytest.approx(0.1 + (1 - 0.1) * 0.5)  # half-way through the cosine, min factor 0.1
    assert f(30) == pytest.approx(0.1)
    step = toy_config(
        **{"optim.schedule": "step", "optim.milestones": [1, 2], "optim.warmup_epochs": 0}
    ).optim
    g = LrFactor(step, steps_per_epoch=10, epochs=3)
    assert (g(9), g(10), g(25)) == (1.0, pytest.approx(0.1), pytest.approx(0.01))
