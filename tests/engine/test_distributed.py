"""DDP: two CPU processes under torchrun (gloo) match one process with the same global batch.

What is compared: the final weights of TinyNet *without* BatchNorm and without dropout (so no
per-rank batch statistics or random masks enter), trained on un-augmented ToyClips for 2 epochs x
2 optimiser steps with global batch 4 (2 clips per rank). DDP averages the ranks' gradients, so each
step sees the gradient of the same 4 clips as the single process; weights must agree to float
rounding (allclose, atol 1e-5; a different batch split moves them by ~1e-2).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from actionrec.engine.distributed import EpochSampler, mix_seed, per_rank_batch

HERE = Path(__file__).resolve()


def _toys():
    spec = importlib.util.spec_from_file_location("engine_toys", HERE.with_name("test_train.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def run_toy(out: Path):
    from actionrec.engine.train import train

    toys = _toys()
    torch.manual_seed(0)
    model = toys.TinyNet(bn=False, dropout=0.0)
    cfg = toys.toy_config(**{"train.epochs": 2, "train.eval_every": 1})
    return train(
        cfg,
        out_dir=out,
        model=model,
        train_set=toys.ToyClips(8, aug=False),
        val_set=toys.ToyClips(6, seed=3, aug=False),
    )


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path: Path) -> None:
    single = run_toy(tmp_path / "single")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(HERE),
        str(tmp_path / "ddp"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    toys = _toys()
    a, b = (
        toys.read_weights(tmp_path / "single" / "model.safetensors"),
        toys.read_weights(tmp_path / "ddp" / "model.safetensors"),
    )
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    ddp_state = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert ddp_state["world_size"] == 2 and ddp_state["global_step"] == single.global_step == 4
    assert len(ddp_state["rng"]) == 2  # each rank's generators, for a mid-epoch resume
    lines = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # rank 0 alone logs
    import json

    val = json.loads(lines[-1])
    assert val["val_clips"] == 6  # all-reduced over both ranks, no padded duplicates
    assert val["val_top1"] == pytest.approx(single.history[-1]["val_top1"])


def test_epoch_sampler_partitions_a_seeded_permutation() -> None:
    data = list(range(10))
    shards = [list(EpochSampler(data, rank=r, world_size=3, seed=4)) for r in range(3)]
    assert all(len(s) == 4 for s in shards)  # padded to 12
    assert set().union(*map(set, shards)) == set(data)
    again = EpochSampler(data, rank=0, world_size=3, seed=4)
    assert list(again) == shards[0]
    again.set_epoch(1)
    assert list(again) != shards[0]
    unpadded = [list(EpochSampler(data, rank=r, world_size=3, shuffle=False, pad=False)) for r in range(3)]
    assert sorted(i for shard in unpadded for i in shard) == data


def test_per_rank_batch_and_seed_mixing() -> None:
    assert per_rank_batch(8, 2) == 4
    with pytest.raises(ValueError, match="not divisible"):
        per_rank_batch(6, 4)
    assert len({mix_seed(0, e) for e in range(100)} | {mix_seed(1, e) for e in range(100)}) == 200


if __name__ == "__main__":
    torch.set_num_threads(1)
    run_toy(Path(sys.argv[1]))
