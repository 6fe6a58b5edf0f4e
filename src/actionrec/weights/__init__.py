"""Loading and saving weights: our safetensors files (with a JSON card), torch state dicts and training
checkpoints, torchvision state dicts, DeepMind's I3D pickle / TF variable names and pytorch-i3d files.

``load_weights(model, path)`` tells the layout from the file (see :mod:`actionrec.weights.files` and
:mod:`actionrec.weights.convert`); every problem — missing or damaged file, a file of another
architecture, a classifier of another size, a pickle that names anything but numpy arrays — is one
:class:`~actionrec.errors.WeightsError` line. ``save_weights`` writes safetensors plus the card
``{"model", "num_classes", "labels", "preprocessing", ...}`` under the metadata key ``"actionrec"``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from actionrec.errors import WeightsError
from actionrec.io import atomic_write
from actionrec.weights.convert import (
    detect_layout,
    few,
    match_state_dict,
    prepare_state_dict,
    strip_wrapper_prefixes,
    to_tensor_dict,
)
from actionrec.weights.files import CARD_KEY, download, is_url, read_card, read_raw, verify_sha256

__all__ = [
    "LoadResult",
    "WeightsError",
    "detect_layout",
    "load_weights",
    "read_card",
    "read_state_dict",
    "save_weights",
]


@dataclass
class LoadResult:
    """What ``load_weights`` did: the layout it read and what it left out (only with ``strict=False``)."""

    path: str
    layout: str
    card: dict[str, Any] | None = None
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # present in both, other shape (e.g. the classifier)


def _local_path(path_or_url: str | Path, sha256: str | None) -> Path:
    if is_url(path_or_url):
        return download(str(path_or_url), sha256=sha256)
    path = Path(path_or_url).expanduser()
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    if sha256:
        verify_sha256(path, sha256)
    return path


def read_state_dict(
    model: nn.Module, path_or_url: str | Path, *, sha256: str | None = None
) -> tuple[dict[str, torch.Tensor], str, dict[str, Any] | None]:
    """(state dict converted to ``model``'s names, detected layout, card) without loading it."""
    path = _local_path(path_or_url, sha256)
    raw, card = read_raw(path)
    layout = detect_layout(strip_wrapper_prefixes(to_tensor_dict(raw, name=str(path))))
    if card is not None:
        layout = "actionrec"
    return prepare_state_dict(model, raw, name=str(path)), layout, card


def load_weights(
    model: nn.Module, path_or_url: str | Path, *, sha256: str | None = None, strict: bool = True
) -> LoadResult:
    """Load a local file (or a URL, only with ``sha256``) into ``model``, converting public layouts.

    ``strict=False`` loads every tensor whose key and shape match and reports the rest in the result
    (a classifier of another size is skipped, leaving the model's own); it still refuses a file of
    which nothing matches.
    """
    sd, layout, card = read_state_dict(model, path_or_url, sha256=sha256)
    name = str(path_or_url)
    match = match_state_dict(model, sd)
    if strict and not match.exact:
        raise WeightsError(f"{name}: {_describe(match, model, card)}")
    skipped = set(match.mismatched)
    usable = {k: v for k, v in sd.items() if k not in skipped and k not in match.unexpected}
    if not any(not k.endswith("num_batches_tracked") for k in usable):
        raise WeightsError(
            f"{name}: nothing in it fits {type(model).__name__}: {_describe(match, model, card)}"
        )
    model_sd = model.state_dict()
    with torch.no_grad():
        for key, value in usable.items():
            model_sd[key].copy_(value.to(model_sd[key].dtype))
    return LoadResult(name, layout, card, match.missing, match.unexpected, sorted(skipped))


def _describe(match: Any, model: nn.Module, card: dict[str, Any] | None) -> str:
    if match.classes is not None and not (match.missing or match.unexpected):
        n_ckpt, n_model = match.classes
        return (
            f"checkpoint has {n_ckpt} classes, model has {n_model}: create the model with "
            f"num_classes={n_ckpt}, or load with strict=False and call model.reset_classifier({n_model})"
        )
    what = f" (the file holds {card['model']!r})" if card and card.get("model") else ""
    parts = [f"does not fit {getattr(model, 'model_name', type(model).__name__)}{what}"]
    if match.missing:
        parts.append(f"{len(match.missing)} missing keys e.g. {few(match.missing)}")
    if match.unexpected:
        parts.append(f"{len(match.unexpected)} unexpected keys e.g. {few(match.unexpected)}")
    if match.mismatched:
        parts.append(f"{len(match.mismatched)} shape mismatches e.g. {few(match.mismatched)}")
    return "; ".join(parts)


def _preprocessing(model: nn.Module) -> dict[str, Any] | None:
    """The model card's preprocessing in the one schema (:mod:`actionrec.data.preprocessing`)."""
    from actionrec.data.preprocessing import Preprocessing

    card = getattr(model, "card", None)
    return Preprocessing.from_card(card).to_dict() if card is not None else None


def save_weights(
    model: nn.Module,
    path: str | Path,
    *,
    labels: Sequence[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model``'s state dict as safetensors with the JSON card, atomically (temp file + rename)."""
    from safetensors.torch import save

    num_classes = getattr(model, "num_classes", None)
    if labels is not None and num_classes is not None and len(labels) != num_classes:
        raise WeightsError(f"{path}: {len(labels)} labels given for a model with {num_classes} classes")
    card = {
        "model": getattr(model, "model_name", type(model).__name__),
        "num_classes": num_classes,
        "labels": list(labels) if labels is not None else None,
        "preprocessing": _preprocessing(model),
        **({"builder_kwargs": _jsonable(kw)} if (kw := getattr(model, "builder_kwargs", {})) else {}),
        **(extra or {}),
    }
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    blob = save(tensors, metadata={CARD_KEY: json.dumps(card, sort_keys=True)})
    return atomic_write(path, lambda f: f.write(blob))


def _jsonable(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Builder arguments as JSON values (tuples become lists); anything else is refused by name."""
    out = {}
    for k, v in kwargs.items():
        v = list(v) if isinstance(v, tuple) else v
        try:
            json.dumps(v)
        except TypeError:
            raise WeightsError(f"builder argument {k}={v!r} cannot be saved in the weights card") from None
        out[k] = v
    return out
