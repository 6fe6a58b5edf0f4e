"""What makes a training run resumable: its progress, its stop flag, its seeds and its data order.

The data order is a pure function of ``(seed, epoch)`` (see
:class:`~actionrec.engine.distributed.EpochSampler`) and every global generator is reseeded from
``(seed, epoch, rank)`` at the start of each epoch, so a run resumed from ``last.pt`` replays exactly
what an uninterrupted run does. ``last.pt`` is written at every epoch end and, after SIGINT/SIGTERM,
at the next optimiser-step boundary with the number of batches already consumed; resuming then
re-reads (and discards) those batches to put the data pipeline where it was and restores the RNGs.
"""

from __future__ import annotations

import random
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from actionrec.data.loader import SeededSamples, VideoLoader, collate_samples, seed_worker
from actionrec.engine import distributed as D
from actionrec.engine.config import Config


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""

    epoch: int = 0  # completed epochs
    batch_in_epoch: int = 0  # batches of the current epoch already trained on
    global_step: int = 0  # optimiser steps
    best_top1: float | None = None  # the best val_top1 seen
    best_value: float | None = None  # the best value of task.best_metric, which picks best.pt
    sums: dict[str, float] = field(default_factory=dict)  # the epoch's sums so far (EpochMeter)
    rng: list[dict[str, Any]] | None = None  # per rank, for a mid-epoch resume

    def state(self) -> dict[str, Any]:
        """The checkpoint entries of the progress (the RNG states are gathered by the caller)."""
        names = ("epoch", "batch_in_epoch", "global_step", "best_top1", "best_value")
        return {**{k: getattr(self, k) for k in names}, "sums": dict(self.sums)}

    @classmethod
    def from_state(cls, s: dict[str, Any], *, same_world: bool) -> Progress:
        """The progress saved in checkpoint ``s``; a different world size restarts its epoch."""
        return cls(
            epoch=s["epoch"],
            batch_in_epoch=s["batch_in_epoch"] if same_world else 0,
            global_step=s["global_step"],
            best_top1=s["best_top1"],
            best_value=s.get("best_value", s["best_top1"]),
            sums=sums_from(s["sums"]),
            rng=s["rng"] if same_world else None,
        )


def sums_from(saved: Any) -> dict[str, float]:
    """Epoch sums from a checkpoint: a mapping, or the [loss, correct, clips] list of older ones."""
    if isinstance(saved, dict):
        return {str(k): float(v) for k, v in saved.items()}
    loss, correct, count = saved
    return {"loss": loss, "correct": correct, "count": count} if count else {}


class StopFlag:
    """Set by SIGINT/SIGTERM; the loop checks it at optimiser-step boundaries."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        if threading_main():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)


def threading_main() -> bool:
    return threading.current_thread() is threading.main_thread()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_loader(dataset: Dataset, *, batch: int, info: D.DistInfo, cfg: Config, train: bool) -> DataLoader:
    """The loader of ``dataset``: its order a function of ``(seed, epoch)``, resumable mid-epoch."""
    sampler = D.EpochSampler(
        dataset,
        rank=info.rank,
        world_size=info.world_size,
        shuffle=train,
        seed=cfg.train.seed,
        pad=train,
        per_sample_seeds=train,
    )
    workers = cfg.train.num_workers
    return VideoLoader(  # collates the per-sample failure lists and hands them to the dataset's report
        SeededSamples(dataset) if train else dataset,
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_samples,
        worker_init_fn=seed_worker if workers else None,
        pin_memory=info.device.type == "cuda",
        drop_last=False,
        persistent_workers=False,
    )
