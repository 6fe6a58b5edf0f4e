"""The DataLoader every engine uses: worker processes, deterministic seeding, failure bookkeeping.

:func:`build_loader` returns a :class:`VideoLoader`, a ``torch.utils.data.DataLoader`` that

- shuffles with a seeded generator (training) or a seeded ``DistributedSampler`` (``distributed``;
  call ``loader.set_epoch(epoch)`` every epoch so each epoch gets a new order on every rank);
- seeds ``random`` and ``numpy`` in every worker from torch's per-worker seed, so augmentation is
  reproducible for a given seed and number of workers;
- uses ``pin_memory`` when CUDA is available and keeps workers alive between epochs;
- drops the last incomplete batch when training;
- collates with :func:`collate_samples` and merges the ``"failed"`` entries of every batch into the
  main process's ``dataset.failures``, so ``dataset.report()`` at the end of an epoch counts the videos
  skipped in every worker.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate

from actionrec.data.streams import pad_boxes


def collate_samples(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Default-collate the samples; concatenate their ``"failed"`` lists (which vary in length).

    Samples marked ``"skipped"`` (unreadable, not replaced) are left out; a batch of nothing but
    those is ``{"failed": [...]}`` alone. Ragged ``"boxes"`` ``(T, N_i, 4)`` with their ``"boxes_mask"``
    are padded to the batch's largest N (see :func:`actionrec.data.streams.pad_boxes`).
    """
    failed = [f for sample in batch for f in sample.get("failed", ())]
    good = [{k: v for k, v in s.items() if k != "failed"} for s in batch if not s.get("skipped")]
    ragged = [(s.pop("boxes"), s.pop("boxes_mask")) for s in good if "boxes" in s]
    out = default_collate(good) if good else {}
    if ragged:  # per-frame boxes differ in number: zero-padded, with the mask of the real ones
        out["boxes"], out["boxes_mask"] = pad_boxes(ragged)
    out["failed"] = failed
    return out


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU, numpy's and ``random``'s global generators inside, restore them after."""
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


class SeededSamples(Dataset):
    """``dataset`` indexed by ``(index, seed)``: each sample is drawn with the global generators
    seeded from its own seed, so its augmentation is the same in any worker and after skipping the
    samples before it (exact mid-epoch resume without loading them again). Other attributes are the
    wrapped dataset's."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        with seeded(seed):
            return self.dataset[index]

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling in a worker): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed numpy and random from the seed torch gave this worker."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    torch.set_num_threads(1)  # workers run side by side; one thread each avoids oversubscription


class VideoLoader(DataLoader):
    """A DataLoader that hands the failures reported inside batches to the dataset (see module doc)."""

    def __iter__(self) -> Iterator[Any]:
        absorb = getattr(self.dataset, "absorb_failures", None)
        for batch in super().__iter__():
            if absorb is not None and isinstance(batch, dict) and batch.get("failed"):
                absorb(batch["failed"])
            yield batch

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle a distributed sampler for ``epoch`` (the seeded generator reshuffles by itself)."""
        if isinstance(self.sampler, DistributedSampler):
            self.sampler.set_epoch(epoch)


def build_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    train: bool,
    distributed: bool = False,
    seed: int = 0,
    num_workers: int | None = None,
    drop_last: bool | None = None,
    prefetch_factor: int = 2,
) -> VideoLoader:
    """A :class:`VideoLoader` over ``dataset``; ``num_workers`` defaults to ``dataset.num_workers`` (or 2).

    ``drop_last`` defaults to ``train``. With ``distributed`` the process group must be initialised;
    each rank then sees its own shard (test shards are padded to equal size by the sampler).
    """
    if num_workers is None:
        num_workers = int(getattr(dataset, "num_workers", 2))
    drop_last = train if drop_last is None else drop_last
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if distributed:
        sampler = DistributedSampler(dataset, shuffle=train, seed=seed, drop_last=drop_last)
    workers = num_workers > 0
    return VideoLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_samples,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        worker_init_fn=seed_worker if workers else None,
        generator=generator,
        persistent_workers=workers,
        prefetch_factor=prefetch_factor if workers else None,
    )
