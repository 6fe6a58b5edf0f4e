"""One precision resolver for training and inference: ``auto`` follows the hardware it runs on.

* CPU: bfloat16 autocast only where the CPU computes bf16 products natively (Intel AMX ``amx_bf16`` or
  ``avx512_bf16``) *and* PyTorch dispatches to its AVX-512 kernels there. Elsewhere bf16 is emulated:
  on an AVX2-only AMD EPYC a bf16 training step of ``r2plus1d_small`` ran 20x slower than fp32 (0.6
  against 12.2 clips/s), so ``auto`` is fp32 there.
* CUDA: bfloat16 where the GPU supports it (Ampere and later), float16 otherwise.
* Any other device: float32.

``ATEN_CPU_CAPABILITY=avx2`` (PyTorch's own switch) makes an AVX-512 machine report AVX2, and ``auto``
then resolves to fp32 as it would on an AVX2-only CPU.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import torch

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@functools.lru_cache(maxsize=4)
def _cpuinfo(field: str) -> str:
    """The first ``field`` line of ``/proc/cpuinfo`` ("" where there is none: not Linux)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return ""
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(field)), "")


def cpu_flags() -> list[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where there is none)."""
    return _cpuinfo("flags").split()


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 matrix products in hardware and PyTorch uses its AVX-512 kernels."""
    capability = str(torch.backends.cpu.get_cpu_capability()).upper()
    if "AVX512" not in capability and "AMX" not in capability:
        return False
    flags = cpu_flags()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def cpu_info() -> dict[str, object]:
    """What a speed figure must name: the CPU model, PyTorch's kernel capability, bf16 / AMX flags, cores."""
    import os
    import platform

    model = _cpuinfo("model name") or platform.processor() or platform.machine()
    flags = set(cpu_flags())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "model": model,
        "capability": str(torch.backends.cpu.get_cpu_capability()),
        "amx_bf16": "amx_bf16" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "native_bf16": cpu_has_fast_bf16(),
        "cores": cores,
    }


def cpu_label() -> str:
    """One line naming the CPU, e.g. ``Intel(R) Xeon(R) Processor, AVX512 + AMX-BF16, 2 cores``."""
    info = cpu_info()
    extras = [n for n, key in (("AMX-BF16", "amx_bf16"), ("AVX512-BF16", "avx512_bf16")) if info[key]]
    isa = " + ".join([str(info["capability"]), *extras])
    return f"{info['model']}, {isa}, {info['cores']} cores"


def resolve_precision(precision: str = "auto", device: str | torch.device = "cpu") -> str:
    """``"fp32"``, ``"bf16"`` or ``"fp16"``: ``"auto"`` becomes what ``device`` runs fastest and well."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    kind = torch.device(device).type
    if kind == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if kind == "cpu":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return "fp32"


def autocast_dtype(precision: str, device: str | torch.device = "cpu") -> torch.dtype | None:
    """The autocast dtype ``precision`` resolves to on ``device`` (``None`` for fp32: no autocast)."""
    return _DTYPES[resolve_precision(precision, device)]
