"""Annotation parsers: the real UCF101 split files and small fake HMDB51 / Kinetics / SSv2 files."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from actionrec.data import annotations as ann
from actionrec.errors import DatasetError


@pytest.fixture(scope="module")
def ucf_dir(shared_data: Path) -> Path:
    return shared_data / "labels" / "ucfTrainTestlist"


# ---------------------------------------------------------------- UCF101 (real files, CRLF)
def test_ucf101_split1_counts_and_labels(ucf_dir: Path) -> None:
    train = ann.parse_ucf101(ucf_dir, fold=1, subset="train")
    test = ann.parse_ucf101(ucf_dir, fold=1, subset="test")
    assert len(train.samples) == 9537 and len(test.samples) == 3783
    assert len(train.classes) == 101 and train.classes == test.classes
    assert train.classes[0] == "ApplyEyeMakeup" and train.classes[-1] == "YoYo"
    assert train.samples[0] == ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0)
    assert test.samples[-1][1] == 100 and not any("\r" in p for p, _ in test.samples)
    assert {y for _, y in test.samples} == set(range(101))
    # the test label comes from the folder, even where the file name spells the class differently
    hs = [(p, y) for p, y in test.samples if "v_HandStandPushups" in p]
    assert hs and all(train.classes[y] == "HandstandPushups" for _, y in hs)
    assert not {p for p, _ in train.samples} & {p for p, _ in test.samples}


def test_ucf101_other_folds(ucf_dir: Path) -> None:
    assert len(ann.parse_ucf101(ucf_dir, fold=2, subset="train").samples) == 9586
    assert len(ann.parse_ucf101(ucf_dir, fold=3, subset="test").samples) == 3696
    with pytest.raises(DatasetError, match=re.escape("trainlist04.txt: split/annotation file not found")):
        ann.parse_ucf101(ucf_dir, fold=4, subset="train")


def _copy_ucf(ucf_dir: Path, tmp_path: Path) -> Path:
    for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt"):
        shutil.copy(ucf_dir / name, tmp_path / name)
    return tmp_path


def test_ucf101_structural_errors(ucf_dir: Path, tmp_path: Path) -> None:
    folder = _copy_ucf(ucf_dir, tmp_path)
    (folder / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/a.avi 1\nApplyEyeMakeup/a.avi 1\nArchery/b.avi 3\n"
    )
    with pytest.raises(DatasetError, match=re.escape("1 duplicate entries, e.g. ApplyEyeMakeup/a.avi")):
        ann.parse_ucf101(folder, subset="train")
    (folder / "trainlist01.txt").write_text("ApplyEyeMakeup/a.avi 1\nYoYo/b.avi 102\n")
    with pytest.raises(DatasetError, match="out of range"):
        ann.parse_ucf101(folder, subset="train")
    (folder / "trainlist01.txt").write_text("ApplyEyeMakeup/a.avi 2\n")
    with pytest.raises(DatasetError, match="does not match the folder"):
        ann.parse_ucf101(folder, subset="train")
    (folder / "trainlist01.txt").write_text("\r\n\r\n")
    with pytest.raises(DatasetError, match="the split is empty"):
        ann.parse_ucf101(folder, subset="train")
    (folder / "testlist01.txt").write_text("NoSuchClass/x.avi\r\n")
    with pytest.raises(DatasetError, match="not a class in classInd"):
        ann.parse_ucf101(folder, subset="test")


def test_ucf101_wrong_class_index(tmp_path: Path) -> None:
    (tmp_path / "classInd.txt").write_text("0 abseiling\n1 air drumming\n")  # not 1-based id + name
    (tmp_path / "trainlist01.txt").write_text("a/b.avi 1\n")
    with pytest.raises(DatasetError, match=re.escape("classInd.txt:1")):
        ann.parse_ucf101(tmp_path, subset="train")
    (tmp_path / "classInd.txt").write_text("1 A\n3 B\n")
    with pytest.raises(DatasetError, match="must run 1, 2, 3"):
        ann.parse_ucf101(tmp_path, subset="train")
    with pytest.raises(DatasetError, match="subset must be"):
        ann.parse_ucf101(tmp_path, subset="val")


# ---------------------------------------------------------------- HMDB51 (fake split files)
def _hmdb(tmp_path: Path, classes: list[str]) -> Path:
    for c in classes:
        lines = [f"{c}_{k}.avi {k % 3} " for k in range(6)]  # official lines end with a space
        (tmp_path / f"{c}_test_split1.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_hmdb51_splits(tmp_path: Path, shared_data: Path) -> None:
    real = (shared_data / "labels" / "hmdb51.txt").read_text().split()
    folder = _hmdb(tmp_path, real[::-1])  # created in reverse: labels must still be sorted names
    train = ann.parse_hmdb51(folder, fold=1, subset="train")
    test = ann.parse_hmdb51(folder, fold=1, subset="test")
    assert train.classes == sorted(real) == real  # the published order is the sorted order
    assert len(train.samples) == len(test.samples) == 2 * 51
    assert train.samples[0] == ("brush_hair/brush_hair_1.avi", 0)
    assert test.samples[0] == ("brush_hair/brush_hair_2.avi", 0)
    assert not any(p.endswith(("_0.avi", "_3.avi")) for p, _ in train.samples + test.samples)  # 0 = unused


def test_hmdb51_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no HMDB51 split files"):
        ann.parse_hmdb51(tmp_path, fold=1)
    (tmp_path / "run_test_split2.txt").write_text("a.avi 3\n")
    with pytest.raises(DatasetError, match=re.escape("expected '<video> 0|1|2'")):
        ann.parse_hmdb51(tmp_path, fold=2)


# ---------------------------------------------------------------- Kinetics (fake CSVs + video tree)
def _kinetics(tmp_path: Path) -> tuple[Path, Path]:
    csvs, videos = tmp_path / "ann", tmp_path / "videos"
    csvs.mkdir()
    (csvs / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n"
        '"zumba",AAA,10,20,train\nabseiling,BBB,0,10,train\n"air drumming",CCC,5,15,train\n'
    )
    (csvs / "validate.csv").write_text("label,youtube_id,time_start,time_end,split\nabseiling,DDD,1,11,val\n")
    (videos / "train" / "zumba").mkdir(parents=True)
    (videos / "train" / "zumba" / "AAA_000010_000020.mp4").write_bytes(b"x")
    (videos / "val").mkdir()
    (videos / "val" / "DDD_000001_000011.mkv").write_bytes(b"x")  # flat layout, other container
    return csvs, videos


def test_kinetics_csv_and_lookup(tmp_path: Path, shared_data: Path) -> None:
    csvs, videos = _kinetics(tmp_path)
    train = ann.parse_kinetics(csvs, subset="train", root=videos)
    assert train.classes == ["abseiling", "air drumming", "zumba"]
    assert train.samples == [
        ("train/zumba/AAA_000010_000020.mp4", 2),
        ("train/abseiling/BBB_000000_000010.mp4", 0),  # not found: default path
        ("train/air drumming/CCC_000005_000015.mp4", 1),
    ]
    test = ann.parse_kinetics(csvs, subset="test", root=videos)
    assert test.classes == train.classes and test.samples == [("val/DDD_000001_000011.mkv", 0)]
    real = (shared_data / "labels" / "kinetics400.txt").read_text().splitlines()
    assert real == sorted(real)  # so the sorted CSV labels reproduce the published index order


def test_kinetics_errors(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("name,id\nx,y\n")
    with pytest.raises(DatasetError, match="expected columns"):
        ann.parse_kinetics(tmp_path, subset="train")
    with pytest.raises(DatasetError, match="no Kinetics test CSV"):
        ann.parse_kinetics(tmp_path, subset="test")
    (tmp_path / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\na,X,1,2,train\na,X,1,2,train\n"
    )
    with pytest.raises(DatasetError, match="duplicate entries"):
        ann.parse_kinetics(tmp_path, subset="train")


# ---------------------------------------------------------------- Something-Something v2 (fake JSON)
def _ssv2(tmp_path: Path) -> Path:
    labels = {"Putting something on a surface": "1", "Moving something up": "0"}
    (tmp_path / "something-something-v2-labels.json").write_text(json.dumps(labels))
    train = [
        {
            "id": "7",
            "template": "Moving [something] up",
            "label": "moving a pen up",
            "placeholders": ["a pen"],
        },
        {"id": "3", "template": "Putting [something] on a surface", "label": "x", "placeholders": ["x"]},
    ]
    (tmp_path / "something-something-v2-train.json").write_text(json.dumps(train))
    (tmp_path / "something-something-v2-validation.json").write_text(json.dumps(train[:1]))
    return tmp_path


def test_ssv2(tmp_path: Path) -> None:
    folder = _ssv2(tmp_path)
    train = ann.parse_ssv2(folder, subset="train")
    assert train.classes == ["Moving something up", "Putting something on a surface"]
    assert train.samples == [("7.webm", 0), ("3.webm", 1)]
    assert ann.parse_ssv2(folder, subset="test").samples == [("7.webm", 0)]
    (folder / "something-something-v2-validation.json").write_text(
        json.dumps([{"id": "9", "template": "Dropping [something]"}])
    )
    with pytest.raises(DatasetError, match="'Dropping something' is not a class"):
        ann.parse_ssv2(folder, subset="test")
    (folder / "something-something-v2-labels.json").write_text('{"a": "0", "b": "2"}')
    with pytest.raises(DatasetError, match="without gaps"):
        ann.parse_ssv2(folder, subset="train")


# ---------------------------------------------------------------- generic list and folder tree
def test_list_formats(tmp_path: Path) -> None:
    (tmp_path / "videos.txt").write_text("a/x.mp4 0\r\nb/y.mp4 2\r\n")
    (tmp_path / "frames.txt").write_text("a/x 120 1\nb/y 64 0\n")  # mmaction2 rawframes list
    assert ann.parse_list(tmp_path / "videos.txt") == ([("a/x.mp4", 0), ("b/y.mp4", 2)], ["0", "1", "2"])
    assert ann.parse_list(tmp_path / "frames.txt", classes=["p", "q"]).samples == [("a/x", 1), ("b/y", 0)]
    with pytest.raises(DatasetError, match="out of range"):
        ann.parse_list(tmp_path / "videos.txt", classes=["p", "q"])
    (tmp_path / "bad.txt").write_text("a/x.mp4 cat\n")
    with pytest.raises(DatasetError, match=re.escape("bad.txt:1: expected 'path label'")):
        ann.parse_list(tmp_path / "bad.txt")


def test_folder_tree(tmp_path: Path) -> None:
    for rel in ("walk/1.mp4", "walk/2.avi", "walk/notes.txt", "run/3.mkv", "run/clip/img_00001.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    videos = ann.parse_folder(tmp_path)
    assert videos.classes == ["run", "walk"]
    assert videos.samples == [("run/3.mkv", 0), ("walk/1.mp4", 1), ("walk/2.avi", 1)]
    assert ann.parse_folder(tmp_path, frames=True).samples == [("run/clip", 0)]
    with pytest.raises(DatasetError, match="dataset folder not found"):
        ann.parse_folder(tmp_path / "nope")
