"""From whatever a weights file holds to a state dict of the model at hand.

Steps: unwrap a training checkpoint (``{"model": state_dict, ...}``) or ``{"state_dict": ...}``;
flatten nested dicts (DeepMind's pickle) with ``/``; turn numpy arrays into tensors; drop the
``module.`` / ``_orig_mod.`` prefixes of DDP and ``torch.compile``; let the model convert a
family-specific layout through its ``convert_state_dict(sd) -> sd`` hook (I3D reads DeepMind and
pytorch-i3d layouts); inflate 4-D image kernels that meet 5-D parameters (2D checkpoints into
:func:`actionrec.layers.inflate.inflate`-d models). Then :func:`match_state_dict` compares keys and
shapes and names what is missing, unexpected, or a classifier of another size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from actionrec.errors import WeightsError
from actionrec.layers.inflate import inflate_weight
from actionrec.weights.deepmind import detect_i3d_layout
from actionrec.weights.files import flatten_tree

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def unwrap_checkpoint(obj: Any) -> Any:
    """A training checkpoint's model state (``"model"`` or ``"state_dict"`` entry), else ``obj``."""
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_state"):
            if isinstance(obj.get(key), dict):
                return obj[key]
    return obj


def to_tensor_dict(obj: Any, *, name: str) -> dict[str, torch.Tensor]:
    """Flatten nested dicts and convert numpy arrays; anything that is not a tensor dict is an error."""
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"{name}: holds {type(obj).__name__}, not a dict of tensors")
    out: dict[str, torch.Tensor] = {}
    for key, value in flatten_tree(unwrap_checkpoint(obj)).items():
        if isinstance(value, np.ndarray | np.generic):
            value = torch.from_numpy(np.ascontiguousarray(value))
        if isinstance(value, torch.Tensor):
            out[key] = value
    if not out:
        raise WeightsError(f"{name}: contains no tensors")
    return out


def strip_wrapper_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in _WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in state_dict):
            state_dict = {k[len(prefix) :]: v for k, v in state_dict.items()}
    return state_dict


def detect_layout(state_dict: dict[str, Any]) -> str:
    """``"deepmind-flax"``, ``"deepmind-tf"``, ``"pytorch-i3d"``, ``"timesformer-{official,hf,mmaction}"``
    or ``"state-dict"`` (ours / torchvision)."""
    from actionrec.weights.timesformer import detect_timesformer_layout

    timesformer = detect_timesformer_layout(state_dict)
    return detect_i3d_layout(state_dict) or (timesformer and f"timesformer-{timesformer}") or "state-dict"


def _inflate_2d_kernels(
    model_sd: dict[str, torch.Tensor], sd: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    out = dict(sd)
    for key, value in sd.items():
        target = model_sd.get(key)
        if (
            target is not None
            and value.ndim == 4
            and target.ndim == 5
            and target.shape[:2] == value.shape[:2]
            and target.shape[3:] == value.shape[2:]
        ):
            out[key] = inflate_weight(value, target.shape[2], method="mean")
    return out


def prepare_state_dict(model: nn.Module, raw: Any, *, name: str) -> dict[str, torch.Tensor]:
    """``raw`` file contents -> a state dict named like ``model``'s (not yet checked)."""
    sd = strip_wrapper_prefixes(to_tensor_dict(raw, name=name))
    hook = getattr(model, "convert_state_dict", None)
    if callable(hook):
        sd = hook(sd)
    elif (layout := detect_layout(sd)) != "state-dict":
        family = "a TimeSformer" if layout.startswith("timesformer") else "an I3D"
        raise WeightsError(
            f"{name}: a {layout} checkpoint cannot be loaded into {type(model).__name__}; "
            f"it holds {family} network"
        )
    return _inflate_2d_kernels(model.state_dict(), sd)


@dataclass
class Match:
    """How a state dict lines up with a model."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # same key, other shape
    classes: tuple[int, int] | None = None  # (checkpoint, model) when only the classifier differs

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)


def _ignorable(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def match_state_dict(model: nn.Module, sd: dict[str, torch.Tensor]) -> Match:
    model_sd = model.state_dict()
    match = Match(
        missing=[k for k in model_sd if k not in sd and not _ignorable(k)],
        unexpected=[k for k in sd if k not in model_sd and not _ignorable(k)],
        mismatched=[k for k in sd if k in model_sd and sd[k].shape != model_sd[k].shape],
    )
    match.classes = _classifier_mismatch(model, model_sd, sd, match.mismatched)
    return match


def _classifier_mismatch(
    model: nn.Module, model_sd: dict[str, torch.Tensor], sd: dict[str, torch.Tensor], mismatched: list[str]
) -> tuple[int, int] | None:
    """(checkpoint classes, model classes) when every shape mismatch is in the first dim of the classifier."""
    n_model = getattr(model, "num_classes", None)
    if not mismatched or not isinstance(n_model, int):
        return None
    firsts = {sd[k].shape[0] for k in mismatched}
    same_rest = all(sd[k].shape[1:] == model_sd[k].shape[1:] for k in mismatched)
    if len(firsts) == 1 and same_rest and all(model_sd[k].shape[0] == n_model for k in mismatched):
        return firsts.pop(), n_model
    return None


def few(keys: list[str], n: int = 4) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f" (+{len(keys) - n} more)" if len(keys) > n else "")
