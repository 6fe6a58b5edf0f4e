"""Box files: format round trip, lookup, top-N, synthetic ground truth, boxes in dataset samples."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from actionrec.data import synth
from actionrec.data.boxes import BoxSource, BoxTable, box_file, read_boxes, write_boxes
from actionrec.data.datasets import DataConfig, build_dataset
from actionrec.data.loader import collate_samples
from actionrec.data.preprocessing import Preprocessing
from actionrec.data.sampling import sample_indices
from actionrec.data.streams import trace_geometry, transform_boxes
from actionrec.errors import ActionrecError

ROWS = np.array(
    [
        [0, 1.5, 2.0, 10.25, 12.0, 0.9],
        [0, 3.0, 4.0, 8.0, 9.0, 0.95],
        [0, 0.0, 0.0, 5.0, 5.0, 0.1],
        [2, 20.0, 21.0, 30.0, 31.0, 0.5],
    ]
)


@pytest.mark.parametrize("suffix", [".boxes.json", ".boxes.csv"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    path = write_boxes(tmp_path / f"v{suffix}", ROWS, width=32, height=24, num_frames=3)
    np.testing.assert_allclose(read_boxes(path), ROWS)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
    empty = write_boxes(tmp_path / f"e{suffix}", np.zeros((0, 6)))
    assert read_boxes(empty).shape == (0, 6)


def test_bad_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ActionrecError, match="no box file"):
        read_boxes(tmp_path / "missing.boxes.json")
    (tmp_path / "bad.boxes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ActionrecError, match="not a box file"):
        read_boxes(tmp_path / "bad.boxes.csv")
    (tmp_path / "bad.boxes.json").write_text('{"boxes": [[0, 1, 2]]}')
    with pytest.raises(ActionrecError, match="not a box file"):
        read_boxes(tmp_path / "bad.boxes.json")


def test_lookup_next_to_the_video_or_under_a_root(tmp_path: Path) -> None:
    video = tmp_path / "data" / "cls" / "v1.mp4"
    assert box_file(video) == tmp_path / "data" / "cls" / "v1.boxes.json"
    assert (
        box_file(video, boxes_root=tmp_path / "b", relative="cls/v1.mp4") == tmp_path / "b/cls/v1.boxes.json"
    )
    write_boxes(tmp_path / "data" / "cls" / "v1.boxes.csv", ROWS)  # only the CSV exists: it is found
    assert box_file(video).name == "v1.boxes.csv"


def test_top_n_per_frame_and_frames_without_boxes() -> None:
    table = BoxTable(ROWS, max_boxes=2)
    boxes, mask = table.at(np.array([[0, 1, 2], [2, 2, 5]]))  # (clips, T) indices
    assert boxes.shape == (2, 3, 2, 4) and mask.shape == (2, 3, 2)
    assert mask.tolist() == [
        [[True, True], [False, False], [True, False]],
        [[True, False], [True, False], [False, False]],
    ]
    assert boxes[0, 0, 0].tolist() == [3.0, 4.0, 8.0, 9.0]  # best score first
    assert not boxes[0, 1].any()  # a frame without boxes: zero rows, masked
    assert BoxTable(ROWS, max_boxes=0).at(np.arange(3))[0].shape == (3, 0, 4)


def _mask_box(alpha: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(alpha > 0.5)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@pytest.mark.parametrize(
    ("x", "y", "angle", "scale", "zoom", "pieces"),
    [
        (20.0, 18.0, 30.0, 1.0, 1.0, 1),
        (31.0, 16.0, 0.0, 1.3, 1.0, 2),
        (16.0, 30.5, 75.0, 1.0, 1.4, 1),
        (30.0, 31.0, 10.0, 1.0, 1.0, 4),
    ],
)
def test_synth_boxes_match_the_rendered_object(
    x: float, y: float, angle: float, scale: float, zoom: float, pieces: int
) -> None:
    """The box of each visible piece is the extent of the object as drawn (within a pixel)."""
    size, rng = 32, np.random.default_rng(0)
    sprite = synth._sprite(rng, 5.0, np.array([255.0, 255.0, 255.0]), False)
    world = np.zeros((size, size, 3), np.float32)
    synth._paste(world, sprite, x, y, angle, scale, 1.0)
    centre, shift = (16.0, 16.0), (0.7, -0.4)
    frame = synth._camera(world, centre, zoom, *shift)[..., 0] / 255  # (S, S) coverage
    boxes = synth._screen_boxes(synth._sprite_points(sprite), sprite.shape[0], (x, y, angle, scale), size,
                                (centre, zoom, *shift))  # fmt: skip
    assert len(boxes) == pieces
    covered = np.zeros_like(frame, bool)
    for x1, y1, x2, y2 in boxes:
        covered[int(np.floor(y1)) : int(np.ceil(y2)), int(np.floor(x1)) : int(np.ceil(x2))] = True
        piece = np.where(covered, frame, 0)
        inside = frame[int(np.floor(y1)) : int(np.ceil(y2)), int(np.floor(x1)) : int(np.ceil(x2))]
        assert inside.max() > 0.5
    assert not (frame[~covered] > 0.5).any()  # every drawn pixel is inside a box
    if pieces == 1 and min(boxes[0]) > 0 and max(boxes[0]) < size:  # inside the frame: its exact extent
        np.testing.assert_allclose(boxes[0], _mask_box(piece), atol=1.0)


def test_make_clip_boxes_follow_the_object() -> None:
    params = synth.SynthParams(size=32, num_frames=10)
    still = synth.make_clip("stay_still", seed=1, params=params)
    main = still.boxes[still.boxes[:, 5] == 1.0]
    assert set(main[:, 0].astype(int)) == set(range(len(still.frames)))  # an opaque object: a box every frame
    appear = synth.make_clip("appear", seed=1, params=params)
    disappear = synth.make_clip("disappear", seed=1, params=params)
    first = set(appear.boxes[appear.boxes[:, 5] == 1.0, 0].astype(int))
    assert 0 not in first and len(appear.frames) - 1 in first  # invisible at the start: no box
    assert disappear.boxes[:, 0].min() >= 0 and np.all(np.diff(disappear.boxes[:, 0]) >= 0)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth_boxes")
    return synth.generate_synthetic(out, classes=["move_left", "move_right"], videos_per_class=3, size=32,
                                    num_frames=10, workers=1)  # fmt: skip


def _dataset(root: Path, train: bool, **options: object):  # type: ignore[no-untyped-def]
    pre = Preprocessing(streams=("rgb", "boxes"), num_frames=4, frame_interval=2, crop_size=24, short_side=32)
    data = DataConfig(dataset="synthetic", root=str(root), **options)  # type: ignore[arg-type]
    transform = pre.transform(train=train, train_crop="random_resized", flip=True)
    return build_dataset(data, subset="train", sampling=pre.sampling_config(), transform=transform,
                         streams=pre.streams, train=train)  # fmt: skip


def test_generate_writes_a_box_file_per_video(synth_root: Path) -> None:
    videos = sorted(synth_root.glob("*/*.mp4"))
    assert len(videos) == 6 and all(box_file(v).is_file() for v in videos)
    rows = read_boxes(box_file(videos[0]))
    assert rows.shape[1] == 6 and (rows[:, 3] > rows[:, 1]).all() and (rows[:, 1:5] <= 32).all()


def test_boxes_reach_a_sample_and_follow_its_crop_and_flip(synth_root: Path) -> None:
    ds = _dataset(synth_root, train=True, max_boxes=3)
    flips = 0
    for seed in range(10):
        torch.manual_seed(seed)
        sample = ds[seed % len(ds)]
        assert sample["boxes"].shape[:1] == (4,) and sample["boxes_mask"].shape == sample["boxes"].shape[:2]
        # replay the draws: the clip's frame indices, then the geometry's seed
        torch.manual_seed(seed)
        index = seed % len(ds)
        n = _frames(ds, index)
        indices = sample_indices(ds.sampling, num_frames=n, fps=0.0, train=True, rng=ds._rng(index))
        geometry_seed = int(torch.randint(0, 2**62, ()).item())
        steps = ds.transform.pipelines["rgb"].steps
        ops = trace_geometry(steps, 32, 32, torch.Generator().manual_seed(geometry_seed))
        raw, mask = BoxSource(max_boxes=3).load(ds.path(index)).at(indices[0])
        expected, expected_mask = transform_boxes(torch.from_numpy(raw), torch.from_numpy(mask), ops)
        assert torch.allclose(sample["boxes"], expected) and torch.equal(sample["boxes_mask"], expected_mask)
        flips += any(op.kind == "flip" for op in ops)
    assert 0 < flips < 10
    batch = collate_samples([ds[0], ds[1]])
    assert batch["boxes"].shape[:2] == (2, 4) and batch["boxes_mask"].dtype == torch.bool


def _frames(ds, index: int) -> int:  # type: ignore[no-untyped-def]
    from actionrec.data.decode import open_video

    with open_video(ds.path(index)) as video:
        return int(video.metadata.num_frames)


def test_a_video_without_box_file_is_skipped_and_reported(synth_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(synth_root, root)
    ds = _dataset(root, train=False)
    box_file(ds.path(0)).unlink()
    sample = ds[0]
    assert sample["path"] != str(ds.path(0))  # replaced by another video
    assert ds.failures == {str(ds.path(0)): "no box file"}
    boxes_root = tmp_path / "elsewhere"  # a boxes_root mirroring the dataset
    for video in root.glob("*/*.mp4"):
        if box_file(video).is_file():
            target = boxes_root / video.relative_to(root).with_suffix(".boxes.json")
            target.parent.mkdir(parents=True, exist_ok=True)
            box_file(video).rename(target)
    ds = _dataset(root, train=False, boxes_root=str(boxes_root))
    assert ds[1]["boxes"].shape[0] == 4 and not ds.failures
    assert ds[0].get("path") != str(ds.path(0)) and list(ds.failures.values()) == ["no box file"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [[0, 1, 2, 3, 4, 0.5, 9, 9, 9], [1, 1, 2, 3, 4, 0.5, 9, 9, 9]],
            "6 values",
        ),  # 18 numbers: not 3 rows
        ([[0.5, 1, 2, 3, 4, 0.5]], "whole"),
        ([[-1, 1, 2, 3, 4, 0.5]], "whole"),
        ([[0, 5, 2, 3, 4, 0.5]], "x2 < x1"),
    ],
)
def test_malformed_rows_are_refused(tmp_path: Path, rows: list[list[float]], message: str) -> None:
    path = tmp_path / "v.boxes.json"
    path.write_text('{"boxes": ' + str(rows) + "}")
    with pytest.raises(ActionrecError, match=message):
        read_boxes(path)


def test_frames_between_detected_ones_take_the_nearest(tmp_path: Path) -> None:
    """A file written with every 2nd frame detected: a frame in between takes the boxes of the nearest
    detected one (1 -> 2, which has none; 3 -> 4), a detected frame without rows has none, and frames
    past the last detection take the last one."""
    rows = [[0, 0, 0, 4, 4, 1.0], [4, 10, 10, 14, 14, 1.0]]
    table = BoxTable.load(write_boxes(tmp_path / "v.boxes.json", rows, every=2))
    boxes, mask = table.at(np.array([0, 1, 2, 3, 4, 5, 9]))
    assert mask.sum(1).tolist() == [1, 0, 0, 1, 1, 1, 1]
    assert boxes[3, 0].tolist() == [10, 10, 14, 14] and boxes[6, 0].tolist() == [10, 10, 14, 14]
    plain = BoxTable.load(write_boxes(tmp_path / "w.boxes.json", rows))  # every frame detected
    assert plain.at(np.array([1, 3]))[1].sum() == 0


def test_boxes_follow_a_resized_copy_of_the_video(tmp_path: Path) -> None:
    """Boxes written for 64 x 48 frames, read with the video re-encoded at 32 x 24: halved."""
    from actionrec.data.sources import SampleSource

    video = tmp_path / "v.mp4"
    synth.write_mp4(video, np.zeros((4, 24, 32, 3), np.uint8), fps=4)
    write_boxes(box_file(video), [[1, 8, 4, 40, 20, 1.0]], width=64, height=48, num_frames=4)
    with SampleSource(video, streams=("rgb", "boxes")) as source:
        out = source.read(np.array([1]))
    assert out["boxes"][0, 0].tolist() == [4, 2, 20, 10]


def test_a_region_model_is_tested_with_one_crop_a_clip() -> None:
    from actionrec.engine.config import build_split, load_config
    from actionrec.errors import ConfigError
    from actionrec.models.registry import get_card

    cfg = load_config("strg-small_8x3_synthetic-rgb", overrides=["data.root=/nonexistent"])
    with pytest.raises(ConfigError, match="one crop"):
        build_split(cfg, get_card("strg_small"), subset="test", num_crops=3)
