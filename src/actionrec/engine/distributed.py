"""Data-parallel training under ``torchrun`` (DistributedDataParallel).

``torchrun --nproc_per_node=N -m actionrec train ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them and joins the process group
(NCCL when CUDA is available, gloo on CPU). Multi-node runs use torchrun's own ``--nnodes``,
``--node_rank`` and ``--rdzv_*`` flags; nothing here changes. Without those variables every function
degrades to the single-process case, so the training loop calls them unconditionally.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Sampler


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank, the world size, its local rank and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group described by torchrun's environment variables (if any)."""
    use_cuda = torch.cuda.is_available() and device != "cpu"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(device=torch.device("cuda" if use_cuda else "cpu"))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method="env://")
    dev = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum a few numbers over all ranks (identity in a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def gather_objects(obj: object) -> list:
    """Every rank's ``obj`` in rank order (``[obj]`` in a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def per_rank_batch(global_batch: int, world_size: int) -> int:
    """The batch each rank loads so that the ranks together make ``global_batch``."""
    if global_batch % world_size:
        raise ValueError(f"batch_size {global_batch} is not divisible by the world size {world_size}")
    return global_batch // world_size


class EpochSampler(Sampler[int]):
    """This rank's share of a permutation that depends only on ``(seed, epoch)``.

    The permutation of the whole dataset is drawn from a generator seeded with ``seed`` and
    ``epoch`` (identity order when ``shuffle`` is false), padded by wrapping round to a multiple of
    ``world_size`` and dealt out rank by rank (rank ``r`` gets positions ``r, r + W, r + 2W, ...``),
    as torch's DistributedSampler does (``pad=False`` deals out the unpadded order instead).
    Because the order is a pure function of ``(seed, epoch)``, a resumed run sees exactly the batches
    an uninterrupted run would; with ``shuffle=False`` the global batches of a W-process run are the
    same as a single-process run's. ``set_start(k)`` skips this rank's first ``k`` positions (a
    mid-epoch resume: nothing already trained on is loaded again). With ``per_sample_seeds`` it
    yields ``(index, seed)`` with a seed that depends only on ``(seed, epoch, index)``, for
    :class:`~actionrec.data.loader.SeededSamples`, so a sample's random draws do not depend on which
    worker loads it or on what it loaded before.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        pad: bool = True,
        per_sample_seeds: bool = False,
    ) -> None:
        self.n = len(dataset)  # type: ignore[arg-type]
        self.rank, self.world_size, self.shuffle, self.seed, self.pad = rank, world_size, shuffle, seed, pad
        self.per_sample_seeds = per_sample_seeds
        self.epoch, self.start = 0, 0
        self.num_samples = -(-self.n // world_size) if pad else len(range(rank, self.n, world_size))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_start(self, start: int) -> None:
        """Begin the next iteration at this rank's position ``start`` (0: the whole epoch)."""
        self.start = start

    def order(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch, 0x5A))
            idx = torch.randperm(self.n, generator=g).tolist()
        else:
            idx = list(range(self.n))
        if not self.pad:  # evaluation: every sample exactly once over all ranks
            return idx[self.rank :: self.world_size]
        total = self.num_samples * self.world_size
        idx += (idx * (total // max(1, self.n) + 1))[: total - self.n]  # wrap round to a multiple of W
        return idx[self.rank : total : self.world_size]

    def __iter__(self) -> Iterator[Any]:
        order = self.order()[self.start :]
        if not self.per_sample_seeds:
            return iter(order)
        return iter([(i, mix_seed(self.seed, self.epoch, i, 0x5EED)) for i in order])

    def __len__(self) -> int:
        return self.num_samples - self.start


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from several integers (splitmix-style), so (seed, epoch) pairs never collide."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF
