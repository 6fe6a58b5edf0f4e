"""predict_video (preprocessing from the card, clip averaging, fps resampling, timeline) and label files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from actionrec.data.synth import write_mp4
from actionrec.engine import labels as L
from actionrec.engine import predict as P
from actionrec.engine.predict import Preprocessing, _windows, predict_video
from actionrec.errors import ActionrecError, VideoDecodeError
from actionrec.models.registry import create_model, get_card

FPS = 12


@pytest.fixture(scope="module")
def grey_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 flat grey frames at 12 fps, 48x64; frame k has value 8 * k, so a frame's mean tells its index."""
    frames = np.repeat((8 * np.arange(24, dtype=np.uint8))[:, None, None, None], 3, axis=3)
    frames = np.ascontiguousarray(np.broadcast_to(frames, (24, 48, 64, 3)))
    path = tmp_path_factory.mktemp("videos") / "grey.mp4"
    write_mp4(path, frames, fps=FPS, gop=4, crf=0)
    return path


class ChannelMeans(nn.Module):
    """Logits = per-channel means of the clip; records the shape of what it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        return x.mean((2, 3, 4)) * self.scale  # (B, C, T, H, W) -> (B, C)


def test_fps_sampling_takes_frames_by_index_rule(grey_video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(P, "CHUNK", 2)  # decode/resize in chunks of 2 frames: same input
    # 12 fps -> 6 fps: source index int(k * 12 / 6) = 0, 2, 4, ... ; at most 5 frames -> 0, 2, 4, 6, 8
    card = {
        "sampling": "fps",
        "fps": 6,
        "max_frames": 5,
        "crop_size": 32,
        "short_side": 40,
        "normalization": "minus_one_one",
    }
    model = ChannelMeans()
    pred = predict_video(model, grey_video, card=card, precision="fp32", topk=3)
    assert model.shapes == [(1, 3, 5, 32, 32)]  # the whole (resampled) video in one pass
    expected = np.mean(8 * np.array([0, 2, 4, 6, 8])) / 255 * 2 - 1
    np.testing.assert_allclose(pred.logits, [expected] * 3, atol=0.02)


def test_dense_prediction_averages_clip_logits(grey_video: Path) -> None:
    from actionrec.data.decode import open_video
    from actionrec.data.sampling import sample_indices

    torch.manual_seed(0)
    model = create_model("r2plus1d_small", num_classes=4).eval()
    pre = Preprocessing.from_card(get_card("r2plus1d_small"))
    labels = ["a", "b", "c", "d"]
    pred = predict_video(model, grey_video, precision="fp32", labels=labels, topk=4, num_clips=3)

    indices = sample_indices(pre.sampling_config(3), num_frames=24, fps=FPS, train=False)
    assert indices.shape == (3, 8)  # the card: 8 frames
    with open_video(grey_video) as reader, torch.no_grad():
        transform = pre.transform()
        clips = torch.stack([transform({"rgb": reader.get_frames(row)})["rgb"] for row in indices])
        expected = model(clips).mean(0)  # (3, K) -> (K,)
    np.testing.assert_allclose(pred.logits, expected.numpy(), atol=1e-4)
    probs = torch.tensor(pred.logits).softmax(-1)
    assert [t["index"] for t in pred.top] == torch.argsort(probs, descending=True).tolist()
    assert [t["label"] for t in pred.top] == [labels[t["index"]] for t in pred.top]
    np.testing.assert_allclose(
        [t["score"] for t in pred.top], probs[[t["index"] for t in pred.top]], atol=1e-6
    )
    assert set(pred.to_dict()) == {"video", "top", "logits"}
    json.dumps(pred.to_dict())  # plain JSON types only


def test_timeline_over_sliding_windows(grey_video: Path, tmp_path: Path) -> None:
    card = {"sampling": "dense", "num_frames": 4, "frame_interval": 1, "crop_size": 32, "short_side": 40}
    pred = predict_video(ChannelMeans(), grey_video, card=card, precision="fp32", window=1.0, stride=0.5)
    line = pred.timeline
    assert line is not None
    # 24 frames, windows of 12 frames every 6: starts 0, 6, 12 -> centres 0.5 s, 1.0 s, 1.5 s
    np.testing.assert_allclose(line.times, [0.5, 1.0, 1.5])
    np.testing.assert_allclose(line.scores.sum(1), 1.0, atol=1e-6)
    png = line.plot(tmp_path / "t.png", pred.classes)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_windows_cover_the_whole_video() -> None:
    assert _windows(100, 10.0, 2.0, 1.0) == [(s, s + 20) for s in range(0, 81, 10)]
    assert _windows(95, 10.0, 2.0, 1.0)[-1] == (75, 95)  # the tail gets its own window
    assert _windows(5, 10.0, 2.0, 1.0) == [(0, 5)]  # shorter than one window


def test_preprocessing_from_both_card_schemas() -> None:
    i3d = Preprocessing.from_card(get_card("i3d_inception_v1"))
    assert (i3d.sampling, i3d.fps, i3d.crop_size) == ("fps", 25, 224)
    trained = {
        "crop_size": 64,
        "short_side": 72,
        "mean": [0.5] * 3,
        "std": [0.25] * 3,
        "sampling": {"mode": "dense", "clip_len": 8, "frame_interval": 2, "num_clips": 1},
    }
    pre = Preprocessing.from_dict(trained, base=i3d)
    assert (pre.sampling, pre.num_frames, pre.frame_interval, pre.crop_size) == ("dense", 8, 2, 64)
    assert pre.mean == (0.5, 0.5, 0.5)
    flat = {"sampling": "segment", "num_frames": 8, "normalization": "imagenet", "in_channels": 3}
    pre = Preprocessing.from_dict(flat)
    assert (pre.sampling, pre.num_segments) == ("segment", 8)
    assert pre.mean == (0.485, 0.456, 0.406)
    assert Preprocessing.from_dict(pre.to_dict()) == pre  # the schema reads back what it writes
    two_stream = Preprocessing.from_card(get_card("i3d_two_stream"))
    assert two_stream.streams == ("rgb", "flow") and two_stream.mean == (0.5, 0.5, 0.5)
    old_flow = {"in_channels": 2, "mean": [0.5] * 2, "std": [0.5] * 2}
    assert Preprocessing.from_dict(old_flow).streams == ("flow",)


def test_errors(grey_video: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    card = {"sampling": "dense", "num_frames": 4, "crop_size": 32, "short_side": 40}
    with pytest.raises(VideoDecodeError):
        predict_video(ChannelMeans(), bad, card=card)
    with pytest.raises(ActionrecError, match="2 labels given but the model has 3 classes"):
        predict_video(ChannelMeans(), grey_video, card=card, labels=["a", "b"])
    with pytest.raises(ActionrecError, match="optical flow"):
        predict_video(ChannelMeans(), grey_video, card={**card, "mean": [0.5] * 2, "std": [0.5] * 2})


# ---------------------------------------------------------------- label files


def test_read_label_formats(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("walk\nrun\n\njump\n")
    assert L.read_labels(plain) == ["walk", "run", "jump"]
    indexed = tmp_path / "classInd.txt"
    indexed.write_bytes(b"2 Run\r\n1 Walk\r\n3 Jump Rope\r\n")
    assert L.read_labels(indexed) == ["Walk", "Run", "Jump Rope"]
    as_json = tmp_path / "labels.json"
    as_json.write_text(json.dumps({"b": "1", "a": "0"}))
    assert L.read_labels(as_json) == ["a", "b"]
    numbered_names = tmp_path / "numbers.txt"  # names that start with digits but are not an index
    numbered_names.write_text("3 legged race\n1 on 1\n")
    assert L.read_labels(numbered_names) == ["3 legged race", "1 on 1"]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(ActionrecError, match="empty"):
        L.read_labels(empty)


def test_resolve_labels_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kinetics400.txt").write_text("abseiling\nair drumming\n")
    monkeypatch.setenv("ACTIONREC_LABELS", str(tmp_path))
    assert L.resolve_labels("kinetics400") == ["abseiling", "air drumming"]
    assert L.resolve_labels("Kinetics-400") == ["abseiling", "air drumming"]
    with pytest.raises(ActionrecError, match="not one of the known names"):
        L.resolve_labels("kinetics1000")
    monkeypatch.setattr(L, "label_dirs", lambda: [tmp_path / "nowhere"])
    with pytest.raises(ActionrecError, match=r"never downloaded.*--labels FILE"):
        L.resolve_labels("hmdb51")


def test_ucf101_reads_the_official_class_index(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIONREC_LABELS", str(shared_data / "labels" / "ucfTrainTestlist"))
    names = L.resolve_labels("ucf101")
    assert len(names) == 101 and names[0] == "ApplyEyeMakeup" and names[-1] == "YoYo"
    assert not any("\r" in n for n in names)


def test_boxes_of_a_clip_read_in_uneven_chunks(grey_video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clip decoded in chunks (the centre clip, frames 9-13, as 2 + 2 + 1) whose frames hold different
    numbers of boxes: the boxes are joined along time, padded to the most boxes a frame has."""
    from actionrec.data.boxes import BoxSource, box_file, write_boxes

    class BoxCount(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))
            self.seen: list[torch.Tensor] = []

        def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
            self.seen.append(x["boxes_mask"])
            return x["boxes_mask"].float().sum((1, 2))[:, None].expand(-1, 2) * self.scale

    monkeypatch.setattr(P, "CHUNK", 2)
    rows = [[f, 26, 18, 38, 30, 1.0] for f in range(24)]  # one box a frame near the centre (kept by the crop)
    rows += [[12, 28, 20, 36, 28, 0.5], [12, 30, 22, 34, 26, 0.4]]
    path = write_boxes(box_file(grey_video), rows)
    card = {
        "sampling": "dense",
        "num_frames": 5,
        "frame_interval": 1,
        "crop_size": 32,
        "short_side": 40,
        "normalization": "minus_one_one",
        "streams": ["rgb", "boxes"],
    }
    model = BoxCount()
    try:
        predict_video(model, grey_video, card=card, precision="fp32", num_clips=1, boxes=BoxSource())
    finally:
        path.unlink()
    (mask,) = model.seen
    assert mask.shape == (1, 5, 3)  # frame 12 has 3 boxes
    assert mask.sum().item() == 5 + 2  # one box a frame, two more on frame 12
