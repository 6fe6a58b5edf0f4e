"""Multi-view testing: N temporal clips x {1, 3, 10} spatial crops per video, scores averaged per video.

Each test sample's ``video`` holds its V = clips x crops views as a (V, C, T, H, W) tensor (or a
plain (C, T, H, W) clip when V = 1; a tuple or dict of such for SlowFast / two-stream input). The
model sees every view; the per-view class scores (softmax probabilities, or raw logits with
``aggregate="logits"``) are averaged into one score vector per video, which is what video-level
top-1 / top-5, mean class accuracy, per-class accuracy and the confusion matrix are computed from.
This is the protocol of "Non-local Neural Networks" (Wang et al., 2018, arXiv:1711.07971, §4) and
"SlowFast Networks" (Feichtenhofer et al., 2019, arXiv:1812.03982, §4): 10 clips x 3 crops on Kinetics.

Late fusion (:func:`fuse_results`) combines the results of several models on the same videos by a
weighted average of their per-video softmax scores, as the two-stream (Simonyan & Zisserman, 2014,
arXiv:1406.2199) and TSN (Wang et al., 2016, arXiv:1608.00859) papers fuse RGB and flow (1 : 1.5).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from actionrec.data.loader import build_loader
from actionrec.data.streams import INPUT_KEYS, model_input
from actionrec.engine import metrics as M
from actionrec.engine.checkpoint import atomic_write
from actionrec.engine.fast import fast_inference, map_tensors
from actionrec.errors import ActionrecError

AGGREGATES = ("softmax", "logits")
CROPS = (1, 3, 10)


@dataclass
class EvalResult:
    """Video-level results of :func:`evaluate` (accuracies are fractions in [0, 1])."""

    top1: float
    top5: float
    mean_class_accuracy: float
    view_top1: float  # accuracy of single views before averaging
    per_class: np.ndarray  # (K,), NaN for classes without test videos
    confusion: np.ndarray  # (K, K) counts, row = true class
    scores: np.ndarray  # (N, K) aggregated score of each video
    labels: np.ndarray  # (N,)
    paths: list[str]
    classes: list[str]
    num_views: int
    num_clips: int | None = None
    num_crops: int | None = None
    aggregate: str = "softmax"
    precision: str = "fp32"
    seconds: float = 0.0
    failures: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    view_hits: np.ndarray | None = None  # (N,) correct views of each video; None for a fusion

    @property
    def predictions(self) -> np.ndarray:
        return M.ranked(self.scores)[:, 0] if len(self.scores) else np.zeros(0, dtype=np.int64)

    def pair_accuracy(self, pair: Sequence[str]) -> float:
        """Accuracy restricted to the videos of two (or more) named classes, choosing among them only."""
        missing = [c for c in pair if c not in self.classes]
        if missing:
            raise ActionrecError(f"class {missing[0]!r} is not among the evaluated classes")
        return M.subset_accuracy(self.scores, self.labels, [self.classes.index(c) for c in pair])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (without the per-video scores)."""
        per_class = {c: (None if np.isnan(a) else float(a)) for c, a in zip(self.classes, self.per_class)}
        return {
            "top1": self.top1,
            "top5": self.top5,
            "mean_class_accuracy": self.mean_class_accuracy,
            "view_top1": None if np.isnan(self.view_top1) else self.view_top1,  # NaN for a fusion
            "num_videos": len(self.labels),
            "num_classes": len(self.classes),
            "num_views": self.num_views,
            "num_clips": self.num_clips,
            "num_crops": self.num_crops,
            "aggregate": self.aggregate,
            "precision": self.precision,
            "seconds": round(self.seconds, 3),
            "failures": self.failures,
            "per_class": per_class,
            **self.extra,
        }

    def save(self, out_dir: str | Path, *, prefix: str = "", plots: bool = True) -> dict[str, Path]:
        """Write results.json (atomically), per_class.csv, confusion.csv, predictions.csv and PNG plots."""
        from actionrec.engine import plots as P

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files = {
            "results": _write_text(
                out / f"{prefix}results.json", json.dumps(self.to_dict(), indent=2) + "\n"
            ),
            "per_class_csv": _write_text(out / f"{prefix}per_class.csv", self._per_class_csv()),
            "confusion_csv": _write_text(out / f"{prefix}confusion.csv", self._confusion_csv()),
            "predictions_csv": _write_text(out / f"{prefix}predictions.csv", self._predictions_csv()),
        }
        if plots:
            files["confusion_png"] = P.plot_confusion(
                self.confusion,
                self.classes,
                out / f"{prefix}confusion.png",
                title=f"confusion (top-1 {self.top1:.1%})",
            )
            files["per_class_png"] = P.plot_per_class(
                self.per_class, self.classes, out / f"{prefix}per_class.png"
            )
        return files

    def _per_class_csv(self) -> str:
        rows = [["index", "class", "videos", "correct", "accuracy"]]
        for i, c in enumerate(self.classes):
            acc = self.per_class[i]
            rows.append(
                [
                    i,
                    c,
                    int(self.confusion[i].sum()),
                    int(self.confusion[i, i]),
                    "" if np.isnan(acc) else f"{acc:.6f}",
                ]
            )
        return _csv(rows)

    def _confusion_csv(self) -> str:
        return _csv(
            [
                ["true\\predicted", *self.classes],
                *([c, *map(int, row)] for c, row in zip(self.classes, self.confusion)),
            ]
        )

    def _predictions_csv(self) -> str:
        rows: list[list[Any]] = [["path", "label", "prediction", "score"]]
        for path, y, p, s in zip(self.paths, self.labels, self.predictions, self.scores):
            rows.append([path, self.classes[int(y)], self.classes[int(p)], f"{s[p]:.6f}"])
        return _csv(rows)


