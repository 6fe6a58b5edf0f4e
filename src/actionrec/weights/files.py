"""Reading weights files of every supported kind, and fetching a URL only against a checksum.

The kind is told by the file's first bytes, not its name: safetensors (8-byte header length then
``{``), a zip (a ``torch.save`` archive, or numpy's ``.npz``), or a pickle (a numpy-only pickle such as
DeepMind's I3D weights, or a legacy ``torch.save`` file). Torch files are read with
``weights_only=True``, pickles with :mod:`actionrec.weights.safe_pickle`, ``.npz`` without pickles.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from actionrec.errors import WeightsError
from actionrec.io import atomic_write
from actionrec.weights.safe_pickle import load_numpy_pickle

CARD_KEY = "actionrec"
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def is_url(path: str | Path) -> bool:
    return str(path).startswith(("http://", "https://"))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: Path, sha256: str) -> None:
    actual = sha256_of(path)
    if actual.lower() != sha256.lower():
        raise WeightsError(f"{path}: sha256 {actual} does not match the expected {sha256}")


def cache_dir() -> Path:
    root = os.environ.get("ACTIONREC_CACHE") or Path.home() / ".cache" / "actionrec"
    return Path(root) / "weights"


def download(url: str, *, sha256: str | None) -> Path:
    """Download ``url`` into the cache (once) and return the local file, verified against ``sha256``."""
    if not sha256:
        raise WeightsError(f"{url}: refusing to download weights without a sha256 checksum (pass sha256=...)")
    target = cache_dir() / f"{sha256[:16]}-{Path(url.split('?')[0]).name or 'weights'}"
    if target.is_file() and sha256_of(target).lower() == sha256.lower():
        return target
    try:
        atomic_write(target, lambda f: _fetch_verified(url, sha256, f))
    except OSError as e:
        raise WeightsError(f"{url}: download failed ({e})") from None
    return target


def _fetch_verified(url: str, sha256: str, f: BinaryIO) -> None:
    """Stream ``url`` into ``f``, hashing on the way; a checksum mismatch raises before the file is kept."""
    h = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=60) as response:
        for block in iter(lambda: response.read(1 << 20), b""):
            h.update(block)
            f.write(block)
    if h.hexdigest().lower() != sha256.lower():
        raise WeightsError(f"{url}: sha256 {h.hexdigest()} does not match the expected {sha256}")


def _is_safetensors(head: bytes) -> bool:
    return len(head) > 8 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] > 0


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118  (safe_open has no __iter__)
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: truncated or damaged safetensors file ({e})") from None
    card = json.loads(meta[CARD_KEY]) if CARD_KEY in meta else None
    return tensors, card


def _read_torch(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError/UnpicklingError/EOFError on damaged or unsafe files
        raise WeightsError(f"{path}: not a readable torch weights file ({type(e).__name__}: {e})") from None


def _read_zip(path: Path) -> Any:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        raise WeightsError(f"{path}: truncated or damaged zip ({e})") from None
    if names and all(n.endswith(".npy") for n in names):
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except (ValueError, OSError, zipfile.BadZipFile) as e:
            raise WeightsError(f"{path}: damaged .npz ({e})") from None
    return _read_torch(path)


def read_raw(path: Path) -> tuple[Any, dict[str, Any] | None]:
    """The file's contents (tensors/arrays in nested containers) and our card if it has one."""
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    with path.open("rb") as f:
        head = f.read(16)
    if not head:
        raise WeightsError(f"{path}: empty file")
    if _is_safetensors(head):
        return _read_safetensors(path)
    if head.startswith(b"PK\x03\x04"):
        return _read_zip(path), None
    if head[:1] == b"\x80":
        obj = load_numpy_pickle(path)
        if isinstance(obj, int) and obj == _TORCH_LEGACY_MAGIC:  # legacy torch.save: first pickle is a magic
            return _read_torch(path), None
        return obj, None
    raise WeightsError(f"{path}: not a weights file (neither safetensors, a torch file, .npz nor a pickle)")


def flatten_tree(tree: Any, *, sep: str = "/", prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> one dict with ``sep``-joined keys (leaves: tensors/arrays/numbers)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten_tree(value, sep=sep, prefix=name))
        else:
            flat[name] = value
    return flat


def read_card(path: str | Path) -> dict[str, Any]:
    """The JSON card of one of our safetensors files (empty when the file has none)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    with path.open("rb") as f:
        if not _is_safetensors(f.read(16)):
            raise WeightsError(f"{path}: not a safetensors file, so it has no card")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise WeightsError(f"{path}: damaged safetensors file ({e})") from None
    return json.loads(meta[CARD_KEY]) if CARD_KEY in meta else {}
