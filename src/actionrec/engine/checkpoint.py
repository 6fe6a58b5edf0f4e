"""Training checkpoints: atomic writes, weights-only contents, RNG capture, safetensors export.

A checkpoint is a plain dict that ``torch.load(path, weights_only=True)`` reads back: tensors,
numbers, strings, lists and dicts only. It holds the model, optimiser, scheduler and GradScaler
states, the position in training (``epoch``, ``batch_in_epoch``, ``global_step``), every random
number generator the loop touches (torch CPU/CUDA, numpy's global generator, Python's ``random``)
and the resolved config as a dict.

Files are written with :func:`actionrec.io.atomic_write` (temp file in the destination folder, fsync,
``os.replace``), so a crash at any moment leaves either the old or the new checkpoint, never a torn
one. ``atomic_write`` and ``remove_stale_temp_files`` are re-exported here for existing importers.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actionrec.errors import ActionrecError
from actionrec.io import atomic_write, remove_stale_temp_files

__all__ = [
    "atomic_write",
    "load_checkpoint",
    "remove_stale_temp_files",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "unwrap",
]


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically ``torch.save`` a checkpoint dict (see :func:`training_state`)."""
    return atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a missing or damaged file is an ActionrecError."""
    path = Path(path)
    if not path.is_file():
        raise ActionrecError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises RuntimeError/UnpicklingError/EOFError on damaged files
        raise ActionrecError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise ActionrecError(f"{path}: not an actionrec training checkpoint (no 'model' entry)")
    return state


def rng_state() -> dict[str, Any]:
    """Every global generator's state in weights-only-loadable form (tensors, ints, lists)."""
    np_state = np.random.get_state(legacy=False)
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": [py_version, list(py_internal), py_gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": n["bit_generator"],
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under DDP and ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model
