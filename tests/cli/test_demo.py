"""`actionrec demo --quick`: data generation, both trainings, evaluation, table, results.json and plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actionrec.cli import main
from actionrec.cli.demo import MODELS, format_table
from actionrec.data.synth import SYNTH_PAIRS


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fusion = "+".join(MODELS) + "=1,1.5"
    assert main(["demo", "--out", str(tmp_path), "--quick", "--fuse", fusion]) == 0
    out = capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["models"]) == {*MODELS, fusion}
    fused = results["models"].pop(fusion)
    assert fused["fusion_of"] == list(MODELS) and fused["fusion_weights"] == [1.0, 1.5]
    assert set(fused["pairs"]) == set(SYNTH_PAIRS) and fused["train_clips_per_s"] is None
    for name in MODELS:
        entry = results["models"][name]
        assert 0.0 <= entry["top1"] <= 1.0
        assert set(entry["pairs"]) == set(SYNTH_PAIRS)
        assert all(0.0 <= v <= 1.0 for v in entry["pairs"].values())
        assert (tmp_path / name / "model.safetensors").is_file()
        assert (tmp_path / name / "test" / "confusion.png").is_file()
        assert name in out
    assert results["seconds"] > 0 and results["quick"] is True
    assert (tmp_path / "synthetic-quick" / "classInd.txt").is_file()
    assert (tmp_path / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert "pair: horizontal" in out
    from actionrec.models.complexity import count_params
    from actionrec.models.registry import create_model

    sf = results["models"]["single_frame_small"]
    assert sf["params_m"] == pytest.approx(
        count_params(create_model("single_frame_small", num_classes=14)) / 1e6, abs=1e-3
    )
    assert sf["gmacs"] > 0 and sf["train_clips_per_s"] > 0
    table = (tmp_path / "table.md").read_text().splitlines()
    assert table[0].startswith("| model | top-1 | horizontal") and len(table) == 3 + len(MODELS)
    assert table[-1].startswith(f"| `{fusion}`") and table[-1].endswith("| – |")


@pytest.mark.slow
def test_quick_demo_of_a_flow_model_extracts_the_flow_once(tmp_path: Path) -> None:
    data = ["--out", str(tmp_path), "--quick", "--models", "i3d_inception_v1_flow"]
    assert main(["demo", *data]) == 0
    flow = tmp_path / "synthetic-quick_flow"
    marker = next(flow.rglob(".done")).read_text()
    assert '"farneback"' in marker and '"bound": 4.0' in marker
    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results["models"]) == ["i3d_inception_v1_flow"]
    first = {p: p.stat().st_mtime_ns for p in flow.rglob(".done")}
    again = ["--out", str(tmp_path / "again"), "--data", str(tmp_path / "synthetic-quick")]
    assert main(["demo", *again, "--quick", "--models", "i3d_inception_v1_flow"]) == 0  # no new extraction
    assert {p: p.stat().st_mtime_ns for p in flow.rglob(".done")} == first
    marker_path = next(flow.rglob(".done"))
    marker_path.write_text(marker.replace('"farneback"', '"tvl1"'))
    other = ["--out", str(tmp_path / "other"), "--data", str(tmp_path / "synthetic-quick")]
    assert main(["demo", *other, "--quick", "--models", "i3d_inception_v1_flow"]) == 2  # not its flow


def test_unknown_model_fails_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path), "--quick", "--models", "single_frame_small", "nope"]) == 2
    assert "no packaged recipe trains nope" in capsys.readouterr().err
    assert not (tmp_path / "single_frame_small").exists()


def test_table_layout() -> None:
    table = format_table(
        {
            "temporal": {"top1": 0.9375, "pairs": {"horizontal": 1.0, "zoom": 0.875}},
            "frame": {"top1": 0.5, "pairs": {"horizontal": 0.5, "zoom": 0.25}},
        }
    )
    lines = table.splitlines()
    assert lines[0].split() == ["temporal", "frame"]
    assert lines[1].split()[-2:] == ["93.8%", "50.0%"]
    assert lines[3].split() == ["pair:", "zoom", "87.5%", "25.0%"]


@pytest.mark.parametrize("spec", ["single_frame_small", "single_frame_small+nope", "a+b=1", "x+y=1,0"])
def test_bad_fusion_spec_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str) -> None:
    argv = ["demo", "--out", str(tmp_path), "--quick", "--models", "single_frame_small", "r2plus1d_small"]
    assert main([*argv, "--fuse", spec]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--fuse" in err[0]
    assert not (tmp_path / "synthetic-quick").exists()  # checked before any work


def test_a_variant_trains_with_its_base_recipe_only_when_it_reads_the_same_input() -> None:
    from actionrec.cli.demo import _same_input, find_recipe
    from actionrec.models.registry import get_card

    assert find_recipe("conv_fusion_small_sum") == find_recipe("conv_fusion_small")
    assert find_recipe("tsn_small_rgbdiff") != find_recipe("tsn_small")  # its own recipe
    assert not _same_input(get_card("tsn_small_rgbdiff"), get_card("tsn_small"))  # 6 frames a segment, not 1


def test_run_specs_label_recipe_and_overrides(tmp_path: Path) -> None:
    from actionrec.cli.demo import find_recipe, parse_run

    plain = parse_run("tada_small", tmp_path)
    assert (plain.label, plain.model, plain.overrides) == ("tada_small", "tada_small", ())
    assert plain.recipe == find_recipe("tada_small")
    spec = "static=tada_small:model.overrides.calibrate=false,model.weights={out}/pre/best.pt"
    run = parse_run(spec, tmp_path)
    assert (run.label, run.model, run.folder) == ("static", "tada_small", "static")
    assert run.overrides == ("model.overrides.calibrate=false", f"model.weights={tmp_path}/pre/best.pt")
    unlabelled = parse_run("tada_small:train.epochs=2", tmp_path)
    assert (
        unlabelled.label == "tada_small:train.epochs=2" and unlabelled.folder == "tada_small_train.epochs_2"
    )
    recipe = parse_run("r2plus1d-small_8x3_synthetic-rgb", tmp_path)  # a packaged recipe by name
    assert (recipe.recipe, recipe.model, recipe.pretrain) == ("r2plus1d-small_8x3_synthetic-rgb", None, False)
    assert parse_run("pre=dynamonet-small-pretrain_8x3_synthetic-rgb", tmp_path).pretrain


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tada_small:calibrate=false", "section.key=value"),
        ("tada_small:train.epochz=2", "epochz"),
        ("=tada_small", "[LABEL=]NAME"),
    ],
)
def test_bad_run_spec_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, message: str
) -> None:
    assert main(["demo", "--out", str(tmp_path), "--quick", "--models", spec]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "synthetic-quick").exists()


def test_same_label_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path), "--quick", "--models", "a=tada_small", "a=tada_small"]) == 2
    assert "labelled alike" in capsys.readouterr().err


def test_a_model_trains_with_its_own_recipe_not_an_ablation_or_pretraining_one() -> None:
    from actionrec.cli.demo import find_recipe

    assert find_recipe("strg_small") == "strg-small_8x3_synthetic-rgb"  # not strg-small-backbone_...
    assert find_recipe("dynamonet_small") == "dynamonet-small_8x3_synthetic-rgb"  # not the label-free one


def test_cost_of_a_test_sample_with_views_and_boxes(tmp_path: Path) -> None:
    """The cost is counted on one view of a test sample, whose boxes carry the views first too."""
    import torch

    from actionrec.cli.demo import _cost
    from actionrec.models.registry import create_model

    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text('{"train_clips_per_s": 10.0}\n{"train_clips_per_s": 20.0}\n')
    sample = {
        "rgb": torch.zeros(3, 3, 8, 48, 48),  # 3 views
        "boxes": torch.tensor([[0.0, 0.0, 20.0, 20.0]]).expand(3, 8, 1, 4).clone(),
        "boxes_mask": torch.ones(3, 8, 1, dtype=torch.bool),
        "label": 0,
    }
    cost = _cost(create_model("strg_small", num_classes=5), sample, metrics)
    assert cost["train_clips_per_s"] == 15.0 and 0.2 < cost["gmacs"] < 0.25


def test_a_region_model_on_a_benchmark_without_box_files_fails_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "old"
    (data / "move_left").mkdir(parents=True)
    (data / "classInd.txt").write_text("1 move_left\n")
    (data / "move_left" / "move_left_0000.mp4").write_bytes(b"")
    argv = ["demo", "--out", str(tmp_path / "out"), "--data", str(data), "--quick"]
    assert main([*argv, "--models", "single_frame_small", "strg_small"]) == 2
    assert "no box files" in capsys.readouterr().err
    assert not (tmp_path / "out" / "single_frame_small").exists()  # before any training
