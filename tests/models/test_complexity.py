"""Measuring models: input specs from cards, classifier sizes, measured vs published numbers, errors."""

from __future__ import annotations

import pytest
import torch

from actionrec.errors import ConfigError
from actionrec.models import get_card
from actionrec.models.complexity import (
    InputSpec,
    input_for_spec,
    measure,
    measure_models,
    num_classes_for,
    parse_input_spec,
)
from actionrec.models.registry import ModelCard


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3x16x112x112", InputSpec(3, 16, 112, 112)),
        ("16 x 112 x 112", InputSpec(None, 16, 112, 112)),
        ("2×64×224×224", InputSpec(2, 64, 224, 224)),
        ("slow 3x4x256x256 + fast 3x32x256x256", InputSpec(3, 32, 256, 256)),
        ("3x64x224x224 + 2x64x224x224", InputSpec(3, 64, 224, 224)),
        ("3x8x224x160", InputSpec(3, 8, 224, 160)),
    ],
)
def test_parse_input_spec(text: str, expected: InputSpec) -> None:
    assert parse_input_spec(text) == expected


@pytest.mark.parametrize("text", ["", "224x224", "3x0x112x112", "sixteen frames"])
def test_bad_input_spec(text: str) -> None:
    with pytest.raises(ConfigError, match="bad input spec"):
        parse_input_spec(text)


def test_input_for_spec_handles_non_square_and_multi_input_cards() -> None:
    card = get_card("r2plus1d_small")
    x = input_for_spec(card, InputSpec(3, 4, 32, 48), batch=2)
    assert isinstance(x, torch.Tensor) and x.shape == (2, 3, 4, 32, 48)
    two_stream = ModelCard(paper="p", arxiv="", input_kind="two_stream")
    streams = input_for_spec(two_stream, InputSpec(3, 8, 16, 16))
    assert streams["rgb"].shape == (1, 3, 8, 16, 16) and streams["flow"].shape == (1, 2, 8, 16, 16)


def test_num_classes_follow_the_published_dataset() -> None:
    assert num_classes_for(ModelCard(paper="p", arxiv="", published_dataset="Kinetics-600")) == 600
    assert num_classes_for(ModelCard(paper="p", arxiv="", published_dataset="UCF-101")) == 101
    assert num_classes_for(ModelCard(paper="p", arxiv="", published_dataset="Sports-1M")) == 487
    assert num_classes_for(ModelCard(paper="p", arxiv="")) == 400


def test_measure_reports_measured_beside_published() -> None:
    report = measure("r2plus1d_small")
    assert report.input == "3x8x48x48" and report.params_m == pytest.approx(0.952, abs=0.001)
    assert report.gmacs and report.published_params_m is None and report.params_diff_pct is None


def test_measure_models_turns_a_failure_into_an_error_report(monkeypatch: pytest.MonkeyPatch) -> None:
    import actionrec.models.complexity as complexity

    def broken(name: str, *, num_classes: int) -> torch.nn.Module:
        raise RuntimeError("builder exploded\nsecond line")

    monkeypatch.setattr(complexity, "build_for_counting", broken)
    (report,) = measure_models(["r2plus1d_small"])
    assert report.error == "RuntimeError: builder exploded" and report.params_m is None
