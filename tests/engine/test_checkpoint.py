"""Checkpoints: atomic writes, weights-only contents, and bit-identical resume after SIGKILL / SIGTERM.

The interrupted runs are child processes running this file (``python test_checkpoint.py OUT ...``);
they kill themselves with SIGKILL (no cleanup at all) or SIGTERM at a step chosen by the test.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

import actionrec.io
from actionrec.engine import checkpoint as ckpt
from actionrec.errors import ActionrecError

HERE = Path(__file__).resolve()


def _toys():
    spec = importlib.util.spec_from_file_location("engine_toys", HERE.with_name("test_train.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def run_toy(
    out: Path,
    *,
    workers: int,
    resume: bool = False,
    kill_at: int = 0,
    kill_signal: int = 0,
    kill_on_save: int = 0,
):
    """Train TinyNet (BN + dropout) on augmented ToyClips: 3 epochs x 3 steps; optionally die on the way."""
    from actionrec.engine.train import train

    toys = _toys()
    torch.manual_seed(0)
    model = toys.TinyNet()
    if kill_at:
        calls = {"n": 0}

        def hook(module, args):  # forward number kill_at sends the signal to this very process
            calls["n"] += 1
            if calls["n"] == kill_at:
                os.kill(os.getpid(), kill_signal)

        model.register_forward_pre_hook(hook)
    if kill_on_save:
        saves = {"n": 0}

        def before_replace(tmp: Path) -> None:
            saves["n"] += 1
            if saves["n"] == kill_on_save:
                os.kill(os.getpid(), signal.SIGKILL)

        actionrec.io.before_replace = before_replace
    cfg = toys.toy_config(**{"train.num_workers": workers, "train.eval_every": 0})
    return train(cfg, out_dir=out, resume=resume, model=model, train_set=toys.ToyClips(12))


def _child(out: Path, **kw: int) -> subprocess.CompletedProcess:
    args = [sys.executable, str(HERE), str(out), *(f"--{k.replace('_', '-')}={v}" for k, v in kw.items())]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return _toys().read_weights(out / "model.safetensors")


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_resume_after_sigkill_is_bit_identical(tmp_path: Path, workers: int) -> None:
    run_toy(tmp_path / "ref", workers=workers)
    kill_at = random.randint(4, 9)  # a step of epoch 2 or 3: the end of epoch 1 left a checkpoint
    child = _child(tmp_path / "run", workers=workers, kill_at=kill_at, kill_signal=int(signal.SIGKILL))
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert (tmp_path / "run" / "last.pt").exists()
    assert not (tmp_path / "run" / "model.safetensors").exists()
    result = run_toy(tmp_path / "run", workers=workers, resume=True)
    assert result.epochs_completed == 3 and result.global_step == 9, f"killed at forward {kill_at}"
    _assert_identical(_weights(tmp_path / "ref"), _weights(tmp_path / "run"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("workers", "sig"), [(0, signal.SIGTERM), (2, signal.SIGTERM), (2, signal.SIGINT)], ids=str
)
def test_signal_saves_mid_epoch_and_resume_is_bit_identical(
    tmp_path: Path, workers: int, sig: signal.Signals
) -> None:
    run_toy(tmp_path / "ref", workers=workers)
    child = _child(tmp_path / "run", workers=workers, kill_at=5, kill_signal=int(sig))
    assert child.returncode == 0, child.stderr
    assert f"stopped by {sig.name}" in child.stderr and "--resume" in child.stderr
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert (state["epoch"], state["batch_in_epoch"], state["global_step"]) == (1, 2, 5)
    run_toy(tmp_path / "run", workers=workers, resume=True)
    _assert_identical(_weights(tmp_path / "ref"), _weights(tmp_path / "run"))


@pytest.mark.slow
def test_mid_epoch_resume_loads_no_consumed_batch(tmp_path: Path) -> None:
    from actionrec.engine.train import train

    child = _child(tmp_path / "run", workers=0, kill_at=5, kill_signal=int(signal.SIGTERM))
    assert child.returncode == 0, child.stderr  # stopped after 2 of epoch 2's 3 batches of 4 clips
    toys = _toys()

    class Counting(toys.ToyClips):
        loaded: ClassVar[list[int]] = []

        def __getitem__(self, i: int) -> dict:
            self.loaded.append(i)
            return super().__getitem__(i)

    torch.manual_seed(0)
    cfg = toys.toy_config(**{"train.num_workers": 0, "train.eval_every": 0})
    train(cfg, out_dir=tmp_path / "run", resume=True, model=toys.TinyNet(), train_set=Counting(12))
    assert len(Counting.loaded) == 4 + 12  # the rest of epoch 2, then epoch 3: nothing decoded twice
    assert sorted(Counting.loaded[4:]) == list(range(12))


@pytest.mark.slow
def test_kill_during_save_leaves_previous_checkpoint_intact(tmp_path: Path) -> None:
    out = tmp_path / "run"
    child = _child(out, workers=0, kill_on_save=3)  # saves: config.yaml, last.pt (epoch 1), last.pt (2)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert list(out.glob(".last.pt.*.tmp")), "the half-written temp file should still be there"
    state = ckpt.load_checkpoint(out / "last.pt")
    assert state["epoch"] == 1 and state["global_step"] == 3
    result = run_toy(out, workers=0, resume=True)
    assert result.epochs_completed == 3 and not list(out.glob(".*.tmp"))


def test_checkpoint_contents_load_weights_only(tmp_path: Path) -> None:
    run_toy(tmp_path, workers=0)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "config", "epoch", "global_step"} <= set(
        state
    )
    assert isinstance(state["rng"][0]["numpy"]["key"], torch.Tensor)


def test_atomic_write_failure_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "x.bin"
    ckpt.atomic_write(target, lambda f: f.write(b"old"))

    def boom(f) -> None:
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        ckpt.atomic_write(target, boom)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_rng_state_round_trip() -> None:
    state = ckpt.rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(()).item())
    ckpt.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(()).item()) == expected


def test_damaged_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ActionrecError, match="not a readable checkpoint"):
        ckpt.load_checkpoint(bad)
    with pytest.raises(ActionrecError, match="not found"):
        ckpt.load_checkpoint(tmp_path / "missing.pt")


if __name__ == "__main__":
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    for name in ("workers", "kill-at", "kill-signal", "kill-on-save"):
        parser.add_argument(f"--{name}", type=int, default=0)
    a = parser.parse_args()
    run_toy(
        a.out, workers=a.workers, kill_at=a.kill_at, kill_signal=a.kill_signal, kill_on_save=a.kill_on_save
    )
