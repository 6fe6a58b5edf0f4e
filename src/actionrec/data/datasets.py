"""Video datasets: one :class:`VideoDataset` over any annotation format, built from a :class:`DataConfig`.

A sample is a dict of named streams and targets (what the training loop, evaluator and collate read)::

    {"rgb": float (C, T, H, W), "flow": float (2, T, H, W), "future": float (C, F, H, W),
     ...  one entry per stream the model's card declares; (V, C, T, H, W) with V = clips x crops views,
     "label": int (absent for unlabeled data), "index": int, "video_id": str, "path": str,
     "failed": [(path, reason), ...]}   # videos that failed while producing this sample (usually [])

The streams are read by :class:`~actionrec.data.sources.SampleSource` (only the sampled frames are
decoded; flow from the folders ``actionrec flow`` wrote, or computed on the fly) and transformed by a
:class:`~actionrec.data.streams.StreamTransform`, so one random crop / flip moves every stream alike.
A video that is missing or cannot be decoded never stops an epoch: it is
recorded in ``dataset.failures`` (path -> reason), logged once, and the sample is replaced by another
one chosen deterministically from the requested index; ``index``/``path``/``label`` then describe the
video actually returned. Evaluation must not score a stand-in, so ``replace_failures=False`` (what
test sets use) returns ``{"skipped": True, ...}`` without streams instead, which :func:`collate_samples`
drops. Missing files are found at construction (one ``os.path.exists`` per entry), dropped from the list
and counted in ``dataset.missing``. Too many failures raise :class:`~actionrec.errors.DatasetError`.

Worker processes: each worker has its own copy of the dataset, so failures seen there travel to the
main process inside the batch (the ``"failed"`` entry, concatenated by :func:`collate_samples`) and
:class:`~actionrec.data.loader.VideoLoader` merges them into the main process's ``dataset.failures``
while iterating; ``dataset.report()`` at the end of an epoch is therefore correct with any
``num_workers``. With a plain ``DataLoader`` use ``collate_fn=collate_samples`` and call
``dataset.absorb_failures(batch["failed"])`` yourself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from actionrec.data import annotations as ann
from actionrec.data.boxes import BoxSource
from actionrec.data.decode import BACKENDS
from actionrec.data.sampling import SamplingConfig, future_indices, sample_indices
from actionrec.data.sources import FLOW_METHODS, FlowSource, FrameCache, SampleSource, needs_video
from actionrec.data.streams import StreamTransform, pad_boxes
from actionrec.errors import ActionrecError, ConfigError, DatasetError, VideoDecodeError

log = logging.getLogger(__name__)

DATASETS = (
    "synthetic",
    "ucf101",
    "hmdb51",
    "kinetics400",
    "kinetics600",
    "kinetics700",
    "ssv2",
    "list",
    "folder",
)
Transform = StreamTransform | Callable[[np.ndarray], torch.Tensor]
_MAX_REPLACEMENTS = 20  # consecutive failed replacements for one sample before giving up


@dataclass
class DataConfig:
    """Where a dataset lives and how to read it.

    ``root`` holds the videos; ``annotations`` the split files (a folder, or a file for ``list`` and
    Kinetics); it defaults to ``root`` (right for ``synthetic``, whose folder is in the UCF101 layout).
    ``fold`` picks the UCF101/HMDB51 split. ``classes_file`` (one name per line) names the classes of
    a ``list`` dataset. ``check_files`` drops missing videos up front; ``max_failures_fraction`` is
    the share of videos allowed to be missing or undecodable before the dataset gives up.
    ``max_samples`` keeps an evenly spaced subset (quick runs). ``flow_root`` is where ``actionrec
    flow`` wrote the videos' flow (one folder per video, its path under ``root`` without the suffix);
    ``flow_method: farneback`` computes flow from the frames instead; ``flow_bound`` is its
    quantisation bound in pixels. ``cache_mb`` keeps decoded videos in memory, up to that many MiB per
    loader process (0: off): worth it for small datasets read for many epochs (the synthetic
    benchmark's 1,120 training videos take 206 MiB); with loader workers, each worker keeps its own.
    ``boxes_root`` is where the box files of a model with a ``boxes`` stream are (a folder mirroring
    ``root``; None: next to each video, see :mod:`actionrec.data.boxes`); ``max_boxes`` keeps that
    many boxes a frame, the best by score (None: all in the file). ``label_fraction`` keeps that share
    of the labelled training videos (the train subset only; the test subset is never cut): the same
    videos in every run, the first ``max(1, round(f * n_c))`` of each class in a fixed shuffle, so
    semi-supervised comparisons (pretrain on everything, fine-tune on 10 %) see one split.
    """

    dataset: str = "synthetic"
    root: str = "data/synthetic"
    annotations: str | None = None
    fold: int = 1
    backend: str = "pyav"
    num_workers: int = 2
    max_failures_fraction: float = 0.5
    classes_file: str | None = None
    check_files: bool = True
    max_samples: int | None = None
    decode_timeout_s: float = 60.0
    replace_failures: bool = True
    flow_root: str | None = None
    flow_method: str = "stored"
    flow_bound: float = 20.0
    cache_mb: float = 0.0
    boxes_root: str | None = None
    max_boxes: int | None = None
    label_fraction: float = 1.0

    @property
    def boxes(self) -> BoxSource:
        return BoxSource(self.boxes_root, self.max_boxes)

    @property
    def flow(self) -> FlowSource:
        return FlowSource(self.flow_root, self.flow_method, self.flow_bound)

    def __post_init__(self) -> None:
        if self.flow_method not in FLOW_METHODS:
            raise ConfigError(
                f"unknown flow_method {self.flow_method!r}; choose from {', '.join(FLOW_METHODS)}"
            )
        if self.dataset not in DATASETS:
            raise ConfigError(f"unknown dataset {self.dataset!r}; choose from {', '.join(DATASETS)}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown video backend {self.backend!r}; choose from {', '.join(BACKENDS)}")
        if self.max_boxes is not None and self.max_boxes < 0:
            raise ConfigError(f"max_boxes must be >= 0, got {self.max_boxes}")
        if not self.cache_mb >= 0:
            raise ConfigError(f"cache_mb must be >= 0, got {self.cache_mb}")
        if self.fold < 1 or self.num_workers < 0:
            raise ConfigError(f"need fold >= 1 and num_workers >= 0, got {self.fold} and {self.num_workers}")
        if not 0.0 < self.max_failures_fraction <= 1.0:
            raise ConfigError(f"max_failures_fraction must be in (0, 1], got {self.max_failures_fraction}")
        if not 0.0 < self.label_fraction <= 1.0:
            raise ConfigError(f"label_fraction must be in (0, 1], got {self.label_fraction}")
        if self.max_samples is not None and self.max_samples < 1:
            raise ConfigError(f"max_samples must be positive, got {self.max_samples}")


class VideoDataset(Dataset):
    """Samples ``(relative path, label)`` under ``root``, decoded sparsely, sampled and transformed.

    ``streams`` are the streams each sample carries (the model card's); ``transform`` a
    :class:`~actionrec.data.streams.StreamTransform` over them (a plain clip transform is taken as the
    ``rgb`` stream's). ``future_frames`` frames after each clip form the ``future`` stream. A label of
    ``None`` (unlabeled data) leaves ``label`` out of the sample. ``boxes`` says where the box files of
    the ``boxes`` stream are (a video without one is skipped like an undecodable one).
    """

    def __init__(
        self,
        root: str | Path,
        samples: Sequence[tuple[str, int]],
        classes: Sequence[str],
        *,
        sampling: SamplingConfig,
        transform: Transform,
        train: bool,
        backend: str = "pyav",
        max_failures_fraction: float = 0.5,
        check_files: bool = True,
        seed: int = 0,
        decode_timeout_s: float = 60.0,
        num_workers: int = 2,
        name: str = "",
        replace_failures: bool = True,
        streams: tuple[str, ...] = ("rgb",),
        flow: FlowSource | None = None,
        future_frames: int = 0,
        cache_mb: float = 0.0,
        boxes: BoxSource | None = None,
    ) -> None:
        self.root = Path(root)
        self.boxes = boxes or BoxSource()
        self.frame_cache = FrameCache(cache_mb) if cache_mb > 0 else None
        self.streams, self.flow, self.future_frames = tuple(streams), flow or FlowSource(), future_frames
        self.replace_failures = replace_failures
        self.classes = list(classes)
        self.sampling, self.train = sampling, train
        self.transform = transform if isinstance(transform, StreamTransform) else _RgbOnly(transform)
        self.backend, self.seed, self.decode_timeout_s = backend, seed, decode_timeout_s
        self.max_failures_fraction = max_failures_fraction
        self.num_workers = num_workers  # the default for build_loader
        self.name = name or self.root.name
        self.failures: dict[str, str] = {}
        self.missing: list[str] = []
        self.total = len(samples)
        self.samples = self._drop_missing(list(samples)) if check_files else list(samples)

    # ------------------------------------------------------------ construction
    def _source_path(self, rel: str) -> Path:
        """The file a sample is read from: the video, or its flow folder when only stored flow is read."""
        return (
            self.root / rel
            if needs_video(self.streams, self.flow)
            else self.flow.folder(self.root / rel, rel)
        )

    def _drop_missing(self, samples: list[tuple[str, int]]) -> list[tuple[str, int]]:
        present = []
        for rel, label in samples:
            if os.path.exists(self._source_path(rel)):
                present.append((rel, label))
            else:
                self.missing.append(rel)
        if self.missing:
            log.warning(
                "%s: %d of %d videos are missing under %s (e.g. %s); continuing without them",
                self.name,
                len(self.missing),
                len(samples),
                self.root,
                self.missing[0],
            )
        if not present or len(self.missing) > self.max_failures_fraction * len(samples):
            raise DatasetError(
                f"{self.root}: {len(self.missing)} of {len(samples)} videos of {self.name} are "
                f"missing (e.g. {self.missing[0]}); is root right?"
            )
        return present

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.samples]

    def path(self, index: int) -> Path:
        return self.root / self.samples[index][0]

    # ------------------------------------------------------------ loading
    def load(self, index: int) -> dict[str, Any]:
        """The sample at ``index`` or a VideoDecodeError (no replacement)."""
        rel, label = self.samples[index]
        path = self.root / rel
        with SampleSource(
            path,
            streams=self.streams,
            flow=self.flow,
            relative=rel,
            backend=self.backend,
            timeout_s=self.decode_timeout_s,
            cache=self.frame_cache,
            boxes=self.boxes,
        ) as source:
            fps = source.fps if self.sampling.mode == "fps" else 0.0
            rng = self._rng(index)
            indices = sample_indices(
                self.sampling, num_frames=source.num_frames, fps=fps, train=self.train, rng=rng
            )
            streams = source.read(
                indices, future=self._future(indices, source.num_frames)
            )  # (clips, F, H, W, C)
        views = [self.transform({k: v[c] for k, v in streams.items()}) for c in range(len(indices))]
        sample = {k: self._views([v[k] for v in views]) for k in views[0] if k not in ("boxes", "boxes_mask")}
        if "boxes" in views[0]:  # one clip: (T, N, 4); several: padded to (V, T, N, 4) with the mask
            boxes = [(v["boxes"], v["boxes_mask"]) for v in views]
            sample["boxes"], sample["boxes_mask"] = pad_boxes(boxes) if len(views) > 1 else boxes[0]
        if label is not None:
            sample["label"] = label
        return {**sample, "index": index, "video_id": str(Path(rel).with_suffix("")), "path": str(path)}

    def _future(self, indices: np.ndarray, num_frames: int) -> np.ndarray | None:
        """``future_frames`` indices after each clip's last frame, at its frame interval (clamped)."""
        if "future" not in self.streams:
            return None
        step = self.sampling.frame_interval if self.sampling.mode == "dense" else 1
        return future_indices(indices, num_frames=num_frames, step=step, count=self.future_frames)

    def _rng(self, index: int) -> np.random.Generator:
        if self.train:  # torch's RNG is seeded per worker and per epoch by the DataLoader
            return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        return np.random.default_rng([self.seed, index])

    @staticmethod
    def _views(clips: list[torch.Tensor]) -> torch.Tensor:
        if len(clips) == 1 and clips[0].ndim == 4:
            return clips[0]  # (C, T, H, W)
        # clips x [(C, T, H, W) or (N, C, T, H, W)] -> (V, C, T, H, W), V = clips x crops
        return torch.cat([c.unsqueeze(0) if c.ndim == 4 else c for c in clips])

    def __getitem__(self, index: int) -> dict[str, Any]:
        failed: list[tuple[str, str]] = []
        candidate = index
        for attempt in range(_MAX_REPLACEMENTS + 1):
            try:
                sample = self.load(candidate)
            except (ActionrecError, OSError) as e:
                failed.append(self._note_failure(candidate, e))
                if not self.replace_failures:
                    path = str(self.path(index))
                    return {"skipped": True, "index": index, "path": path, "failed": failed}
                candidate = self._replacement(index, attempt)
                continue
            sample["failed"] = failed
            return sample
        raise DatasetError(
            f"{self.root}: {_MAX_REPLACEMENTS + 1} videos in a row failed to load for sample "
            f"{index} ({len(self.failures)} failures so far, last: {failed[-1][0]}: "
            f"{failed[-1][1]})"
        )

    def _replacement(self, index: int, attempt: int) -> int:
        """A deterministic stand-in for sample ``index`` (never a video known to be bad, if possible)."""
        rng = np.random.default_rng([self.seed, index, attempt])
        for _ in range(8):
            j = int(rng.integers(len(self.samples)))
            if str(self.path(j)) not in self.failures:
                return j
        return j

    def _note_failure(self, index: int, error: Exception) -> tuple[str, str]:
        path = str(self.path(index))
        reason = error.reason if isinstance(error, VideoDecodeError) else str(error)
        if get_worker_info() is None:  # in a worker the main process logs it when the batch arrives
            self.absorb_failures([(path, reason)])
        else:
            self.failures.setdefault(path, reason)
            self._check_budget()
        return path, reason

    # ------------------------------------------------------------ failure bookkeeping
    def absorb_failures(self, failed: Sequence[tuple[str, str]]) -> None:
        """Record failures (e.g. reported by worker processes); each new one is logged once."""
        for path, reason in failed:
            if path not in self.failures:
                self.failures[path] = reason
                then = "replaced by another sample" if self.replace_failures else "left out"
                log.warning("%s: skipped %s (%s); %s", self.name, path, reason, then)
        self._check_budget()

    def _check_budget(self) -> None:
        bad = len(self.failures) + len(self.missing)
        if bad > self.max_failures_fraction * self.total or (
            self.samples and len(self.failures) >= len(self)
        ):
            raise DatasetError(f"{self.root}: too many unusable videos ({self.report()})")

    def report(self) -> str:
        """One line: how many videos were skipped and why (missing files and decode failures)."""
        total = self.total
        if not self.failures and not self.missing:
            return f"{self.name}: all {total} videos usable"
        reasons: dict[str, int] = {}
        for reason in self.failures.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        parts = [f"{len(self.missing)} missing"] if self.missing else []
        parts += [f"{n} {reason}" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:5]]
        skipped = len(self.failures) + len(self.missing)
        return f"{self.name}: skipped {skipped} of {total} videos: {'; '.join(parts)}"

    def __repr__(self) -> str:
        return (
            f"VideoDataset({self.name!r}, {len(self)} videos, {self.num_classes} classes, "
            f"train={self.train}, backend={self.backend!r})"
        )


class _RgbOnly:
    """A single-clip transform used as the ``rgb`` stream's (the pre-streams dataset interface)."""

    def __init__(self, transform: Callable[[np.ndarray], torch.Tensor]) -> None:
        self.clip_transform = transform

    def __call__(self, streams: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {"rgb": self.clip_transform(streams["rgb"])}


# ---------------------------------------------------------------- building from a config
def _annotations(data: DataConfig, subset: str) -> ann.Annotations:
    folder = Path(data.annotations or data.root)
    if data.dataset in ("synthetic", "ucf101"):
        if data.dataset == "synthetic" and not (folder / "classInd.txt").is_file():
            raise DatasetError(
                f"{folder}: no synthetic benchmark here; create it with `actionrec synth --out {folder}`"
            )
        return ann.parse_ucf101(folder, fold=data.fold, subset=subset)
    if data.dataset == "hmdb51":
        return ann.parse_hmdb51(folder, fold=data.fold, subset=subset)
    if data.dataset.startswith("kinetics"):
        return ann.parse_kinetics(folder, subset=subset, root=data.root)
    if data.dataset == "ssv2":
        return ann.parse_ssv2(folder, subset=subset)
    if data.dataset == "list":
        return ann.parse_list(_list_file(folder, subset), classes=_classes_file(data))
    frames = data.backend == "frames"  # class folders of frame folders instead of video files
    for name in (subset, "val") if subset == "test" else (subset,):  # root/<subset>/<class>/... if present
        if (Path(data.root) / name).is_dir():
            return _prefixed(ann.parse_folder(Path(data.root) / name, frames=frames), name)
    return ann.parse_folder(data.root, frames=frames)


def _prefixed(a: ann.Annotations, prefix: str) -> ann.Annotations:
    return ann.Annotations([(f"{prefix}/{p}", y) for p, y in a.samples], a.classes)


def _list_file(folder: Path, subset: str) -> Path:
    if folder.is_file():
        return folder
    names = (f"{subset}.txt", f"{subset}list.txt") + (("val.txt", "vallist.txt") if subset == "test" else ())
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise DatasetError(f"{folder}: no {subset} list file (looked for {', '.join(names)})")


def _classes_file(data: DataConfig) -> list[str] | None:
    return ann.read_class_names(data.classes_file) if data.classes_file else None


def _label_subset(a: ann.Annotations, fraction: float) -> ann.Annotations:
    """The first ``max(1, round(fraction * n_c))`` videos of each class in a fixed shuffle, in list order."""
    if fraction >= 1.0:
        return a
    if any(y is None for _, y in a.samples):
        raise ConfigError("label_fraction: the videos have no labels to keep a share of")
    order = np.random.default_rng(0).permutation(len(a.samples))
    kept: dict[int, int] = {}
    keep = []
    counts = np.bincount([y for _, y in a.samples], minlength=len(a.classes))
    for i in order:
        y = a.samples[i][1]
        if kept.get(y, 0) < max(1, round(fraction * counts[y])):
            kept[y] = kept.get(y, 0) + 1
            keep.append(i)
    return ann.Annotations([a.samples[i] for i in sorted(keep)], a.classes)


def _subsample(a: ann.Annotations, n: int | None) -> ann.Annotations:
    if n is None or n >= len(a.samples):
        return a
    keep = np.linspace(0, len(a.samples) - 1, n).round().astype(int)
    return ann.Annotations([a.samples[i] for i in keep], a.classes)


def build_dataset(
    data: DataConfig,
    *,
    subset: str,
    sampling: SamplingConfig,
    transform: Transform,
    seed: int = 0,
    streams: tuple[str, ...] = ("rgb",),
    future_frames: int = 0,
    train: bool | None = None,
) -> VideoDataset:
    """The ``subset`` ("train" or "test") of the dataset described by ``data``, carrying ``streams``;
    ``train`` (default: the train subset) samples random clips, else the evaluation views."""
    if subset not in ("train", "test"):
        raise ConfigError(f"subset must be 'train' or 'test', got {subset!r}")
    a = _annotations(data, subset)
    if subset == "train":
        a = _label_subset(a, data.label_fraction)
    a = _subsample(a, data.max_samples)
    return VideoDataset(
        data.root,
        a.samples,
        a.classes,
        sampling=sampling,
        transform=transform,
        train=subset == "train" if train is None else train,
        backend=data.backend,
        check_files=data.check_files,
        max_failures_fraction=data.max_failures_fraction,
        seed=seed,
        decode_timeout_s=data.decode_timeout_s,
        num_workers=data.num_workers,
        name=f"{data.dataset}/{subset}",
        replace_failures=data.replace_failures,
        streams=streams,
        flow=data.flow,
        future_frames=future_frames,
        cache_mb=data.cache_mb,
        boxes=data.boxes,
    )


def __getattr__(name: str) -> Any:  # build_loader / collate_samples live in loader.py (it imports us)
    if name in ("build_loader", "collate_samples", "VideoLoader"):
        from actionrec.data import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
