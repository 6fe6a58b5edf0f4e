"""Parsers for the official annotation files of the datasets actionrec reads (pure text).

Each parser returns :class:`Annotations` — ``samples``, a list of ``(relative_path, label)`` with
0-based labels, and ``classes``, the class names in label order — and raises
:class:`~actionrec.errors.DatasetError` with the file and the reason when the structure is wrong:
a missing split file, a malformed class index, an empty split, a label out of range or duplicates.

Formats:

- UCF101: ``classInd.txt`` (``"1 ApplyEyeMakeup"``, 1-based), ``trainlistNN.txt``
  (``"Class/v_x.avi 1"``) and ``testlistNN.txt`` (``"Class/v_x.avi"``, label from the folder).
- HMDB51: ``<class>_test_split<N>.txt`` with lines ``"video.avi 0|1|2"`` (1 train, 2 test, 0 unused);
  labels are the sorted class names.
- Kinetics-400/600/700: CSVs ``label,youtube_id,time_start,time_end,split``; a clip is the file
  ``{youtube_id}_{start:06d}_{end:06d}.<ext>`` found anywhere under the video root.
- Something-Something v2: a labels JSON ``{"name": "idx"}`` and train/validation JSON lists of
  ``{"id", "template", "label", "placeholders"}``; the class is the template without brackets.
- Generic lists (``"path label"`` or mmaction2's ``"path num_frames label"``) and class-per-folder trees
  of video files or of frame folders.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from actionrec.errors import DatasetError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".gif", ".flv", ".wmv")
_SUBSETS = ("train", "test")


class Annotations(NamedTuple):
    samples: list[tuple[str, int]]
    classes: list[str]


# ---------------------------------------------------------------- shared checks
def _check_subset(subset: str) -> None:
    if subset not in _SUBSETS:
        raise DatasetError(f"subset must be 'train' or 'test', got {subset!r}")


def _read_lines(path: Path) -> list[str]:
    """Non-empty stripped lines of a text file (CRLF or LF), or DatasetError if it is missing."""
    if not path.is_file():
        raise DatasetError(f"{path}: split/annotation file not found")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _finish(samples: list[tuple[str, int]], classes: list[str], source: Path | str) -> Annotations:
    """Validate a parsed split: non-empty, labels in range, no duplicate paths."""
    if not samples:
        raise DatasetError(f"{source}: the split is empty")
    bad = [(p, y) for p, y in samples if not 0 <= y < len(classes)]
    if bad:
        raise DatasetError(f"{source}: {len(bad)} labels out of range [0, {len(classes)}), e.g. {bad[0]}")
    dupes = [p for p, k in Counter(p for p, _ in samples).items() if k > 1]
    if dupes:
        raise DatasetError(f"{source}: {len(dupes)} duplicate entries, e.g. {', '.join(dupes[:3])}")
    return Annotations(samples, classes)


def _check_classes(classes: Sequence[str], source: Path | str) -> list[str]:
    if not classes:
        raise DatasetError(f"{source}: no classes")
    dupes = [c for c, k in Counter(classes).items() if k > 1]
    if dupes:
        raise DatasetError(f"{source}: duplicate class names {dupes[:5]}")
    return list(classes)


def read_class_names(path: str | Path) -> list[str]:
    """One class name per line, in label order."""
    return _check_classes(_read_lines(Path(path)), path)


# ---------------------------------------------------------------- UCF101
def _ucf_class_index(path: Path) -> list[str]:
    classes: list[str] = []
    for n, line in enumerate(_read_lines(path), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DatasetError(f"{path}:{n}: expected '<id> <ClassName>', got {line!r}")
        if int(parts[0]) != len(classes) + 1:
            raise DatasetError(
                f"{path}:{n}: class ids must run 1, 2, 3, ...; got {parts[0]} "
                f"after {len(classes)} (is this a UCF101 classInd.txt?)"
            )
        classes.append(parts[1])
    return _check_classes(classes, path)


def parse_ucf101(annotations: str | Path, *, fold: int = 1, subset: str = "train") -> Annotations:
    """UCF101 split ``fold`` from the folder holding classInd.txt and train/testlistNN.txt."""
    _check_subset(subset)
    folder = Path(annotations)
    classes = _ucf_class_index(folder / "classInd.txt")
    by_folder = {c.lower(): i for i, c in enumerate(classes)}
    split = folder / f"{subset}list{fold:02d}.txt"
    samples = []
    for n, line in enumerate(_read_lines(split), 1):
        parts = line.split()
        rel = parts[0].replace("\\", "/")
        folder_label = by_folder.get(rel.split("/")[0].lower()) if "/" in rel else None
        if subset == "train":
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise DatasetError(f"{split}:{n}: expected '<Class>/<video> <id>', got {line!r}")
            label = int(parts[1]) - 1  # 1-based in the file
            if folder_label is not None and folder_label != label and 0 <= label < len(classes):
                raise DatasetError(f"{split}:{n}: id {parts[1]} does not match the folder of {rel}")
        else:
            if len(parts) != 1:
                raise DatasetError(f"{split}:{n}: expected '<Class>/<video>', got {line!r}")
            if folder_label is None:
                raise DatasetError(f"{split}:{n}: folder of {rel} is not a class in classInd.txt")
            label = folder_label
        samples.append((rel, label))
    return _finish(samples, classes, split)


# ---------------------------------------------------------------- HMDB51
def parse_hmdb51(annotations: str | Path, *, fold: int = 1, subset: str = "train") -> Annotations:
    """HMDB51 split ``fold`` from the folder of ``<class>_test_split<N>.txt`` files."""
    _check_subset(subset)
    folder = Path(annotations)
    suffix = f"_test_split{fold}.txt"
    files = list(folder.glob(f"*{suffix}")) if folder.is_dir() else []
    if not files:
        raise DatasetError(f"{folder}: no HMDB51 split files '*{suffix}' found")
    files.sort(key=lambda f: f.name[: -len(suffix)])  # label order = sorted class names
    classes = _check_classes([f.name[: -len(suffix)] for f in files], folder)
    wanted = "1" if subset == "train" else "2"
    samples = []
    for label, file in enumerate(files):
        for n, line in enumerate(_read_lines(file), 1):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DatasetError(f"{file}:{n}: expected '<video> 0|1|2', got {line!r}")
            if parts[1] == wanted:
                samples.append((f"{classes[label]}/{parts[0]}", label))
    return _finish(samples, classes, folder)


# ---------------------------------------------------------------- Kinetics
_KINETICS_FILES = {"train": ("train", "training"), "test": ("validate", "val", "validation")}


def _find_csv(folder: Path, subset: str) -> Path:
    if folder.is_file():
        return folder
    csvs = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    for key in _KINETICS_FILES[subset]:
        hits = [p for p in csvs if key in p.stem.lower().replace("-", "_").split("_")]
        if len(hits) == 1:
            return hits[0]
    raise DatasetError(
        f"{folder}: no Kinetics {subset} CSV found (looked for *{_KINETICS_FILES[subset][0]}*.csv "
        f"among {[p.name for p in csvs]})"
    )


def _kinetics_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        need = {"label", "youtube_id", "time_start", "time_end"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise DatasetError(f"{path}: expected columns {sorted(need)}, got {reader.fieldnames}")
        return list(reader)


def kinetics_clip_name(youtube_id: str, start: float, end: float) -> str:
    """The file stem every Kinetics download tool uses: ``{id}_{start:06d}_{end:06d}``."""
    return f"{youtube_id}_{int(float(start)):06d}_{int(float(end)):06d}"


def index_videos(root: str | Path, extensions: Iterable[str] = VIDEO_EXTENSIONS) -> dict[str, str]:
    """Map each video file's stem to its path relative to ``root`` (one walk of the tree)."""
    root, ext = Path(root), tuple(extensions)
    found: dict[str, str] = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name.lower().endswith(ext):
                found.setdefault(
                    os.path.splitext(name)[0], os.path.relpath(os.path.join(dirpath, name), root)
                )
    return found


