"""``actionrec models``: table, JSON and errors (the measuring itself: tests/models/test_complexity.py)."""

from __future__ import annotations

import json

import pytest

from actionrec.cli import main


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
    assert row[2] == "-" and "3x8x48x48" in row  # no published numbers; measured at the default input


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
