"""Classification metrics on numpy arrays: top-k, per-class and mean class accuracy, confusion matrix.

Every function takes ``scores`` of shape (N, K) (logits or probabilities: only their order matters)
and integer ``labels`` of shape (N,), and returns exact fractions in [0, 1]. Ties in ``scores`` are
broken in favour of the lower class index, as ``np.argsort(-scores, kind="stable")`` orders them.
"""

from __future__ import annotations

import numpy as np


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores)
    labels = np.asarray(labels).astype(np.int64)
    if scores.ndim != 2 or labels.ndim != 1 or scores.shape[0] != labels.shape[0]:
        raise ValueError(f"expected scores (N, K) and labels (N,), got {scores.shape} and {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"labels must lie in [0, {scores.shape[1]}), got [{labels.min()}, {labels.max()}]")
    return scores, labels


def ranked(scores: np.ndarray) -> np.ndarray:
    """Class indices of each row sorted by decreasing score (stable: ties keep index order)."""
    return np.argsort(-np.asarray(scores), axis=1, kind="stable")


def topk_correct(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(N,) bool: whether the true label is among the ``k`` highest scores of each row."""
    scores, labels = _check(scores, labels)
    k = min(k, scores.shape[1])
    return (ranked(scores)[:, :k] == labels[:, None]).any(axis=1)


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Fraction of rows whose label is among their ``k`` best classes (0.0 for no rows)."""
    correct = topk_correct(scores, labels, k)
    return float(correct.mean()) if correct.size else 0.0


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts: row = true class, column = predicted class."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ in shape")
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, predictions), 1)
    return cm


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """(K,) recall of each class from a confusion matrix; NaN for classes with no sample."""
    cm = np.asarray(cm)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def mean_class_accuracy(cm: np.ndarray) -> float:
    """Mean of the per-class accuracies over the classes that have samples (0.0 when none has)."""
    acc = per_class_accuracy(cm)
    present = acc[~np.isnan(acc)]
    return float(present.mean()) if present.size else 0.0


def subset_accuracy(scores: np.ndarray, labels: np.ndarray, classes: list[int] | tuple[int, ...]) -> float:
    """Top-1 accuracy over the samples of ``classes``, choosing only among ``classes``.

    This is the accuracy of the two-way decision for a pair of classes that differ only in their
    motion (e.g. "moving left" vs "moving right"): a model that cannot see time sits at 0.5.
    """
    scores, labels = _check(scores, labels)
    classes_arr = np.asarray(classes, dtype=np.int64)
    mask = np.isin(labels, classes_arr)
    if not mask.any():
        return 0.0
    # (N, K) -> (n, len(classes)): scores of the chosen classes for the samples of those classes
    sub = scores[mask][:, classes_arr]
    picked = classes_arr[ranked(sub)[:, 0]]
    return float((picked == labels[mask]).mean())