def parse_kinetics(
    annotations: str | Path, *, subset: str = "train", root: str | Path | None = None
) -> Annotations:
    """Kinetics-400/600/700 from its official CSVs (``test`` reads the validation CSV).

    Classes are the sorted labels of the train CSV (when present next to the subset's CSV). With
    ``root``, each clip is looked up by its file stem anywhere below ``root`` (``root/<split>/<label>/``
    and flat ``root/<split>/`` both work); clips not found get ``<split>/<label>/<stem>.mp4``.
    """
    _check_subset(subset)
    path = _find_csv(Path(annotations), subset)
    rows = _kinetics_rows(path)
    labels = {r["label"] for r in rows}
    if subset == "test" and Path(annotations).is_dir():
        labels |= {r["label"] for r in _kinetics_rows(_find_csv(Path(annotations), "train"))}
    classes = _check_classes(sorted(labels), path)
    index = {c: i for i, c in enumerate(classes)}
    found = index_videos(root) if root is not None else {}
    samples = []
    for n, r in enumerate(rows, 2):
        try:
            stem = kinetics_clip_name(r["youtube_id"], float(r["time_start"]), float(r["time_end"]))
        except (TypeError, ValueError) as e:
            raise DatasetError(f"{path}:{n}: bad time_start/time_end ({e})") from None
        split = r.get("split") or ("train" if subset == "train" else "val")
        rel = found.get(stem, f"{split}/{r['label']}/{stem}.mp4")
        samples.append((rel.replace(os.sep, "/"), index[r["label"]]))
    return _finish(samples, classes, path)


