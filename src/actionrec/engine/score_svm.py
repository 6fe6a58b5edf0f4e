"""Late fusion by a linear classifier on the models' per-video scores (Simonyan & Zisserman 2014,
"Two-Stream Convolutional Networks for Action Recognition in Videos", arXiv 1406.2199, §6: "a
multi-class linear SVM trained on stacked L2-normalised softmax scores as features").

Each model's (N, K) score matrix is L2-normalised per video (``normalize="each"``, then stacked into
(N, M*K)), or the stacked vector is normalised as a whole (``"joint"``). The classifier is linear,
fitted full-batch by L-BFGS in float64 from zero weights (deterministic): ``loss="svm"`` is the
one-vs-rest squared hinge with L2 regularisation (LIBLINEAR's default L2-loss SVM), ``"logistic"`` the
multinomial cross-entropy with L2 regularisation; ``c`` weighs the data term against ½‖W‖².
A NumPy / torch API on arrays; :func:`actionrec.engine.fusion.fuse_results` is the averaging one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

LOSSES = ("svm", "logistic")
NORMALIZE = ("each", "joint", "none")


@dataclass(frozen=True)
class ScoreClassifier:
    """A fitted linear classifier on stacked score vectors: ``weight`` (K, D), ``bias`` (K,)."""

    weight: np.ndarray
    bias: np.ndarray
    normalize: str = "each"
    loss: str = "svm"

    def decision(self, scores_list: Sequence[np.ndarray]) -> np.ndarray:
        """(N, K) decision values for the models' (N, K_m) scores."""
        x = stack_scores(scores_list, self.normalize)
        return x @ self.weight.T + self.bias

    def predict(self, scores_list: Sequence[np.ndarray]) -> np.ndarray:
        """(N,) predicted class indices."""
        return self.decision(scores_list).argmax(1)


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def stack_scores(scores_list: Sequence[np.ndarray], normalize: str = "each") -> np.ndarray:
    """The models' (N, K_m) scores as one (N, sum K_m) float64 feature matrix, L2-normalised."""
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {NORMALIZE}, got {normalize!r}")
    mats = [np.asarray(s, dtype=np.float64) for s in scores_list]
    if not mats or any(m.ndim != 2 or len(m) != len(mats[0]) for m in mats):
        raise ValueError("scores_list: one (N, K) array per model, the same N videos in each")
    if normalize == "each":
        mats = [_l2(m) for m in mats]
    x = np.concatenate(mats, axis=1)
    return _l2(x) if normalize == "joint" else x


def fit(
    scores_list: Sequence[np.ndarray],
    labels: np.ndarray,
    *,
    loss: str = "svm",
    c: float = 10.0,
    normalize: str = "each",
    num_classes: int | None = None,
    max_iter: int = 200,
) -> ScoreClassifier:
    """Fit the linear classifier on the models' per-video scores and the (N,) integer labels."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    x = torch.from_numpy(stack_scores(scores_list, normalize))
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if len(y) != len(x):
        raise ValueError(f"{len(y)} labels for {len(x)} videos")
    k = num_classes or int(y.max()) + 1
    w = torch.zeros(k, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    signs = F.one_hot(y, k).double() * 2 - 1  # (N, K): +1 for the true class, -1 elsewhere
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        opt.zero_grad()
        z = x @ w.T + b  # (N, D) x (D, K) -> (N, K)
        hinge = loss == "svm"
        data = F.relu(1 - signs * z).square().sum(1).mean() if hinge else F.cross_entropy(z, y)
        total = c * data + 0.5 * w.square().sum() / len(x)
        total.backward()
        return total

    opt.step(objective)
    return ScoreClassifier(w.detach().numpy().copy(), b.detach().numpy().copy(), normalize, loss)


def predict(model: ScoreClassifier, scores_list: Sequence[np.ndarray]) -> np.ndarray:
    """(N,) class indices for the models' per-video scores."""
    return model.predict(scores_list)