def _csv(rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode()))


# ---------------------------------------------------------------- running the model over views


def _first_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    values = x.values() if isinstance(x, dict) else x
    return _first_tensor(next(iter(values)))


def _view_slice(x: Any, start: int, stop: int) -> Any:
    return map_tensors(x, lambda t: t[start:stop])


def _flatten_views(video: Any) -> tuple[Any, int, int]:
    """(B, V, C, T, H, W) views -> (B*V, C, T, H, W) clips; returns (clips, B, V). 5-D input has V = 1."""
    first = _first_tensor(video)
    if first.ndim == 5:
        return video, first.shape[0], 1
    if first.ndim != 6:
        raise ActionrecError(f"expected video batches of 5 or 6 dimensions, got shape {tuple(first.shape)}")
    b, v = first.shape[:2]
    return map_tensors(video, lambda t: t.flatten(0, 1)), b, v  # (B, V, ...) -> (B*V, ...)


def _logits_of(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        return out["logits"]
    return out.logits


def run_views(model: nn.Module, video: Any, *, chunk: int = 16) -> tuple[torch.Tensor, int]:
    """Logits of every view of a batch, (B, V, K) float32, computed ``chunk`` views at a time."""
    clips, b, v = _flatten_views(video)
    outs = [_logits_of(model(_view_slice(clips, s, s + chunk))).float().cpu() for s in range(0, b * v, chunk)]
    return torch.cat(outs).view(b, v, -1), v  # (B*V, K) -> (B, V, K)


def aggregate_views(view_logits: torch.Tensor, how: str) -> torch.Tensor:
    """(B, V, K) per-view logits -> (B, K) video scores: mean softmax or mean logits."""
    if how not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got {how!r}")
    per_view = view_logits.softmax(-1) if how == "softmax" else view_logits
    return per_view.double().mean(1)


# ---------------------------------------------------------------- evaluate


def _as_loader(
    data: Dataset | DataLoader | Iterable[dict[str, Any]], batch_size: int, num_workers: int
) -> Iterable[dict[str, Any]]:
    if isinstance(data, Dataset) and not isinstance(data, DataLoader):
        return build_loader(data, batch_size=batch_size, train=False, num_workers=num_workers)
    return data


def _dataset_of(data: Any) -> Any:
    return data.dataset if isinstance(data, DataLoader) else data


def evaluate(
    model: nn.Module,
    data: Dataset | DataLoader | Iterable[dict[str, Any]],
    *,
    num_clips: int | None = None,
    num_crops: int | None = None,
    aggregate: str = "softmax",
    precision: str = "auto",
    classes: Sequence[str] | None = None,
    batch_size: int = 1,
    num_workers: int = 0,
    chunk: int = 16,
    device: str | torch.device | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> EvalResult:
    """Evaluate ``model`` on every video of ``data`` (a dataset, a loader, or an iterable of batches).

    ``num_clips`` / ``num_crops`` state the views each sample carries (checked against the data and
    recorded); ``aggregate`` averages softmax probabilities ("softmax") or logits ("logits").
    ``classes`` defaults to the dataset's ``classes``. With ``out_dir`` the result files are written.
    """
    if aggregate not in AGGREGATES:
        raise ActionrecError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    if num_crops is not None and num_crops not in CROPS:
        raise ActionrecError(f"crops must be one of {CROPS}, got {num_crops}")
    expected = (num_clips or 1) * (num_crops or 1) if (num_clips or num_crops) else None
    if device is not None:
        model = model.to(device)
    runner = fast_inference(model, precision=precision)
    loader = _as_loader(data, batch_size, num_workers)
    start = time.perf_counter()
    scores, labels, paths, view_hits, views = _collect(runner, loader, aggregate, chunk, expected, progress)
    dataset = _dataset_of(data)
    names = list(classes or getattr(dataset, "classes", None) or [str(i) for i in range(scores.shape[1])])
    if scores.shape[1] != len(names):
        raise ActionrecError(
            f"the model gives {scores.shape[1]} class scores but the data has {len(names)} classes"
        )
    result = _result(scores, labels, paths, names, view_hits, views)
    result.num_clips, result.num_crops, result.aggregate = num_clips, num_crops, aggregate
    result.precision, result.seconds = runner.precision, time.perf_counter() - start  # type: ignore[assignment]
    result.failures = len(getattr(dataset, "failures", None) or [])
    if out_dir is not None:
        result.save(out_dir)
    return result


def _collect(
    runner: nn.Module,
    loader: Iterable[dict[str, Any]],
    aggregate: str,
    chunk: int,
    expected: int | None,
    show: bool,
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, int]:
    from actionrec.engine.logging import progress

    total = len(loader) if hasattr(loader, "__len__") else 0  # type: ignore[arg-type]
    scores, labels, paths, view_hits = [], [], [], []
    num_views = 0
    for batch in progress(loader, total=total, desc="test", enabled=show):
        if not any(k in batch for k in INPUT_KEYS):  # every video of the batch was unreadable
            continue
        view_logits, v = run_views(runner, model_input(batch), chunk=chunk)
        if expected is not None and v != expected:
            raise ActionrecError(
                f"the data gives {v} views per video but {expected} (clips x crops) were asked for"
            )
        y = torch.as_tensor(batch["label"]).long()
        scores.append(aggregate_views(view_logits, aggregate).numpy())
        labels.append(y.numpy())
        paths.extend(_paths(batch, len(y)))
        view_hits.append((view_logits.argmax(-1) == y[:, None]).sum(1).numpy())
        num_views = v
    if not scores:
        raise ActionrecError("no test videos to evaluate")
    return np.concatenate(scores), np.concatenate(labels), paths, np.concatenate(view_hits), num_views


def _paths(batch: dict[str, Any], n: int) -> list[str]:
    if "path" in batch:
        return [str(p) for p in batch["path"]]
    if "index" in batch:
        return [str(int(i)) for i in batch["index"]]
    return [""] * n


def _result(
    scores: np.ndarray,
    labels: np.ndarray,
    paths: list[str],
    classes: list[str],
    view_hits: np.ndarray,
    num_views: int,
) -> EvalResult:
    return EvalResult(
        **_metrics(scores, labels, classes, view_hits, num_views),
        scores=scores,
        labels=labels,
        paths=paths,
        classes=classes,
        num_views=num_views,
        view_hits=view_hits,
    )


def _metrics(
    scores: np.ndarray, labels: np.ndarray, classes: list[str], view_hits: np.ndarray | None, num_views: int
) -> dict[str, Any]:
    """The video-level metrics of (N, K) scores; ``view_top1`` is NaN without per-video view hits."""
    cm = M.confusion_matrix(labels, M.ranked(scores)[:, 0], len(classes))
    view_top1 = float("nan") if view_hits is None else int(view_hits.sum()) / max(1, len(labels) * num_views)
    return {
        "top1": M.topk_accuracy(scores, labels, 1),
        "top5": M.topk_accuracy(scores, labels, 5),
        "mean_class_accuracy": M.mean_class_accuracy(cm),
        "view_top1": view_top1,
        "per_class": M.per_class_accuracy(cm),
        "confusion": cm,
    }


# ---------------------------------------------------------------- test data from a config


def build_test_dataset(
    cfg: Any,
    card: Any,
    *,
    num_clips: int = 1,
    num_crops: int = 1,
    weights: str | Path | None = None,
    subset: str = "test",
    num_segments: int | None = None,
) -> Dataset:
    """The config's test split with ``num_clips`` clips x ``num_crops`` crops per video, built exactly as
    training's validation set is (:func:`actionrec.engine.config.build_split`), with the preprocessing
    ``weights`` record if they record one; an unreadable test video is left out, never replaced.
    ``subset="train"`` gives the training videos with the same test views (to fit a score fusion).
    ``num_segments`` overrides a segment-sampled model's segments (TSN tests on 25, §4.1)."""
    from actionrec.data.preprocessing import Preprocessing
    from actionrec.engine.config import build_split, preprocessing

    if num_crops not in CROPS:
        raise ActionrecError(f"crops must be one of {CROPS}, got {num_crops}")
    if num_clips < 1:
        raise ActionrecError(f"clips must be >= 1, got {num_clips}")
    pre = Preprocessing.from_weights(weights, base=preprocessing(cfg, card))
    if num_segments is not None:
        if pre.sampling != "segment" or num_segments < 1:
            raise ActionrecError(f"segments: {num_segments} given for a model sampled by {pre.sampling!r}")
        pre = dataclasses.replace(pre, num_segments=num_segments)
    return build_split(
        cfg,
        card,
        subset=subset,
        num_clips=num_clips,
        num_crops=num_crops,
        replace_failures=False,
        pre=pre,
        augment=False,
    )


# ---------------------------------------------------------------- a model from a weights file


def model_from_weights(
    name: str | None, weights: str | Path, *, num_classes: int | None = None, **builder_kwargs: Any
) -> tuple[nn.Module, list[str] | None]:
    """Build a model and load ``weights``; returns it with the class names the weights record (if any).

    ``weights`` may be actionrec's ``model.safetensors`` (its card names the model, class count and
    labels, so ``name`` may be None), a training checkpoint (``best.pt`` / ``last.pt``), or any
    format :func:`actionrec.weights.load_weights` reads (then ``name`` is required).
    """
    from actionrec.engine.checkpoint import load_checkpoint
    from actionrec.models.registry import create_model

    path = Path(weights)
    if not path.is_file():
        raise ActionrecError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        from actionrec.weights import read_card

        card = read_card(path) or {}
        if name in (None, card.get("model")):
            builder_kwargs = {**(card.get("builder_kwargs") or {}), **builder_kwargs}
        name = name or card.get("model")
        num_classes = int(card.get("num_classes") or num_classes or 0) or None
        labels = card.get("labels") or None
    elif path.suffix == ".pt":
        state = load_checkpoint(path)
        builder_kwargs = {**(state.get("builder_kwargs") or {}), **builder_kwargs}
        labels = [str(c) for c in state.get("classes") or []] or None
        num_classes = len(labels) if labels else num_classes
    else:
        labels = None
    if not name:
        raise ActionrecError(f"{path}: the weights do not name their model; pass the model name")
    kwargs = dict(builder_kwargs)
    if num_classes:
        kwargs["num_classes"] = num_classes
    if path.suffix == ".pt":
        model = create_model(name, **kwargs)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise ActionrecError(f"{path}: does not fit {name} ({str(e).splitlines()[0]})") from None
    else:
        model = create_model(name, weights=path, **kwargs)
    return model, labels
