"""`actionrec bench --from`: the README's tables printed again from a saved --json run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actionrec.cli import main

ROW = {"model": "r3d_18", "pass": "infer", "input": "3x16x112x112", "batch": 1, "peak_mb": 100.0}


def test_tables_from_a_saved_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = {
        "machine": {"cpu": "x86_64", "cores": 2},
        "models": [
            {**ROW, "mode": "fp32", "clips_per_s": 4.0, "ratio_vs_reference": 0.98},
            {**ROW, "mode": "bf16+channels_last", "clips_per_s": 12.0, "ratio_vs_reference": 1.01},
        ],
        "train": {"model": "r2plus1d_small", "train_clips_per_s": 50.0},
    }
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(saved))
    assert main(["bench", "--from", str(path)]) == 0
    out = capsys.readouterr().out
    assert "machine: cpu=x86_64, cores=2" in out
    # one row per model and pass, the modes side by side, the fp32 ratio to torchvision at the end
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if "|" in line]
    assert rows[0] == [
        "model",
        "pass",
        "input",
        "fp32",
        "bf16+channels_last",
        "peak_mb (fp32)",
        "ours / torchvision (fp32)",
    ]
    assert ["r3d_18", "infer", "3x16x112x112", "4", "12", "100", "0.98"] in rows
    assert "r2plus1d_small" in out


def test_every_result_names_its_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from actionrec.cli import bench

    machine = bench._machine()
    assert {"cpu", "cpu_capability", "amx_bf16", "avx512_bf16", "native_bf16"} <= set(machine)
    assert machine["cpu_capability"] in machine["cpu_label"]
    saved = {
        "machine": machine,
        "train": {"cpu": machine["cpu_label"], "results": {"model": "r2plus1d_small", "clips_per_s": 9.0}},
    }
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(saved))
    assert main(["bench", "--from", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"measured on: {machine['cpu_label']}" in out
    assert "r2plus1d_small" in out


def test_a_file_that_is_not_a_saved_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.json").write_text("[1, 2")
    assert main(["bench", "--from", str(tmp_path / "x.json")]) == 2
    assert "not a saved benchmark" in capsys.readouterr().err
