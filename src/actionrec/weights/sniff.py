"""Telling from a checkpoint's contents which model it is for and how many classes it has.

Our own safetensors files name their model in the card. DeepMind and pytorch-i3d checkpoints are
recognised by their layout (:func:`actionrec.weights.convert.detect_layout`) and are I3D: RGB or flow,
told by the stem convolution's input channels. A plain state dict names no model, so the caller must.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from actionrec.errors import ActionrecError

if TYPE_CHECKING:
    from torch import nn

    from actionrec.weights import LoadResult


def infer_model_name(src: Path) -> str:
    """The registered model ``src`` holds weights for; an ActionrecError when it cannot be told."""
    return infer_model(src)[0]


def infer_model(src: Path) -> tuple[str, dict[str, Any]]:
    """(registered model, builder arguments) that ``src`` holds weights for: our card's, a TimeSformer's
    read from its shapes (:func:`actionrec.weights.timesformer.infer_timesformer_model`), or I3D's."""
    from actionrec.weights.convert import detect_layout, strip_wrapper_prefixes, to_tensor_dict
    from actionrec.weights.files import read_raw
    from actionrec.weights.timesformer import infer_timesformer_model

    raw, card = read_raw(src)
    if card and card.get("model"):
        return str(card["model"]), dict(card.get("builder_kwargs") or {})
    sd = strip_wrapper_prefixes(to_tensor_dict(raw, name=str(src)))
    timesformer = infer_timesformer_model(sd)
    if timesformer is not None:
        return timesformer
    layout = detect_layout(sd)
    if layout == "state-dict":
        raise ActionrecError(f"{src}: cannot tell which model this checkpoint is for; pass --model NAME")
    stems = [v for k, v in sd.items() if "Conv3d_1a_7x7" in k and v.ndim == 5]
    flow = bool(stems) and 2 in (stems[0].shape[1], stems[0].shape[3])  # torch (O,I,..) or TF (..,I,O)
    return ("i3d_inception_v1_flow" if flow else "i3d_inception_v1"), {}


def model_for_checkpoint(
    name: str, src: Path, overrides: dict[str, Any] | None = None
) -> tuple[nn.Module, LoadResult]:
    """Model ``name`` (with builder ``overrides``) built with the checkpoint's class count and loaded
    strictly: (model, LoadResult)."""
    from actionrec.models.registry import create_model
    from actionrec.weights import load_weights, read_state_dict
    from actionrec.weights.convert import match_state_dict

    overrides = overrides or {}
    model = create_model(name, **overrides)
    sd, _, _ = read_state_dict(model, src)
    classes = match_state_dict(model, sd).classes
    if classes is not None:
        model = create_model(name, num_classes=classes[0], **overrides)
    result = load_weights(model, src, strict=True)
    return model, result
