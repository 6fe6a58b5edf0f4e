"""TimeSformer's five attention schemes at one width: time and peak memory of inference and of one
training step, at batch 1, per clip length (the paper's §4.1 / Fig. 3 comparison, measured here).

Attention runs through ``F.scaled_dot_product_attention``, whose fused CPU kernel never holds the
N x N attention matrix; the ``joint`` scheme is also run on PyTorch's reference ("math") kernel, which
does, so that the quadratic memory the paper's Fig. 3 shows for joint attention is measured too.

Each pass of each row runs in a fresh interpreter: the peak is the process's resident-memory growth
over its first call (model and clip already built), which a process that has run other models would
hide in memory its allocator keeps.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from actionrec.bench.timing import PeakMemory
from actionrec.layers.space_time_attention import SCHEMES
from actionrec.models.complexity import count_macs
from actionrec.models.registry import create_model


@contextlib.contextmanager
def _kernel(name: str) -> Iterator[None]:
    if name == "math":
        with sdpa_kernel(SDPBackend.MATH):
            yield
    else:
        yield


def _measure(fn: Any, repeats: int) -> tuple[float, float]:
    """(median seconds of ``repeats`` calls after a warm-up call, peak memory growth of that warm-up, MiB)."""
    with PeakMemory(torch.device("cpu")) as mem:
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2], mem.peak_bytes / 2**20


def _run_pass(
    name: str, frames: int, size: int, kernel: str, train: bool, repeats: int, threads: int
) -> tuple[float, float]:
    """(seconds, peak MiB) of inference or one training step of a fresh model (in a child process)."""
    torch.set_num_threads(threads)
    model = create_model(name, num_classes=400, num_frames=frames, img_size=size).train(train)
    clip = torch.randn(1, 3, frames, size, size)

    def infer() -> None:
        with torch.inference_mode(), _kernel(kernel):
            model(clip)

    def train_step() -> None:
        model.zero_grad(set_to_none=True)
        with _kernel(kernel):
            model(clip).sum().backward()

    return _measure(train_step if train else infer, repeats)


def scheme_gmacs(scheme: str, *, frames: int, size: int = 224, width: str = "base") -> tuple[float, int]:
    """(GMACs of one clip, patch grid side) of a scheme, counted on the meta device."""
    with torch.device("meta"):
        model = create_model(
            f"timesformer_{width}_{scheme}", num_classes=400, num_frames=frames, img_size=size
        )
    gmacs = count_macs(model, torch.zeros(1, 3, frames, size, size, device="meta")) / 1e9
    return gmacs, size // model.patch_embed.patch_size


def bench_scheme(
    scheme: str, *, frames: int, size: int = 224, width: str = "base", kernel: str = "fused", repeats: int = 1
) -> dict[str, Any]:
    """One row: the scheme's tokens, GMACs, and seconds / peak MiB of inference and a training step (fp32)."""
    name = f"timesformer_{width}_{scheme}"
    gmacs, grid = scheme_gmacs(scheme, frames=frames, size=size, width=width)
    ctx = multiprocessing.get_context("spawn")
    args = (name, frames, size, kernel)
    with ctx.Pool(1) as pool:
        infer_s, infer_mb = pool.apply(_run_pass, (*args, False, repeats, torch.get_num_threads()))
    with ctx.Pool(1) as pool:
        train_s, train_mb = pool.apply(_run_pass, (*args, True, repeats, torch.get_num_threads()))
    return {
        "scheme": scheme,
        "kernel": kernel,
        "input": f"3x{frames}x{size}x{size}",
        "tokens": 1 + grid * grid * frames,
        "gmacs": gmacs,
        "infer_s": infer_s,
        "infer_peak_mb": infer_mb,
        "train_s": train_s,
        "train_peak_mb": train_mb,
    }


def bench_attention(
    *, frames: tuple[int, ...] = (8, 16), size: int = 224, width: str = "base", repeats: int = 1
) -> list[dict[str, Any]]:
    """Every scheme (and joint on the math kernel) at every clip length."""
    rows = []
    for t in frames:
        for scheme, kernel in [(s, "fused") for s in SCHEMES] + [("joint", "math")]:
            print(f"bench: timesformer_{width}_{scheme} ({kernel}) at {t} frames", file=sys.stderr)
            row = bench_scheme(scheme, frames=t, size=size, width=width, kernel=kernel, repeats=repeats)
            rows.append(row)
    return rows