# ---------------------------------------------------------------- Something-Something v2
def _ssv2_file(folder: Path, *names: str) -> Path:
    for name in names:
        for candidate in (folder / f"something-something-v2-{name}.json", folder / f"{name}.json"):
            if candidate.is_file():
                return candidate
    raise DatasetError(
        f"{folder}: Something-Something v2 file something-something-v2-{names[0]}.json not found"
    )


def _load_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def parse_ssv2(annotations: str | Path, *, subset: str = "train") -> Annotations:
    """Something-Something v2 (``test`` reads the validation JSON; the test JSON has no labels)."""
    _check_subset(subset)
    folder = Path(annotations)
    labels_path = _ssv2_file(folder, "labels")
    label_map = _load_json(labels_path)
    if not isinstance(label_map, dict):
        raise DatasetError(f"{labels_path}: expected an object {{name: index}}")
    try:
        by_index = sorted((int(i), name) for name, i in label_map.items())
    except (TypeError, ValueError):
        raise DatasetError(f"{labels_path}: class indices must be integers") from None
    if [i for i, _ in by_index] != list(range(len(by_index))):
        raise DatasetError(f"{labels_path}: class indices must be 0..{len(by_index) - 1} without gaps")
    classes = _check_classes([name for _, name in by_index], labels_path)
    split = _ssv2_file(folder, "train") if subset == "train" else _ssv2_file(folder, "validation", "val")
    entries = _load_json(split)
    if not isinstance(entries, list):
        raise DatasetError(f"{split}: expected a list of videos")
    samples = []
    for n, e in enumerate(entries):
        if not isinstance(e, dict) or "id" not in e or "template" not in e:
            raise DatasetError(f"{split}: entry {n} lacks 'id' or 'template'")
        name = e["template"].replace("[", "").replace("]", "")  # as the official loader does
        if name not in label_map:
            raise DatasetError(f"{split}: entry {n} (id {e['id']}): template {name!r} is not a class")
        samples.append((f"{e['id']}.webm", int(label_map[name])))
    return _finish(samples, classes, split)


# ---------------------------------------------------------------- generic list, folder tree
def parse_list(list_file: str | Path, *, classes: Sequence[str] | None = None) -> Annotations:
    """A ``"path label"`` list (or mmaction2 rawframes ``"path num_frames label"``), 0-based labels.

    Class names come from ``classes`` or are the label numbers as strings.
    """
    path = Path(list_file)
    samples = []
    for n, line in enumerate(_read_lines(path), 1):
        parts = line.split()
        numeric = all(p.lstrip("-").isdigit() for p in parts[1:])
        if len(parts) not in (2, 3) or not numeric:
            raise DatasetError(f"{path}:{n}: expected 'path label' or 'path num_frames label', got {line!r}")
        samples.append((parts[0], int(parts[-1])))
    if classes is None:
        top = max((y for _, y in samples), default=-1)
        classes = [str(i) for i in range(top + 1)]
    return _finish(samples, _check_classes(classes, path), path)


def parse_folder(
    root: str | Path, *, frames: bool = False, extensions: Iterable[str] = VIDEO_EXTENSIONS
) -> Annotations:
    """A class-per-folder tree ``root/<class>/<video file>`` (``frames``: ``root/<class>/<frame dir>/``)."""
    root, ext = Path(root), tuple(extensions)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    samples = []
    for label, name in enumerate(_check_classes(classes, root)):
        for item in sorted((root / name).iterdir()):
            if item.is_dir() if frames else item.is_file() and item.name.lower().endswith(ext):
                samples.append((f"{name}/{item.name}", label))
    return _finish(samples, classes, root)
