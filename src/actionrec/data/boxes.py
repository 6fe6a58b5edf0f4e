"""Per-frame object boxes of a video: the box-file format, reading, writing and looking files up.

A box file lists detections, one row per box::

    frame, x1, y1, x2, y2, score

``frame`` is the 0-based index of the decoded frame (the index :class:`~actionrec.data.sources.SampleSource`
samples), ``x1, y1, x2, y2`` are pixels of that decoded frame (corners, ``x2 > x1``, ``y2 > y1``;
``x`` to the right, ``y`` down) and ``score`` a confidence (higher is better; ground truth uses 1).
A frame may have any number of rows, none included. Two encodings hold the same rows:

- JSON (``.boxes.json``, what ``actionrec boxes`` and ``actionrec synth`` write)::

      {"format": "actionrec-boxes", "version": 1, "width": 320, "height": 240, "num_frames": 90,
       "boxes": [[0, 12.0, 30.5, 80.0, 140.0, 0.98], ...]}

  ``width`` / ``height`` / ``num_frames`` describe the decoded video and are optional; boxes are
  rescaled when the frames decoded later have another size (a re-encoded copy of the video).
  ``every`` (optional, default 1) says that only every ``every``-th frame (0, every, 2 every, ...) was
  detected: a frame in between takes the boxes of the nearest detected frame, while a detected frame
  without rows has no boxes;
- CSV (``.boxes.csv``): a header line ``frame,x1,y1,x2,y2,score`` then one row per box.

Where a video's file is (:func:`box_file`): with no ``boxes_root`` it lies next to the video, named
after it without its suffix (``v_Punch_g01_c01.avi`` -> ``v_Punch_g01_c01.boxes.json``); with a
``boxes_root`` that folder mirrors the dataset: the box file of ``<root>/<rel>.avi`` is
``<boxes_root>/<rel>.boxes.json``. JSON is looked for first, then CSV.

A :class:`BoxTable` serves the boxes of any frame indices: the ``max_boxes`` highest-scoring boxes of
each frame (score order, ties by file order), padded to a common ``N`` with a mask of the real ones.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from actionrec.errors import ActionrecError
from actionrec.io import atomic_write

BOX_SUFFIXES = (".boxes.json", ".boxes.csv")
COLUMNS = ("frame", "x1", "y1", "x2", "y2", "score")
FORMAT = "actionrec-boxes"
VERSION = 1


class BoxFileError(ActionrecError):
    """A box file that cannot be read."""


class MissingBoxFileError(BoxFileError):
    """A video without a box file."""


def box_file(
    video: str | Path, *, boxes_root: str | Path | None = None, relative: str | Path | None = None
) -> Path:
    """The box file of ``video`` (``relative``: its path under the dataset root), JSON unless only the CSV
    exists; the path returned need not exist (see the module docstring for the layout)."""
    video = Path(video)
    if boxes_root is None:
        stem = video.with_suffix("")
    else:
        stem = Path(boxes_root) / Path(relative if relative is not None else video.name).with_suffix("")
    candidates = [stem.with_name(stem.name + s) for s in BOX_SUFFIXES]
    return next((c for c in candidates if c.is_file()), candidates[0])


def _as_rows(rows: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Checked rows (K, 6): whole frame numbers >= 0, finite values, x2 >= x1 and y2 >= y1."""
    table = np.asarray(rows, dtype=np.float64)
    if table.size == 0:
        return np.zeros((0, len(COLUMNS)))
    if table.ndim != 2 or table.shape[1] != len(COLUMNS):
        raise ValueError(f"every row must hold {len(COLUMNS)} values ({', '.join(COLUMNS)})")
    if not np.isfinite(table).all():
        raise ValueError("box rows hold a non-finite value")
    frames = table[:, 0]
    if (frames < 0).any() or (frames != np.round(frames)).any():
        raise ValueError("frame numbers must be whole and >= 0")
    if (table[:, 3] < table[:, 1]).any() or (table[:, 4] < table[:, 2]).any():
        raise ValueError("a box has x2 < x1 or y2 < y1")
    return table


def write_boxes(
    path: str | Path,
    rows: np.ndarray | Sequence[Sequence[float]],
    *,
    width: int | None = None,
    height: int | None = None,
    num_frames: int | None = None,
    every: int | None = None,
) -> Path:
    """Write ``rows`` (K, 6) ``frame, x1, y1, x2, y2, score`` to ``path`` (JSON or CSV by its name),
    atomically: a temporary file in the same folder renamed into place, so a reader (or a resumed
    ``actionrec boxes``) never sees half a file."""
    table = _as_rows(rows)
    body = [[int(r[0]), *(round(float(v), 3) for v in r[1:])] for r in table]
    if str(path).endswith(".csv"):
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(COLUMNS)
        writer.writerows(body)
        data = text.getvalue()
    else:
        meta = {"width": width, "height": height, "num_frames": num_frames, "every": every}
        doc = {"format": FORMAT, "version": VERSION, **{k: v for k, v in meta.items() if v is not None}}
        data = json.dumps({**doc, "boxes": body})
    return atomic_write(path, lambda f: f.write(data.encode()))


