"""One model registry: ``@register_model`` on small builders, ``create_model`` and ``list_models``.

Every builder is a keyword-only function ``builder(*, num_classes: int, **overrides) -> nn.Module``
registered together with a :class:`ModelCard` that records where the model comes from (paper,
section), what input it expects and the published numbers it is checked against.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from actionrec.errors import ActionrecError, ConfigError

# Normalisation presets: (mean, std) applied to pixels scaled to [0, 1].
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "kinetics": ((0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)),
    "minus_one_one": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # x / 255 * 2 - 1
    "c3d": ((0.4, 0.4, 0.4), (1.0, 1.0, 1.0)),
    "flow": ((0.5, 0.5), (0.5, 0.5)),
}


@dataclass(frozen=True)
class ModelCard:
    """What a model is, what it eats and what its paper reports.

    ``streams`` are the sample's streams the model consumes (see :mod:`actionrec.data.streams`): the
    dataset builds exactly these, and ``forward`` takes the one stream's tensor, or a dict of them
    when there are several (``{"rgb": clip, "flow": clip}``). ``future_frames`` sizes the ``future``
    stream. ``input_kind`` says what ``forward`` takes: ``"clip"`` a (B, C, T, H, W) tensor;
    ``"slowfast"`` one fast-rate clip or a ``(slow, fast)`` tuple; ``"two_stream"`` a dict of streams.
    ``sampling`` is ``"dense"`` (clip_len x frame_interval), ``"segment"`` (TSN segments of
    ``snippet_len`` consecutive frames, ``num_frames / snippet_len`` of them) or ``"fps"`` (the whole
    video resampled to ``fps`` and cut at ``max_frames``).
    """

    paper: str
    arxiv: str
    section: str = ""
    input_kind: str = "clip"
    streams: tuple[str, ...] = ("rgb",)
    future_frames: int = 0
    in_channels: int = 3
    num_frames: int = 16
    frame_interval: int = 1
    fps: float | None = None
    max_frames: int | None = None
    sampling: str = "dense"
    snippet_len: int = 1
    crop_size: int = 112
    short_side: int = 128
    normalization: str = "kinetics"
    alpha: int = 1  # SlowFast frame-rate ratio (fast frames = num_frames, slow = num_frames // alpha)
    published_params_m: float | None = None
    published_gmacs: float | None = None
    published_input: str = ""  # the input the published numbers refer to, e.g. "3x16x112x112"
    published_top1: float | None = None
    published_dataset: str = ""
    notes: str = ""

    @property
    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return NORMALIZATION[self.normalization]

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class _Entry:
    name: str
    builder: Callable[..., nn.Module]
    card: ModelCard
    default_kwargs: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, _Entry] = {}


def register_model(card: ModelCard) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a builder under its function name with its card."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if fn.__name__ in _REGISTRY:
            raise ValueError(f"model {fn.__name__!r} registered twice")
        _REGISTRY[fn.__name__] = _Entry(fn.__name__, fn, card)
        return fn

    return wrap


def _ensure_loaded() -> None:
    import actionrec.models  # noqa: F401  (importing the package registers every family)


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered models matching a shell-style pattern, sorted."""
    _ensure_loaded()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_card(name: str) -> ModelCard:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise ActionrecError(f"unknown model {name!r}; `actionrec models` lists them")
    return _REGISTRY[name].card


def create_model(
    name: str,
    *,
    num_classes: int = 400,
    weights: str | Path | None = None,
    sha256: str | None = None,
    strict: bool = True,
    **overrides: Any,
) -> nn.Module:
    """Build a registered model; optionally load weights from a local file (or a URL with sha256).

    The weights layout (our safetensors, a torch state dict, DeepMind's I3D pickle, ...) is detected
    from the file; see :mod:`actionrec.weights`. The card is attached as ``model.card`` and the
    architecture ``overrides`` as ``model.builder_kwargs`` (saved with the weights, so a network built
    with ``stem_pool=True`` is rebuilt with it).
    """
    card = get_card(name)
    try:
        model = _REGISTRY[name].builder(num_classes=num_classes, **overrides)
    except TypeError as e:
        if "unexpected keyword argument" not in str(e):
            raise
        raise ConfigError(f"model {name!r}: {str(e).split(': ', 1)[-1]}") from None
    model.card = card  # type: ignore[assignment]
    model.model_name = name  # type: ignore[assignment]
    # the architecture arguments, so that saved weights rebuild the same network (dropout is training-only)
    model.builder_kwargs = {k: v for k, v in overrides.items() if k != "dropout"}  # type: ignore[assignment]
    if weights is not None:
        from actionrec.weights import load_weights

        load_weights(model, weights, sha256=sha256, strict=strict)
    return model


def example_input(
    name_or_card: str | ModelCard,
    *,
    batch: int = 1,
    device: str | torch.device = "cpu",
    num_frames: int | None = None,
    size: int | None = None,
) -> Any:
    """A zero input of the model's default shape (tensor, tuple or dict as its ``input_kind`` says)."""
    card = get_card(name_or_card) if isinstance(name_or_card, str) else name_or_card
    t = num_frames or card.num_frames
    s = size or card.crop_size

    def clip(channels: int, frames: int) -> torch.Tensor:
        return torch.zeros(batch, channels, frames, s, s, device=device)

    if card.input_kind == "clip":
        return clip(card.in_channels, t)
    if card.input_kind == "slowfast":
        return (clip(3, t // card.alpha), clip(3, t))
    if card.input_kind == "two_stream":
        return {"rgb": clip(3, t), "flow": clip(2, t)}
    raise ValueError(f"unknown input_kind {card.input_kind!r}")
