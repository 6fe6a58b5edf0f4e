"""evaluate(): multi-view aggregation, video-level metrics and the files it writes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from actionrec.engine.evaluate import EvalResult, aggregate_views, evaluate
from actionrec.engine.fusion import common_videos, fuse_results
from actionrec.errors import ActionrecError


class ChannelMeans(nn.Module):
    """Logits = the mean of each input channel: a view whose channel c is constant v gives logit c = v."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3, 4)) * self.scale  # (B, C, T, H, W) -> (B, C)


def _views(logits: list[list[float]]) -> torch.Tensor:
    """(V, K) wanted per-view logits -> (V, K, T=2, H=4, W=4) views that ChannelMeans maps to them."""
    return (
        torch.tensor(logits, dtype=torch.float32)[:, :, None, None, None].expand(-1, -1, 2, 4, 4).contiguous()
    )


class ViewSet(Dataset):
    """Test samples with V views each, as the real datasets give them in multi-view testing."""

    def __init__(self, samples: list[tuple[list[list[float]], int]]) -> None:
        self.samples = samples
        self.classes = ["walk", "run", "jump"]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        views, label = self.samples[i]
        return {"rgb": _views(views), "label": label, "index": i, "path": f"v{i}.mp4"}


# video 0 (label 0): logits average -> class 1 (6.67 vs 2.67) but softmax average -> class 0 (0.64 vs 0.35)
# video 1 (label 1): every view says 1;  video 2 (label 2): views split 2 / 0, class 2 wins both ways
# video 3 (label 2): all views say 1 (wrong either way)
SAMPLES = [
    ([[4, 0, 0], [4, 0, 0], [0, 20, 0]], 0),
    ([[0, 3, 1], [0, 2, 1], [1, 5, 0]], 1),
    ([[0, 0, 9], [2, 0, 0], [0, 0, 9]], 2),
    ([[0, 5, 4], [0, 5, 4], [0, 5, 4]], 2),
]


