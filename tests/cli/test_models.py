"""``actionrec models``: table, JSON, published-input parsing and errors."""

from __future__ import annotations

import json

import pytest
import torch

from actionrec.cli import main
from actionrec.cli.models import InputSpec, input_for_spec, num_classes_for, parse_input_spec
from actionrec.errors import ConfigError
from actionrec.models import get_card
from actionrec.models.registry import ModelCard


def test_json_lists_measured_and_published_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "r2plus1d_1*", "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert report["name"] == "r2plus1d_18"
    assert report["params_m"] == pytest.approx(31.505, abs=1e-3)
    assert report["input"] == report["published_input"] == "3x16x112x112"
    assert report["gmacs"] == pytest.approx(40.5, rel=0.05)  # the acceptance check for R(2+1)D-18
    assert abs(report["gmacs_diff_pct"]) < 5 and abs(report["params_diff_pct"]) < 1
    assert report["published_top1"] and report["error"] == ""


def test_table_has_a_row_per_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "*_small"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["model", "params(M)"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert {"r2plus1d_small", "single_frame_small"} <= set(rows)
    row = rows["r2plus1d_small"]
    assert float(row[1]) == pytest.approx(0.952, abs=0.001)
    assert row[2] == "-" and "3x16x64x64" in row  # no published numbers; measured at the default input


def test_model_without_published_input_is_measured_at_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "single_frame_r18", "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert report["input"] == "3x1x224x224"  # the published numbers are per frame
    assert report["gmacs"] == pytest.approx(1.81, rel=0.01)


def test_no_match_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "nothing_like_this*"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no model matches" in err


def test_help_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["models", "--help"])
    assert exc.value.code == 0
    assert "actionrec models 'r2plus1d*'" in capsys.readouterr().out


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
