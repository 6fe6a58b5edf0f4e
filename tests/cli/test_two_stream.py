"""Flow as data end to end: `actionrec flow` output -> train -> test -> predict with i3d_two_stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actionrec.cli import main
from actionrec.data.synth import generate_synthetic

CLASSES = ["move_right", "move_left"]
TINY = [
    "--sampling.clip_len=4",
    "--sampling.frame_interval=2",
    "--input.crop_size=32",
    "--input.short_side=32",
    "--train.num_workers=0",
    "--train.batch_size=4",
]


@pytest.fixture(scope="module")
def flow_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("two_stream")
    videos = generate_synthetic(
        root / "synth", classes=CLASSES, videos_per_class=4, size=32, num_frames=12, seed=0, workers=1
    )
    flow = root / "flow"
    assert main(["flow", str(videos), "--out", str(flow), "--method", "farneback", "--short-side", "0"]) == 0
    return {"root": root, "videos": videos, "flow": flow}


@pytest.mark.slow
def test_i3d_two_stream_trains_tests_and_predicts_from_stored_flow(
    flow_data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data = [f"--data.root={flow_data['videos']}", f"--data.options={{flow_root: {flow_data['flow']}}}"]
    run = flow_data["root"] / "run"
    argv = ["train", "--config", "i3d-inception-v1-flow_8x3_synthetic-flow", "--out", str(run), "--json"]
    argv += ["--model.name=i3d_two_stream", "--train.epochs=1", "--train.eval_every=1", *TINY, *data]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    weights = Path(summary["weights"])
    from actionrec.weights import read_card

    recorded = read_card(weights)["preprocessing"]
    assert recorded["streams"] == ["rgb", "flow"] and recorded["num_frames"] == 4
    from actionrec.data.preprocessing import Preprocessing

    in_checkpoint = Preprocessing.from_weights(run / "last.pt", base=Preprocessing())
    assert in_checkpoint == Preprocessing.from_dict(recorded)  # one schema in both files

    out = flow_data["root"] / "test"
    argv = ["test", "--config", str(run / "config.yaml"), "--weights", str(weights), "--out", str(out)]
    assert main([*argv, "--clips", "2", "--json", "--precision", "fp32"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["num_videos"] >= 2 and result["num_views"] == 2

    video = next((flow_data["videos"] / "move_left").glob("*.mp4"))
    flow_dir = flow_data["flow"] / "move_left"  # `actionrec flow` mirrors the class folders
    argv = ["predict", str(video), "--weights", str(weights), "--flow-root", str(flow_dir), "--json"]
    assert main(argv) == 0
    prediction = json.loads(capsys.readouterr().out)
    assert {t["label"] for t in prediction["top"]} == set(CLASSES)


def test_a_flow_model_without_its_flow_is_one_line(
    flow_data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    video = next((flow_data["videos"] / "move_left").glob("*.mp4"))
    assert main(["predict", str(video), "--model", "i3d_inception_v1_flow"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "--flow-root" in errors[0]
    argv = ["predict", str(video), "--model", "i3d_inception_v1_flow", "--flow-method", "farneback", "--json"]
    assert main(argv) == 0  # flow computed on the fly instead
    assert len(json.loads(capsys.readouterr().out)["logits"]) == 400


def test_stored_flow_alone_needs_no_video_files(flow_data: dict[str, Path], tmp_path: Path) -> None:
    """A flow-only model reads `rawframes` folders; the videos themselves may be gone."""
    from actionrec.data.datasets import DataConfig, build_dataset
    from actionrec.data.preprocessing import Preprocessing

    for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt"):
        (tmp_path / name).write_bytes((flow_data["videos"] / name).read_bytes())
    pre = Preprocessing(streams=("flow",), num_frames=4, frame_interval=2, crop_size=32, short_side=32)
    data = DataConfig(dataset="synthetic", root=str(tmp_path), flow_root=str(flow_data["flow"]))
    ds = build_dataset(data, subset="test", sampling=pre.sampling_config(), transform=pre.transform(),
                       streams=pre.streams)  # fmt: skip
    assert not ds.missing and ds[0]["flow"].shape == (2, 4, 32, 32) and "rgb" not in ds[0]
