"""Class names for predictions: ``--labels NAME|FILE``.

A FILE is read as one class name per line in index order, or as ``index name`` lines (UCF101's
``classInd.txt``, 1-based), or as JSON (a list of names, or Something-Something's ``{name: index}``).
A NAME (kinetics400, kinetics600, kinetics700, ucf101, hmdb51, ssv2) is looked up, never downloaded,
in these folders in turn: ``$ACTIONREC_LABELS``, ``~/.cache/actionrec/labels``, ``../shared/data/labels``
relative to the current folder and to the project checkout. (Label lists are not shipped in the wheel;
weights saved by actionrec carry their class names in their card, so they need no ``--labels``.)
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from actionrec.errors import ActionrecError

# Accepted file names for each known label set, in order of preference.
LABEL_FILES: dict[str, tuple[str, ...]] = {
    "kinetics400": ("kinetics400.txt",),
    "kinetics600": ("kinetics600.txt",),
    "kinetics700": ("kinetics700.txt",),
    "hmdb51": ("hmdb51.txt",),
    "ucf101": ("ucf101.txt", "classInd.txt", "ucfTrainTestlist/classInd.txt"),
    "ssv2": ("ssv2.txt", "something_something_v2.txt", "something-something-v2-labels.json"),
}
_INDEXED = re.compile(r"^\s*(\d+)[\s,]+(\S.*?)\s*$")


def label_dirs() -> list[Path]:
    """The folders searched for a label set given by name, in order."""
    dirs = []
    if env := os.environ.get("ACTIONREC_LABELS"):
        dirs.append(Path(env))
    dirs.append(Path.home() / ".cache" / "actionrec" / "labels")
    dirs.append(Path.cwd().parent / "shared" / "data" / "labels")
    dirs.append(
        Path(__file__).resolve().parents[3].parent / "shared" / "data" / "labels"
    )  # checkout/../shared
    return list(dict.fromkeys(dirs))


def _parse_json(path: Path, text: str) -> list[str]:
    data = json.loads(text)
    if isinstance(data, list) and all(isinstance(x, str) for x in data):
        return data
    if isinstance(data, dict):  # {name: index}
        by_index = {int(i): str(name) for name, i in data.items()}
        if sorted(by_index) == list(range(len(by_index))):
            return [by_index[i] for i in range(len(by_index))]
    raise ActionrecError(f"{path}: JSON labels must be a list of names or a {{name: index}} map of 0..N-1")


def _parse_lines(lines: list[str]) -> list[str]:
    matches = [_INDEXED.match(line) for line in lines]
    if matches and all(matches):  # "index name" lines: order by index if they count up from 0 or 1
        pairs = sorted((int(m.group(1)), m.group(2)) for m in matches if m)
        first = pairs[0][0]
        if first in (0, 1) and [i for i, _ in pairs] == list(range(first, first + len(pairs))):
            return [name for _, name in pairs]
    return lines


def read_labels(path: str | Path) -> list[str]:
    """Class names from a label file (see the module docstring for the formats)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ActionrecError(f"{path}: cannot read labels ({e.__class__.__name__})") from None
    if path.suffix.lower() == ".json":
        try:
            return _parse_json(path, text)
        except ValueError as e:
            raise ActionrecError(f"{path}: not valid JSON labels ({e})") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ActionrecError(f"{path}: label file is empty")
    return _parse_lines(lines)


def find_labels(name: str) -> Path | None:
    """The first file of the known label set ``name`` found in :func:`label_dirs`, else None."""
    for folder in label_dirs():
        for candidate in LABEL_FILES[name]:
            if (folder / candidate).is_file():
                return folder / candidate
    return None


def resolve_labels(spec: str | Path) -> list[str]:
    """Class names from a file path or a known label-set name (``kinetics400``, ``ucf101``, ...)."""
    path = Path(spec)
    if path.is_file():
        return read_labels(path)
    name = str(spec).lower().replace("-", "")
    if name not in LABEL_FILES:
        raise ActionrecError(
            f"labels {spec!r}: no such file, and not one of the known names "
            f"{', '.join(LABEL_FILES)}; pass --labels FILE"
        )
    found = find_labels(name)
    if found is None:
        dirs = ", ".join(str(d) for d in label_dirs())
        raise ActionrecError(
            f"labels {spec!r}: no {' or '.join(LABEL_FILES[name])} in {dirs} "
            f"(labels are never downloaded); pass --labels FILE or set ACTIONREC_LABELS"
        )
    return read_labels(found)
