"""Exact values of the classification metrics on hand-worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from actionrec.engine import metrics as M

# 5 samples, 4 classes. Rankings: s0: 2>1>0>3, s1: 0>3>1>2, s2: 1>2>3>0, s3: 3>2>0>1, s4: 0=1>2>3 (tie)
SCORES = np.array(
    [
        [0.2, 0.3, 0.4, 0.1],
        [0.5, 0.1, 0.0, 0.4],
        [0.0, 0.6, 0.3, 0.1],
        [0.2, 0.0, 0.3, 0.5],
        [0.4, 0.4, 0.2, 0.0],
    ]
)
LABELS = np.array([2, 3, 2, 3, 1])


def test_topk_accuracy_exact() -> None:
    assert M.topk_accuracy(SCORES, LABELS, 1) == pytest.approx(2 / 5)  # s0, s3
    assert M.topk_accuracy(SCORES, LABELS, 2) == pytest.approx(
        5 / 5
    )  # + s1 (3 second), s2, s4 (tie -> 1 second)
    assert M.topk_accuracy(SCORES, LABELS, 10) == 1.0  # k beyond K means every class


def test_ties_go_to_the_lower_index() -> None:
    assert M.ranked(SCORES)[4].tolist() == [0, 1, 2, 3]
    assert not M.topk_correct(SCORES, LABELS, 1)[4]


def test_confusion_matrix_and_class_accuracies() -> None:
    predictions = M.ranked(SCORES)[:, 0]  # [2, 0, 1, 3, 0]
    cm = M.confusion_matrix(LABELS, predictions, 4)
    expected = np.zeros((4, 4), dtype=np.int64)
    for y, p in [(2, 2), (3, 0), (2, 1), (3, 3), (1, 0)]:
        expected[y, p] += 1
    np.testing.assert_array_equal(cm, expected)
    acc = M.per_class_accuracy(cm)
    assert np.isnan(acc[0])  # class 0 has no sample
    np.testing.assert_allclose(acc[1:], [0.0, 0.5, 0.5])
    assert M.mean_class_accuracy(cm) == pytest.approx((0.0 + 0.5 + 0.5) / 3)


def test_mean_class_accuracy_differs_from_top1_on_imbalanced_data() -> None:
    labels = np.array([0, 0, 0, 1])
    cm = M.confusion_matrix(labels, np.array([0, 0, 0, 0]), 2)
    assert M.mean_class_accuracy(cm) == 0.5
    assert M.topk_accuracy(np.eye(2)[[0, 0, 0, 0]], labels, 1) == 0.75


def test_subset_accuracy_chooses_only_among_the_pair() -> None:
    # samples of classes 2 and 3 are s0, s1, s2, s3; between columns 2 and 3: s0 -> 2 ok, s1 -> 3 ok,
    # s2 -> 2 ok, s3 -> 3 ok, although s1 and s2 are wrong in the 4-way decision
    assert M.subset_accuracy(SCORES, LABELS, (2, 3)) == 1.0
    assert M.subset_accuracy(SCORES, LABELS, (0, 1)) == 0.0  # only s4 (label 1): tie 0 = 1 goes to 0
    # classes 1, 2: s0 (2) 0.3 < 0.4 ok, s2 (2) 0.6 > 0.3 wrong, s4 (1) 0.4 > 0.2 ok
    assert M.subset_accuracy(SCORES, LABELS, (1, 2)) == pytest.approx(2 / 3)
    assert M.subset_accuracy(SCORES, LABELS, (0,)) == 0.0  # no sample of the subset


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="expected scores"):
        M.topk_accuracy(SCORES[0], LABELS, 1)
    with pytest.raises(ValueError, match="labels must lie"):
        M.topk_accuracy(SCORES, np.array([0, 1, 2, 3, 4]), 1)


def test_empty_input_gives_zero() -> None:
    assert M.topk_accuracy(np.zeros((0, 3)), np.zeros(0, dtype=np.int64), 1) == 0.0
    assert M.mean_class_accuracy(np.zeros((3, 3), dtype=np.int64)) == 0.0