def test_aggregate_views_softmax_and_logits() -> None:
    view_logits = torch.tensor([SAMPLES[0][0]], dtype=torch.float32)  # (1, 3, 3)
    by_softmax = aggregate_views(view_logits, "softmax")
    by_logits = aggregate_views(view_logits, "logits")
    assert by_softmax.shape == (1, 3) and torch.allclose(
        by_softmax.sum(-1), torch.ones(1, dtype=torch.float64)
    )
    assert by_softmax.argmax(-1).item() == 0
    torch.testing.assert_close(by_logits, torch.tensor([[8 / 3, 20 / 3, 0.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="aggregate"):
        aggregate_views(view_logits, "max")


def test_evaluate_softmax_writes_results(tmp_path: Path) -> None:
    result = evaluate(
        ChannelMeans(),
        ViewSet(SAMPLES),
        num_clips=3,
        num_crops=1,
        precision="fp32",
        out_dir=tmp_path,
        progress=False,
    )
    assert result.top1 == pytest.approx(3 / 4)  # videos 0, 1, 2
    assert result.top5 == 1.0  # only 3 classes
    assert result.num_views == 3
    # single views: v0 2/3, v1 3/3, v2 2/3, v3 0/3 -> 7/12
    assert result.view_top1 == pytest.approx(7 / 12)
    np.testing.assert_allclose(result.per_class, [1.0, 1.0, 0.5])
    assert result.mean_class_accuracy == pytest.approx(2.5 / 3)
    np.testing.assert_array_equal(result.confusion, [[1, 0, 0], [0, 1, 0], [0, 1, 1]])

    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["top1"] == pytest.approx(0.75) and saved["num_videos"] == 4
    assert saved["aggregate"] == "softmax" and saved["precision"] == "fp32"
    assert saved["per_class"] == {"walk": 1.0, "run": 1.0, "jump": 0.5}
    rows = list(csv.reader((tmp_path / "per_class.csv").open()))
    assert rows[0] == ["index", "class", "videos", "correct", "accuracy"]
    assert rows[3] == ["2", "jump", "2", "1", "0.500000"]
    confusion = list(csv.reader((tmp_path / "confusion.csv").open()))
    assert confusion[0][1:] == ["walk", "run", "jump"] and confusion[3] == ["jump", "0", "1", "1"]
    predictions = list(csv.reader((tmp_path / "predictions.csv").open()))
    assert predictions[4][:3] == ["v3.mp4", "jump", "run"]
    for png in ("confusion.png", "per_class.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_logit_averaging_changes_the_decision() -> None:
    loader = DataLoader(ViewSet(SAMPLES), batch_size=2)  # a loader with several videos per batch works too
    result = evaluate(ChannelMeans(), loader, aggregate="logits", precision="fp32", progress=False)
    assert result.predictions.tolist() == [1, 1, 2, 1]
    assert result.top1 == pytest.approx(2 / 4)
    assert result.pair_accuracy(("walk", "run")) == pytest.approx(1 / 2)  # video 0 -> run, video 1 -> run


def test_single_view_samples_and_bf16() -> None:
    class OneView(ViewSet):
        def __getitem__(self, i: int) -> dict:
            sample = super().__getitem__(i)
            sample["rgb"] = sample["rgb"][0]  # (C, T, H, W)
            return sample

    result = evaluate(ChannelMeans(), OneView(SAMPLES), precision="bf16", progress=False)
    assert result.num_views == 1
    assert result.predictions.tolist() == [0, 1, 2, 1]


def test_view_count_and_class_count_are_checked() -> None:
    with pytest.raises(ActionrecError, match="3 views per video but 6"):
        evaluate(ChannelMeans(), ViewSet(SAMPLES), num_clips=2, num_crops=3, precision="fp32", progress=False)
    with pytest.raises(ActionrecError, match="crops must be one of"):
        evaluate(ChannelMeans(), ViewSet(SAMPLES), num_crops=4, progress=False)
    with pytest.raises(ActionrecError, match="3 class scores but the data has 2"):
        evaluate(ChannelMeans(), ViewSet(SAMPLES), classes=["a", "b"], precision="fp32", progress=False)
    with pytest.raises(ActionrecError, match="no test videos"):
        evaluate(ChannelMeans(), ViewSet([]), precision="fp32", progress=False)


def _fake(scores: list[list[float]], labels: list[int], paths: list[str], **kw: object) -> EvalResult:
    """An EvalResult whose metrics come from ``scores`` (as evaluate would compute them)."""
    from actionrec.engine.evaluate import _result

    hits = np.ones(len(labels), dtype=np.int64)
    classes = kw.pop("classes", ["walk", "run", "jump"])
    return _result(np.asarray(scores, dtype=np.float64), np.asarray(labels), paths, classes, hits, 1)


def test_fuse_results_weighted_softmax_average() -> None:
    rgb = _fake([[0.6, 0.4, 0.0], [0.1, 0.5, 0.4], [0.2, 0.7, 0.1]], [0, 2, 2], ["a", "b", "c"])
    flow = _fake([[0.3, 0.7, 0.0], [0.1, 0.2, 0.7], [0.1, 0.1, 0.8]], [0, 2, 2], ["a", "b", "c"])
    assert (rgb.top1, flow.top1) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    fused = fuse_results([rgb, flow], weights=[1, 1.5])  # (1 * rgb + 1.5 * flow) / 2.5
    expected = (np.asarray(rgb.scores) + 1.5 * np.asarray(flow.scores)) / 2.5
    np.testing.assert_allclose(fused.scores, expected)
    assert fused.predictions.tolist() == [1, 2, 2]  # a: 0.42 vs 0.58 -> run (wrong)
    assert fused.top1 == pytest.approx(2 / 3) and fused.top5 == 1.0
    np.testing.assert_allclose(fused.per_class, [0.0, np.nan, 1.0])
    assert fused.mean_class_accuracy == pytest.approx(0.5)
    saved = fused.to_dict()
    assert saved["view_top1"] is None and saved["fusion_weights"] == [1.0, 1.5] and saved["left_out"] == 0
    json.dumps(saved)  # JSON-ready
    np.testing.assert_allclose(fuse_results([rgb, flow]).scores, (rgb.scores + flow.scores) / 2)


def test_fuse_results_rejects_mismatches() -> None:
    a = _fake([[1.0, 0.0, 0.0]], [0], ["a"])
    with pytest.raises(ActionrecError, match="class lists differ"):
        fuse_results([a, _fake([[1.0, 0.0, 0.0]], [0], ["a"], classes=["x", "y", "z"])])
    with pytest.raises(ActionrecError, match="2 fusion weights given for 3 models"):
        fuse_results([a, a, a], weights=[1, 2])
    with pytest.raises(ActionrecError, match="must be > 0"):
        fuse_results([a, a], weights=[1, 0])
    with pytest.raises(ActionrecError, match="different labels"):
        fuse_results([a, _fake([[1.0, 0.0, 0.0]], [1], ["a"])])


def test_a_video_missing_from_one_result_is_left_out_of_all() -> None:
    full = _fake([[0.9, 0.1, 0.0], [0.0, 0.9, 0.1], [0.0, 0.1, 0.9]], [0, 1, 1], ["a", "b", "c"])
    partial = _fake([[0.0, 0.9, 0.1], [0.9, 0.0, 0.1]], [1, 0], ["b", "a"])  # "c" unreadable, other order
    assert full.top1 == pytest.approx(2 / 3)
    aligned = common_videos([full, partial])
    assert [r.paths for r in aligned] == [["a", "b"], ["a", "b"]]
    assert aligned[0].top1 == 1.0 and aligned[0].view_top1 == 1.0  # "c" (wrong) no longer counts
    np.testing.assert_array_equal(aligned[1].labels, [0, 1])
    fused = fuse_results([full, partial])
    assert fused.paths == ["a", "b"] and len(fused.labels) == 2 and fused.top1 == 1.0
    assert fused.extra["left_out"] == 1


def test_evaluate_keeps_per_video_view_hits() -> None:
    result = evaluate(ChannelMeans(), ViewSet(SAMPLES), precision="fp32", progress=False)
    assert result.view_hits is not None and result.view_hits.tolist() == [2, 3, 2, 0]
