"""``actionrec boxes``: a local Faster R-CNN over a real video, resuming, sharding and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from actionrec.cli import boxes as boxes_cli
from actionrec.cli import main
from actionrec.data.boxes import box_file, read_boxes

FAST = ["--min-size", "64", "--max-frames", "3", "--every", "5", "--max-boxes", "4", "--batch-size", "3"]


def run_cli(argv: list[str]) -> int:
    return main(["boxes", *argv])


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight fasterrcnn_resnet50_fpn state dict (nothing downloaded)."""
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("detector") / "frcnn.pth"
    torch.save(fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict(), path)
    return path


def test_detects_writes_and_resumes(
    weights: Path, videos_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    videos = tmp_path / "videos"
    (videos / "sport").mkdir(parents=True)
    shutil.copy(videos_dir / "arm_wrestling.mp4", videos / "sport" / "arm_wrestling.mp4")
    out = tmp_path / "boxes"
    assert run_cli([str(videos), "--weights", str(weights), "--out", str(out), *FAST]) == 0
    target = out / "sport" / "arm_wrestling.boxes.json"  # the boxes_root layout
    assert target == box_file(
        videos / "sport" / "arm_wrestling.mp4", boxes_root=out, relative="sport/arm_wrestling.mp4"
    )
    rows = read_boxes(target)
    assert set(rows[:, 0].astype(int)) <= {0, 5, 10}  # every 5th frame, at most 3 of them
    for frame in (0, 5, 10):
        assert (rows[:, 0] == frame).sum() <= 4
    assert (rows[:, 3] >= rows[:, 1]).all() and (rows[:, 4] >= rows[:, 2]).all()
    assert "1 detected" in capsys.readouterr().out
    stamp = target.stat().st_mtime_ns
    assert run_cli([str(videos), "--weights", str(weights), "--out", str(out), *FAST]) == 0
    assert "0 detected, 1 already done" in capsys.readouterr().out and target.stat().st_mtime_ns == stamp


def test_bad_videos_are_reported_at_the_end(
    weights: Path, videos_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    assert run_cli([str(bad), "--weights", str(weights), *FAST]) == 2
    assert "failed: " in capsys.readouterr().err and not box_file(bad).exists()


def test_shards_split_the_videos(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.mp4").write_bytes(b"")
    found, problems = boxes_cli.collect_videos([tmp_path, tmp_path / "missing"])
    assert [v.name for v, _ in found] == ["a.mp4", "b.mp4", "c.mp4"] and len(problems) == 1
    assert boxes_cli._parse_shard("2/3") == (2, 3)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--weights", "{tmp}/none.pth"], "no such weights file"),
        (["--weights", "{tmp}/junk.pth"], "cannot read a torch state dict"),
        (["--weights", "{tmp}/junk.pth", "--shard", "3/2"], "--shard"),
        (["--weights", "{tmp}/junk.pth", "--every", "0"], "--every"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    (tmp_path / "junk.pth").write_bytes(b"junk")
    (tmp_path / "v.mp4").write_bytes(b"")
    argv = [str(tmp_path / "v.mp4"), *(a.replace("{tmp}", str(tmp_path)) for a in extra)]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_predict_detects_the_boxes_of_the_frames_it_samples(
    weights: Path, videos_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from actionrec.models.registry import create_model
    from actionrec.weights import save_weights

    torch.manual_seed(0)
    model = create_model("strg_small", num_classes=3, zero_init_graph=False)
    path = save_weights(model, tmp_path / "strg.safetensors", labels=["a", "b", "c"])
    video = videos_dir / "arm_wrestling.mp4"
    argv = ["predict", str(video), "--weights", str(path), "--json", "--clips", "1"]
    assert main([*argv, "--detector", str(weights), "--detector-min-size", "64", "--max-boxes", "3"]) == 0
    assert len(json.loads(capsys.readouterr().out)["logits"]) == 3
    assert not box_file(video).exists()  # nothing written beside the (read-only) video
    assert main([*argv, "--detector", str(tmp_path / "none.pth")]) == 2
    assert "no such weights file" in capsys.readouterr().err
