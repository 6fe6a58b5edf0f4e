"""VideoDataset, DataConfig / build_dataset and build_loader on a tiny synthetic benchmark."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from actionrec.data.datasets import DataConfig, VideoDataset, build_dataset
from actionrec.data.loader import build_loader, collate_samples
from actionrec.data.preprocessing import Preprocessing
from actionrec.data.sampling import SamplingConfig
from actionrec.data.synth import generate_synthetic
from actionrec.data.transforms import build_transform
from actionrec.errors import ConfigError, DatasetError

CLASSES = ["move_left", "move_right", "stay_still"]
SAMPLING = SamplingConfig(mode="dense", clip_len=4, frame_interval=2)


def _transform(train: bool, num_crops: int = 1):
    return build_transform(
        train=train, crop_size=24, short_side=32, mean=(0.5,) * 3, std=(0.5,) * 3, num_crops=num_crops
    )


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    return generate_synthetic(out, classes=CLASSES, videos_per_class=5, size=32, num_frames=12, workers=1)


@pytest.fixture
def broken_root(synth_root: Path, tmp_path: Path) -> Path:
    """A copy of the benchmark with one missing and two undecodable videos in the train split."""
    root = tmp_path / "broken"
    shutil.copytree(synth_root, root)
    train = [line.split()[0] for line in (root / "trainlist01.txt").read_text().splitlines()]
    (root / train[0]).unlink()
    (root / train[1]).write_bytes(b"not a video at all")
    (root / train[5]).write_bytes((root / train[5]).read_bytes()[:300])  # truncated mp4
    return root


def _train_set(root: Path, **kw: object) -> VideoDataset:
    data = DataConfig(dataset="synthetic", root=str(root), **kw)  # type: ignore[arg-type]
    return build_dataset(data, subset="train", sampling=SAMPLING, transform=_transform(True))


def test_build_dataset_sample(synth_root: Path) -> None:
    ds = _train_set(synth_root)
    assert ds.classes == CLASSES and len(ds) == 12 and ds.num_classes == 3
    sample = ds[3]
    assert sample["rgb"].shape == (3, 4, 24, 24) and sample["rgb"].dtype == torch.float32
    assert sample["index"] == 3 and sample["failed"] == [] and sample["path"].endswith(".mp4")
    assert sample["label"] == ds.samples[3][1] == CLASSES.index(Path(sample["path"]).parent.name)
    assert ds.report() == "synthetic/train: all 12 videos usable"


def test_streams_the_card_declares(synth_root: Path) -> None:
    """rgb + flow computed on the fly + the frames after the clip, unlabeled: exactly those keys."""
    pre = Preprocessing(
        streams=("rgb", "flow", "future"), num_frames=4, frame_interval=2, crop_size=24, short_side=32,
        future_frames=2,
    )  # fmt: skip
    data = DataConfig(dataset="synthetic", root=str(synth_root), flow_method="farneback")
    ds = build_dataset(data, subset="test", sampling=pre.sampling_config(2), transform=pre.transform(),
                       streams=pre.streams, future_frames=pre.future_frames)  # fmt: skip
    ds.samples = [(path, None) for path, _ in ds.samples]  # as if unlabeled
    sample = ds[0]
    assert {k for k in sample if k in ("rgb", "flow", "future", "label")} == {"rgb", "flow", "future"}
    assert sample["rgb"].shape == (2, 3, 4, 24, 24) and sample["flow"].shape == (2, 2, 4, 24, 24)
    assert sample["future"].shape == (2, 3, 2, 24, 24)
    assert sample["video_id"] == str(Path(ds.samples[0][0]).with_suffix(""))
    batch = collate_samples([sample, ds[1]])
    assert batch["flow"].shape == (2, 2, 2, 4, 24, 24) and "label" not in batch


def test_multi_view_sample(synth_root: Path) -> None:
    sampling = SamplingConfig(mode="uniform", clip_len=4, num_clips=2)
    data = DataConfig(dataset="synthetic", root=str(synth_root))
    ds = build_dataset(data, subset="test", sampling=sampling, transform=_transform(False, num_crops=3))
    assert len(ds) == 3 and not ds.train
    assert ds[0]["rgb"].shape == (6, 3, 4, 24, 24)  # (clips x crops, C, T, H, W)
    one_crop = build_dataset(data, subset="test", sampling=sampling, transform=_transform(False))
    assert one_crop[0]["rgb"].shape == (2, 3, 4, 24, 24)
    assert torch.equal(one_crop[1]["rgb"], one_crop[1]["rgb"])  # test sampling is deterministic


def test_decoded_video_cache_gives_the_same_samples(synth_root: Path) -> None:
    sampling = SamplingConfig(mode="uniform", clip_len=4, num_clips=2)
    plain = build_dataset(
        DataConfig(dataset="synthetic", root=str(synth_root)), subset="test", sampling=sampling,
        transform=_transform(False),
    )  # fmt: skip
    data = DataConfig(dataset="synthetic", root=str(synth_root), cache_mb=16)
    cached = build_dataset(data, subset="test", sampling=sampling, transform=_transform(False))
    first = [cached[i]["rgb"] for i in range(len(cached))]  # fills the cache
    assert cached.frame_cache is not None and len(cached.frame_cache.videos) == len(cached)
    for i in range(len(cached)):
        assert torch.equal(cached[i]["rgb"], first[i]) and torch.equal(first[i], plain[i]["rgb"])
    assert plain.frame_cache is None
    tiny = DataConfig(dataset="synthetic", root=str(synth_root), cache_mb=0.01)  # holds no video
    full = build_dataset(tiny, subset="test", sampling=sampling, transform=_transform(False))
    assert torch.equal(full[0]["rgb"], plain[0]["rgb"]) and full.frame_cache.videos == {}
    with pytest.raises(ConfigError, match="cache_mb"):
        DataConfig(cache_mb=-1)


def test_failures_are_replaced_and_reported(broken_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        ds = _train_set(broken_root)
    assert len(ds.missing) == 1 and len(ds) == 11 and "1 of 12 videos are missing" in caplog.text
    bad = [i for i, (p, _) in enumerate(ds.samples) if (broken_root / p).stat().st_size <= 300]
    assert len(bad) == 2
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        first = ds[bad[0]]
        again = ds[bad[0]]
        ds[bad[1]]
    assert first["index"] not in bad and first["failed"][0][0] == str(ds.path(bad[0]))
    assert again["index"] == first["index"]  # the stand-in is chosen deterministically
    assert sorted(ds.failures) == sorted(str(ds.path(i)) for i in bad)
    assert caplog.text.count("skipped") == 2  # each bad video is logged once, not on every visit
    assert ds.report().startswith("synthetic/train: skipped 3 of 12 videos: 1 missing")


def test_failures_survive_worker_processes(broken_root: Path) -> None:
    ds = _train_set(broken_root)
    loader = build_loader(ds, batch_size=4, train=False, num_workers=2, seed=1)
    assert loader.persistent_workers and loader.drop_last is False
    labels = []
    for batch in loader:
        assert batch["rgb"].shape[1:] == (3, 4, 24, 24)
        labels += batch["label"].tolist()
    assert len(labels) == len(ds) == 11
    assert len(ds.failures) == 2  # gathered from the workers through the batches
    assert "skipped 3 of 12" in ds.report()


def test_too_many_failures_raise(broken_root: Path) -> None:
    with pytest.raises(DatasetError, match="1 of 12 videos of synthetic/train are missing"):
        _train_set(broken_root, max_failures_fraction=0.05)
    ds = _train_set(broken_root, max_failures_fraction=0.2)  # 1 missing + 2 broken > 0.2 * 12
    with pytest.raises(DatasetError, match="too many unusable videos"):
        for i in range(len(ds)):
            ds[i]
    for name in ("classInd.txt", "trainlist01.txt"):
        (broken_root / name).unlink()
    with pytest.raises(DatasetError, match="actionrec synth --out"):
        _train_set(broken_root)


def test_all_videos_broken(synth_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "all_bad"
    shutil.copytree(synth_root, root)
    for video in root.glob("*/*.mp4"):
        video.write_bytes(b"garbage")
    ds = _train_set(root, max_failures_fraction=1.0)
    with pytest.raises(DatasetError):
        ds[0]


def test_loader_is_seeded_and_drops_last(synth_root: Path) -> None:
    ds = _train_set(synth_root)

    def epoch_labels(seed: int) -> list[int]:
        loader = build_loader(ds, batch_size=5, train=True, num_workers=0, seed=seed)
        assert len(loader) == 2 and loader.drop_last
        return [y for b in loader for y in b["label"].tolist()]

    assert epoch_labels(3) == epoch_labels(3)
    assert any(epoch_labels(3) != epoch_labels(s) for s in (4, 5, 6))
    torch.manual_seed(0)
    a = build_loader(ds, batch_size=2, train=True, num_workers=0, seed=7)
    first = next(iter(a))["rgb"]
    b = build_loader(ds, batch_size=2, train=True, num_workers=0, seed=7)
    torch.manual_seed(0)
    assert torch.equal(first, next(iter(b))["rgb"])


def test_distributed_sampler(synth_root: Path, tmp_path: Path) -> None:
    ds = _train_set(synth_root)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        loader = build_loader(ds, batch_size=4, train=True, distributed=True, num_workers=0, seed=0)
        order = list(loader.sampler)
        loader.set_epoch(1)
        assert sorted(order) == sorted(loader.sampler) == list(range(12)) and order != list(loader.sampler)
    finally:
        dist.destroy_process_group()


def test_collate_concatenates_failures() -> None:
    batch = [
        {"rgb": torch.zeros(1), "label": 0, "failed": []},
        {"rgb": torch.ones(1), "label": 1, "failed": [("a.mp4", "bad"), ("b.mp4", "worse")]},
    ]
    out = collate_samples(batch)
    assert out["failed"] == [("a.mp4", "bad"), ("b.mp4", "worse")] and out["label"].tolist() == [0, 1]


def test_data_config_validation(synth_root: Path) -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'"):
        DataConfig(dataset="imagenet")
    with pytest.raises(ConfigError, match="max_failures_fraction"):
        DataConfig(max_failures_fraction=0.0)
    data = DataConfig(dataset="synthetic", root=str(synth_root), max_samples=4)
    ds = build_dataset(data, subset="train", sampling=SAMPLING, transform=_transform(True))
    assert len(ds) == 4 and ds.samples[0] == _train_set(synth_root).samples[0]
    with pytest.raises(ConfigError, match="subset"):
        build_dataset(data, subset="val", sampling=SAMPLING, transform=_transform(True))


def test_list_and_folder_datasets(synth_root: Path, tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("move_left/move_left_0000.mp4 0\nstay_still/stay_still_0001.mp4 1\n")
    (tmp_path / "classes.txt").write_text("left\nstill\n")
    data = DataConfig(
        dataset="list",
        root=str(synth_root),
        annotations=str(tmp_path),
        classes_file=str(tmp_path / "classes.txt"),
    )
    ds = build_dataset(data, subset="train", sampling=SAMPLING, transform=_transform(True))
    assert ds.classes == ["left", "still"] and ds[1]["label"] == 1
    with pytest.raises(DatasetError, match="no test list file"):
        build_dataset(data, subset="test", sampling=SAMPLING, transform=_transform(False))
    folder = build_dataset(
        DataConfig(dataset="folder", root=str(synth_root)),
        subset="test",
        sampling=SAMPLING,
        transform=_transform(False),
    )
    assert folder.classes == sorted(CLASSES) and len(folder) == 15


def test_label_fraction_keeps_a_fixed_stratified_share() -> None:
    from actionrec.data import annotations as ann
    from actionrec.data.datasets import DataConfig, _label_subset

    a = ann.Annotations([(f"c{y}/v{i}.mp4", y) for y in range(3) for i in range(20)], ["a", "b", "c"])
    kept = _label_subset(a, 0.1)
    assert [y for _, y in kept.samples].count(0) == 2 and len(kept.samples) == 6  # 10 % of every class
    assert kept.samples == _label_subset(a, 0.1).samples  # the same videos every run
    assert len(_label_subset(a, 0.01).samples) == 3  # never a class without a video
    assert _label_subset(a, 1.0) is a
    with pytest.raises(ConfigError, match="label_fraction"):
        DataConfig(label_fraction=0.0)
