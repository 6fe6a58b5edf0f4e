"""Parameter and multiply-accumulate counts, measured on the meta device (no compute, no memory).

Besides the raw counters, :func:`measure` reports one registered model's measured parameters (M) and
GMACs beside its card's published numbers: the model is built on the meta device where its builder
allows it, with the classifier of the dataset the numbers refer to, and MACs are counted at the input
the published numbers refer to (``card.published_input``), or at the model's default input when the
card has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from actionrec.engine.fast import to_device
from actionrec.errors import ConfigError
from actionrec.models.registry import ModelCard, create_model, example_input, get_card


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, example: Any, *, device: str = "meta") -> int:
    """Multiply-accumulates of one forward pass (FLOPs / 2, as the papers report GMACs).

    Runs on the meta device by default so that even 100-GMAC models cost milliseconds. The model is
    copied, never moved.
    """
    import copy

    m = copy.deepcopy(model).to(device).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        m(to_device(example, device))
    return counter.get_total_flops() // 2


# Classes of the datasets the published numbers are given for (the classifier's size changes the params).
DATASET_CLASSES = {
    "kinetics400": 400,
    "kinetics600": 600,
    "kinetics700": 700,
    "ucf101": 101,
    "hmdb51": 51,
    "sports1m": 487,
    "ssv2": 174,
    "imagenet": 1000,
}


@dataclass(frozen=True)
class InputSpec:
    """A clip shape ``channels x frames x height x width`` as cards write it ("3x16x112x112")."""

    channels: int | None
    frames: int
    height: int
    width: int

    def __str__(self) -> str:
        dims = (self.frames, self.height, self.width)
        return "x".join(str(d) for d in ((self.channels, *dims) if self.channels else dims))


_SPEC = re.compile(r"(?<![\d.])(\d+)(?:\s*[x×]\s*(\d+)){2,3}(?![\d.])")


def parse_input_spec(spec: str) -> InputSpec:
    """``"3x16x112x112"`` -> InputSpec(3, 16, 112, 112); ``"16x112x112"`` leaves the channels to the card.

    A spec naming several clips ("slow 3x4x224x224 + fast 3x32x224x224", "rgb ... + flow ...") gives the
    one with the most frames: the fast pathway of SlowFast, the shared clip length of two streams.
    """
    shapes = []
    for m in _SPEC.finditer(spec):
        dims = [int(d) for d in re.split(r"\s*[x×]\s*", m.group(0))]
        if min(dims) > 0:
            shapes.append(InputSpec(*dims) if len(dims) == 4 else InputSpec(None, *dims))
    if not shapes:
        raise ConfigError(f"bad input spec {spec!r}: expected CxTxHxW such as 3x16x112x112")
    return max(shapes, key=lambda s: s.frames)


def default_input_spec(card: ModelCard) -> InputSpec:
    """The clip the model takes by default: its card's channels, frames and crop size."""
    return InputSpec(card.in_channels, card.num_frames, card.crop_size, card.crop_size)


def _with_width(x: Any, width: int) -> Any:
    if isinstance(x, torch.Tensor):
        return x.new_zeros(*x.shape[:-1], width)
    if isinstance(x, tuple | list):
        return type(x)(_with_width(v, width) for v in x)
    if isinstance(x, dict):
        return {k: _with_width(v, width) for k, v in x.items()}
    return x


def input_for_spec(card: ModelCard, spec: InputSpec, *, batch: int = 1, device: str = "cpu") -> Any:
    """The model's example input (tensor, tuple or dict) with the frames and size of ``spec``.

    For SlowFast cards ``frames`` is the fast pathway's; channels follow the card's ``input_kind``.
    """
    x = example_input(card, batch=batch, device=device, num_frames=spec.frames, size=spec.height)
    return x if spec.width == spec.height else _with_width(x, spec.width)


def measurement_spec(card: ModelCard) -> InputSpec:
    """The input the card's published numbers refer to, else its default input."""
    return parse_input_spec(card.published_input) if card.published_input else default_input_spec(card)


def num_classes_for(card: ModelCard) -> int:
    """The classifier size the published numbers assume: "Kinetics-400" -> 400; 400 when unknown."""
    text = re.sub(r"[-_ ]", "", card.published_dataset.lower())
    return next((n for key, n in DATASET_CLASSES.items() if key in text), 400)


def build_for_counting(name: str, *, num_classes: int) -> nn.Module:
    """Build on the meta device (instant even for 100M-parameter models); fall back to the CPU."""
    try:
        with torch.device("meta"):
            return create_model(name, num_classes=num_classes)
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        return create_model(name, num_classes=num_classes)


@dataclass
class ModelReport:
    """One model's measured and published complexity; ``error`` says why when it could not be measured."""

    name: str
    paper: str
    input: str
    params_m: float | None = None
    gmacs: float | None = None
    published_params_m: float | None = None
    published_gmacs: float | None = None
    published_input: str = ""
    params_diff_pct: float | None = None
    gmacs_diff_pct: float | None = None
    published_top1: float | None = None
    published_dataset: str = ""
    error: str = ""


def _rel_diff(measured: float | None, published: float | None) -> float | None:
    if measured is None or not published:
        return None
    return round(100.0 * (measured - published) / published, 2)


def measure(name: str) -> ModelReport:
    """Measured params (M) and GMACs of one registered model, with its card's published numbers."""
    card = get_card(name)
    spec = measurement_spec(card)
    report = ModelReport(
        name=name,
        paper=card.paper,
        input=str(spec),
        published_params_m=card.published_params_m,
        published_gmacs=card.published_gmacs,
        published_input=card.published_input,
        published_top1=card.published_top1,
        published_dataset=card.published_dataset,
    )
    model = build_for_counting(name, num_classes=num_classes_for(card))
    report.params_m = round(count_params(model) / 1e6, 3)
    report.gmacs = round(count_macs(model, input_for_spec(card, spec, device="meta")) / 1e9, 3)
    report.params_diff_pct = _rel_diff(report.params_m, card.published_params_m)
    report.gmacs_diff_pct = _rel_diff(report.gmacs, card.published_gmacs)
    return report


def measure_models(names: list[str]) -> list[ModelReport]:
    """:func:`measure` each model; one that fails gets a report carrying the error's first line instead.

    One broken builder must not hide the others, so every exception is caught here and reported.
    """
    reports = []
    for name in names:
        try:
            reports.append(measure(name))
        except Exception as e:
            card = get_card(name)
            reports.append(
                ModelReport(
                    name=name,
                    paper=card.paper,
                    input=card.published_input,
                    error=f"{type(e).__name__}: {e}".splitlines()[0],
                )
            )
    return reports
