"""Late fusion by a linear classifier on L2-normalised stacked scores (two-stream paper, §6)."""

from __future__ import annotations

import numpy as np
import pytest

from actionrec.engine import score_svm


def _toy(n: int = 120, k: int = 3, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Two models, each sure about a different subset of classes: only their combination is right."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    a = rng.random((n, k)) * 0.2
    b = rng.random((n, k)) * 0.2
    a[np.arange(n), y] += np.where(y == 0, 1.0, 0.0)
    b[np.arange(n), y] += np.where(y > 0, 1.0, 0.0)
    a[np.arange(n), 1] += np.where(y > 0, 1.5, 0.0)  # model a says 1 for 1 and 2
    return [a, b], y


@pytest.mark.parametrize("loss", score_svm.LOSSES)
def test_separates_a_toy_problem(loss: str) -> None:
    scores, y = _toy()
    model = score_svm.fit(scores, y, loss=loss)
    assert (score_svm.predict(model, scores) == y).mean() == 1.0
    test_scores, test_y = _toy(seed=1)
    assert (model.predict(test_scores) == test_y).mean() >= 0.95
    average = (scores[0] + scores[1]).argmax(1)
    assert (average == y).mean() < 1.0  # the plain average does not solve it


def test_l2_normalisation() -> None:
    a = np.array([[3.0, 4.0], [0.0, 0.0]])
    b = np.array([[1.0, 0.0], [0.0, 2.0]])
    each = score_svm.stack_scores([a, b], "each")
    np.testing.assert_allclose(each, [[0.6, 0.8, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    joint = score_svm.stack_scores([a, b], "joint")
    np.testing.assert_allclose(np.linalg.norm(joint, axis=1), [1.0, 1.0])
    # scaling one model's scores changes nothing once normalised
    scores, y = _toy()
    m1 = score_svm.fit(scores, y)
    np.testing.assert_allclose(m1.decision(scores), m1.decision([scores[0] * 7, scores[1]]))
    with pytest.raises(ValueError):
        score_svm.stack_scores([a, b[:1]])