def read_boxes(path: str | Path) -> np.ndarray:
    """The rows (K, 6) float64 of a box file; :class:`BoxFileError` when missing or malformed."""
    return read_box_file(path)[0]


def read_box_file(path: str | Path) -> tuple[np.ndarray, dict[str, int]]:
    """The rows (K, 6) of a box file and what it says of the video (``width``, ``height``,
    ``num_frames``, ``every``: the keys it has); :class:`BoxFileError` when missing or malformed."""
    path = Path(path)
    meta: dict[str, int] = {}
    try:
        if path.name.endswith(".csv"):
            with path.open(newline="") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                if header is None or [h.strip() for h in header[:6]] != list(COLUMNS):
                    raise ValueError(f"the header must be {','.join(COLUMNS)}")
                rows = [[float(v) for v in row[:6]] for row in reader if row]
        else:
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict) or "boxes" not in doc:
                raise ValueError('expected an object with a "boxes" list')
            rows = doc["boxes"]
            meta = {k: int(doc[k]) for k in ("width", "height", "num_frames", "every") if doc.get(k)}
        return _as_rows(rows), meta
    except FileNotFoundError:
        raise MissingBoxFileError(f"{path}: no box file (write one with `actionrec boxes`)") from None
    except (OSError, ValueError, TypeError, IndexError) as e:
        raise BoxFileError(f"{path}: not a box file ({e})") from None


class BoxTable:
    """The boxes of one video by frame, best first; :meth:`at` gives those of sampled frames."""

    def __init__(
        self,
        rows: np.ndarray,
        *,
        max_boxes: int | None = None,
        every: int = 1,
        size: tuple[int, int] | None = None,
    ) -> None:
        if max_boxes is not None and max_boxes < 0:
            raise ValueError(f"max_boxes must be >= 0, got {max_boxes}")
        self.every, self.size = max(1, every), size  # size: (width, height) the boxes are pixels of
        rows = _as_rows(rows)
        order = np.lexsort((-rows[:, 5], rows[:, 0]))  # by frame, then score descending (stable)
        rows = rows[order]
        self.by_frame: dict[int, np.ndarray] = {}
        for frame in np.unique(rows[:, 0]).astype(int):
            boxes = rows[rows[:, 0] == frame, 1:5]  # (n, 4), best first
            self.by_frame[int(frame)] = boxes[:max_boxes] if max_boxes is not None else boxes

    @classmethod
    def load(cls, path: str | Path, *, max_boxes: int | None = None) -> BoxTable:
        rows, meta = read_box_file(path)
        size = (meta["width"], meta["height"]) if "width" in meta and "height" in meta else None
        return cls(rows, max_boxes=max_boxes, every=meta.get("every", 1), size=size)

    def detected(self, frame: int) -> int:
        """The detected frame whose boxes ``frame`` takes: itself, or the nearest multiple of ``every``
        (not past the last frame that has boxes)."""
        if self.every == 1:
            return frame
        nearest = (frame + self.every // 2) // self.every * self.every
        last = max(self.by_frame, default=0)
        return nearest if nearest <= last else last - last % self.every

    def at(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes ``(*S, N, 4)`` float32 and mask ``(*S, N)`` bool at frame ``indices`` of shape ``S``;
        ``N`` is the most boxes any of these frames has (0 when none has any)."""
        indices = np.asarray(indices, dtype=np.int64)
        per = [self.by_frame.get(self.detected(int(i)), np.zeros((0, 4))) for i in indices.ravel()]
        n = max((len(b) for b in per), default=0)
        boxes = np.zeros((len(per), n, 4), np.float32)  # (prod S, N, 4)
        mask = np.zeros((len(per), n), bool)
        for k, b in enumerate(per):
            boxes[k, : len(b)], mask[k, : len(b)] = b, True
        return boxes.reshape(*indices.shape, n, 4), mask.reshape(*indices.shape, n)


class BoxSource:
    """Where a dataset's box files are (``root``: a folder mirroring the dataset, or None: next to
    each video) and how many boxes a frame keeps (``max_boxes``, the best by score; None: all)."""

    def __init__(self, root: str | Path | None = None, max_boxes: int | None = None) -> None:
        if max_boxes is not None and max_boxes < 0:
            raise ActionrecError(f"max_boxes must be >= 0, got {max_boxes}")
        self.root, self.max_boxes = root, max_boxes

    def path(self, video: str | Path, relative: str | Path | None = None) -> Path:
        return box_file(video, boxes_root=self.root, relative=relative)

    def load(self, video: str | Path, relative: str | Path | None = None) -> BoxTable:
        return BoxTable.load(self.path(video, relative), max_boxes=self.max_boxes)

    def __repr__(self) -> str:
        return f"BoxSource(root={self.root!r}, max_boxes={self.max_boxes})"
