"""Late fusion of several trained models at test time, as the two-stream (Simonyan & Zisserman 2014,
arXiv 1406.2199) and TSN (Wang et al. 2016, arXiv 1608.00859) papers fuse RGB and flow: each model is
evaluated on its own, the fusion is the weighted average of the per-video softmax scores over the
videos every model could read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from actionrec.engine.evaluate import EvalResult, _metrics
from actionrec.errors import ActionrecError


def common_videos(results: Sequence[EvalResult]) -> list[EvalResult]:
    """Each result restricted to the videos that every result scored, in the first result's order.

    A video one model could not read is left out of all, so the models (and their fusion) are
    compared on the same set. Videos are matched by path; the class lists must be the same.
    """
    if not results:
        raise ActionrecError("no results to compare")
    first = results[0]
    for r in results:
        if list(r.classes) != list(first.classes):
            raise ActionrecError("the models' class lists differ; they cannot be fused")
        if len(set(r.paths)) != len(r.paths):
            raise ActionrecError("videos are matched by path, but the paths of a result are not unique")
    shared = set.intersection(*(set(r.paths) for r in results))
    keep = [p for p in first.paths if p in shared]
    aligned = [_subset(r, keep) for r in results]
    if any(not np.array_equal(r.labels, aligned[0].labels) for r in aligned):
        raise ActionrecError("the models' results give different labels for the same video")
    return aligned


def _subset(result: EvalResult, paths: list[str]) -> EvalResult:
    """``result`` with only the videos of ``paths``, in that order (metrics recomputed)."""
    where = {p: i for i, p in enumerate(result.paths)}
    idx = np.asarray([where[p] for p in paths], dtype=np.int64)
    if len(idx) == len(result.paths) and (idx == np.arange(len(idx))).all():
        return result
    scores, labels = result.scores[idx], result.labels[idx]
    hits = None if result.view_hits is None else result.view_hits[idx]
    metrics = _metrics(scores, labels, result.classes, hits, result.num_views)
    return dataclasses.replace(
        result, **metrics, scores=scores, labels=labels, paths=list(paths), view_hits=hits
    )


def fuse_results(results: Sequence[EvalResult], *, weights: Sequence[float] | None = None) -> EvalResult:
    """Late fusion: the weighted average of the models' per-video softmax scores (equal weights by default).

    Softmax scores (not logits) are averaged, as in the two-stream and TSN papers, so models whose
    logits have different scales weigh only as ``weights`` say; the weights are normalised to sum 1.
    Only the videos every model scored are fused (see :func:`common_videos`).
    """
    weights = [1.0] * len(results) if weights is None else [float(w) for w in weights]
    if len(weights) != len(results):
        raise ActionrecError(f"{len(weights)} fusion weights given for {len(results)} models")
    if any(not w > 0 for w in weights):  # also rejects NaN
        raise ActionrecError(f"fusion weights must be > 0, got {weights}")
    if any(r.aggregate != "softmax" for r in results):
        raise ActionrecError("fusion averages softmax scores; evaluate every model with aggregate='softmax'")
    aligned = common_videos(results)
    w = np.asarray(weights, dtype=np.float64) / sum(weights)
    scores = sum(wi * r.scores for wi, r in zip(w, aligned))
    first = aligned[0]
    same = {(r.num_views, r.num_clips, r.num_crops) for r in aligned}
    views, clips, crops = same.pop() if len(same) == 1 else (0, None, None)
    return EvalResult(
        **_metrics(scores, first.labels, first.classes, None, views),
        scores=scores,
        labels=first.labels,
        paths=list(first.paths),
        classes=list(first.classes),
        num_views=views,
        num_clips=clips,
        num_crops=crops,
        precision=first.precision,
        seconds=sum(r.seconds for r in results),
        failures=max(r.failures for r in results),
        extra={
            "fusion_weights": weights,
            "left_out": len(set().union(*(r.paths for r in results))) - len(first.paths),
        },
    )


def fuse_by_classifier(
    train: Sequence[EvalResult], test: Sequence[EvalResult], *, loss: str = "svm", c: float = 10.0
) -> EvalResult:
    """Late fusion by a linear classifier on the stacked L2-normalised softmax scores (Simonyan &
    Zisserman 2014, §6): fitted on the models' scores of the training videos, applied to the test
    videos' (:mod:`actionrec.engine.score_svm`). The fused scores are the softmax of its decision values.
    The models saw those training videos, so their scores there are more confident than on new videos;
    the classifier learns from that overfit picture."""
    from actionrec.engine import score_svm

    train, test = common_videos(train), common_videos(test)
    if list(train[0].classes) != list(test[0].classes):
        raise ActionrecError("the training and test results have different class lists")
    k = len(test[0].classes)
    clf = score_svm.fit([r.scores for r in train], train[0].labels, loss=loss, c=c, num_classes=k)
    z = clf.decision([r.scores for r in test])  # (N, K)
    scores = np.exp(z - z.max(1, keepdims=True))
    scores /= scores.sum(1, keepdims=True)
    fused = fuse_results(test)  # views, paths and bookkeeping of the test results
    return dataclasses.replace(
        fused,
        **_metrics(scores, fused.labels, fused.classes, None, fused.num_views),
        scores=scores,
        extra={
            **fused.extra,
            "fusion_weights": None,
            "fusion": f"linear {loss} on {len(train[0].labels)} training videos' scores",
        },
    )
