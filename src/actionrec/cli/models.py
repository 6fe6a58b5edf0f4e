"""``actionrec models``: every registered model, measured parameters and GMACs beside the published ones.

Models are built on the meta device (no memory, no compute) where their builders allow it, and MACs are
counted at the input the published numbers refer to (``card.published_input``), or at the model's
default input when the card has none.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from actionrec.errors import ActionrecError, ConfigError
from actionrec.models.complexity import count_macs, count_params
from actionrec.models.registry import ModelCard, create_model, example_input, get_card, list_models

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


def _fmt(v: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if v is None else f"{v:{spec}}{suffix}"


_COLUMNS = ("model", "params(M)", "published", "diff", "GMACs", "published", "diff", "input", "top-1")


def _row(r: ModelReport) -> tuple[str, ...]:
    top1 = _fmt(r.published_top1, ".1f") + (f" {r.published_dataset}" if r.published_top1 else "")
    return (
        r.name,
        _fmt(r.params_m, ".3f"),
        _fmt(r.published_params_m),
        _fmt(r.params_diff_pct, "+.1f", "%"),
        _fmt(r.gmacs),
        _fmt(r.published_gmacs),
        _fmt(r.gmacs_diff_pct, "+.1f", "%"),
        r.input,
        top1,
    )


def format_table(reports: list[ModelReport]) -> str:
    """Aligned columns, one model a line; a model that could not be measured gets its error instead."""
    rows = [_COLUMNS] + [_row(r) for r in reports if not r.error]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    left = {0, 7, 8}
    lines = [
        "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
        ).rstrip()
        for row in rows
    ]
    lines += [f"{r.name.ljust(widths[0])}  error: {r.error}" for r in reports if r.error]
    return "\n".join(lines)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "models",
        help="list models: measured vs published params and GMACs",
        description="List every registered model with its measured parameters (millions) and GMACs, "
        "beside the numbers its paper publishes and the input they refer to.",
        epilog="example:\n  actionrec models 'r2plus1d*'\n  actionrec models --json > models.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern (default: every model)")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    return p


def run(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    if not names:
        raise ActionrecError(f"no model matches {args.pattern!r}; run `actionrec models` to list them")
    reports = []
    for name in names:
        try:
            reports.append(measure(name))
        except Exception as e:  # one broken builder must not hide the others
            card = get_card(name)
            reports.append(
                ModelReport(
                    name=name,
                    paper=card.paper,
                    input=card.published_input,
                    error=f"{type(e).__name__}: {e}".splitlines()[0],
                )
            )
    if args.json:
        print(json.dumps([asdict(r) for r in reports], indent=2))
    else:
        print(format_table(reports))
    return 1 if any(r.error for r in reports) else 0
