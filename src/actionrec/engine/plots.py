"""PNG figures for evaluation and prediction: confusion matrix, per-class accuracy, timeline, comparison.

matplotlib runs with the non-interactive Agg backend, so these work on machines without a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


def _short(names: Sequence[str], width: int = 24) -> list[str]:
    return [n if len(n) <= width else n[: width - 1] + "…" for n in names]


def plot_confusion(cm: np.ndarray, classes: Sequence[str], path: str | Path, *, title: str = "") -> Path:
    """Row-normalised confusion matrix (true class down, predicted across); tick labels when K <= 60."""
    plt = _pyplot()
    k = len(classes)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, np.maximum(rows, 1), dtype=np.float64)
    size = min(4 + 0.25 * k, 24)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if k <= 60:
        ax.set_xticks(range(k), _short(classes), rotation=90, fontsize=7)
        ax.set_yticks(range(k), _short(classes), fontsize=7)
    if k <= 20:
        for i, j in zip(*np.nonzero(cm)):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix")
    return _save(fig, path)


def plot_per_class(
    accuracy: np.ndarray, classes: Sequence[str], path: str | Path, *, title: str = ""
) -> Path:
    """Horizontal bars of per-class accuracy (classes without samples are left empty)."""
    plt = _pyplot()
    k = len(classes)
    fig, ax = plt.subplots(figsize=(7, min(2 + 0.22 * k, 40)))
    values = np.nan_to_num(np.asarray(accuracy, dtype=np.float64), nan=0.0) * 100
    ax.barh(range(k), values, color="tab:blue")
    ax.set_yticks(range(k), _short(classes), fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy (%)")
    ax.set_title(title or "per-class accuracy")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_timeline(
    times: np.ndarray,
    scores: np.ndarray,
    classes: Sequence[str],
    path: str | Path,
    *,
    top: int = 5,
    title: str = "",
) -> Path:
    """Class probability against time (window centres, seconds) for the ``top`` classes of the mean score."""
    plt = _pyplot()
    scores = np.asarray(scores)
    best = np.argsort(-scores.mean(axis=0), kind="stable")[:top]
    fig, ax = plt.subplots(figsize=(9, 4))
    for c in best:
        ax.plot(
            times, scores[:, c], marker="o", markersize=3, label=classes[c] if c < len(classes) else str(c)
        )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.set_title(title or "class scores over time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return _save(fig, path)


def plot_comparison(
    results: Mapping[str, Mapping[str, Any]], path: str | Path, *, chance: float = 0.5
) -> Path:
    """Grouped bars: overall top-1 and each pair's accuracy for every model (fractions in [0, 1])."""
    plt = _pyplot()
    models = list(results)
    pairs = list(next(iter(results.values()), {}).get("pairs", {}))
    groups = ["top-1", *pairs]
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups) + 2), 4))
    x = np.arange(len(groups))
    for i, name in enumerate(models):
        values = [results[name]["top1"], *(results[name]["pairs"].get(p, 0.0) for p in pairs)]
        ax.bar(x + (i - (len(models) - 1) / 2) * width, np.asarray(values) * 100, width, label=name)
    ax.axhline(chance * 100, color="gray", linestyle="--", linewidth=1, label="pair chance")
    ax.set_xticks(x, groups, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("accuracy (%)")
    ax.set_title("temporal model vs single-frame baseline")
    ax.legend(fontsize=8)
    return _save(fig, path)
