"""The non-local block of "Non-local Neural Networks" (Wang et al., 2018, arXiv 1711.07971, §3.2-3.3, Fig. 2).

``y_i = 1/C(x) * sum_j f(x_i, x_j) g(x_j)`` over all space-time positions ``j``, then
``z_i = BN(W_z y_i) + x_i``. Implemented pairwise functions ``f`` (§3.2):

- ``"gaussian"``: ``exp(x_i^T x_j)``, normalised by a softmax over ``j`` (no embedding);
- ``"embedded_gaussian"``: ``exp(theta(x_i)^T phi(x_j))``, softmax over ``j`` (the paper's default;
  ``scale=True`` divides by ``sqrt(inter)`` as in self-attention);
- ``"dot_product"``: ``theta(x_i)^T phi(x_j)``, normalised by the number of positions ``N``;
- ``"concatenation"``: ``ReLU(w_f^T [theta(x_i), phi(x_j)])``, normalised by ``N``. Because ``w_f`` is
  linear, ``w_f^T [a, b] = w_a^T a + w_b^T b``; the two halves are applied separately and broadcast,
  which never materialises the ``(N, M, 2 * inter)`` concatenation.

theta, phi and g are 1x1x1 convolutions to ``inter = C / 2`` channels (the bottleneck of §3.3);
``sub_sample`` max-pools the input of phi and g by 1x2x2 (§3.3, "subsampling trick"), which cuts the
pairwise cost by four without changing the output shape. ``W_z`` is followed by BatchNorm whose scale
starts at zero, so a freshly inserted block is the identity (§3.3) and a pre-trained network keeps its
behaviour.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MODES = ("gaussian", "embedded_gaussian", "dot_product", "concatenation")


class NonLocalBlock(nn.Module):
    """Space-time non-local block: (B, C, T, H, W) -> (B, C, T, H, W)."""

    def __init__(
        self,
        in_channels: int,
        *,
        inter_channels: int | None = None,
        mode: str = "embedded_gaussian",
        sub_sample: bool = True,
        scale: bool = False,
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"non-local mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.scale = scale
        self.inter_channels = inter_channels or max(in_channels // 2, 1)
        ci = self.inter_channels
        self.g = nn.Conv3d(in_channels, ci, 1)
        self.theta: nn.Module | None = None
        self.phi: nn.Module | None = None
        if mode != "gaussian":
            self.theta = nn.Conv3d(in_channels, ci, 1)
            self.phi = nn.Conv3d(in_channels, ci, 1)
        self.concat_project: nn.Linear | None = (
            nn.Linear(2 * ci, 1, bias=False) if mode == "concatenation" else None
        )
        # ceil_mode: identical to floor on the even maps of a 224 input, and never empties a 1-pixel map.
        self.pool: nn.Module = nn.MaxPool3d((1, 2, 2), ceil_mode=True) if sub_sample else nn.Identity()
        self.out_conv = nn.Conv3d(ci, in_channels, 1)  # W_z
        self.bn = nn.BatchNorm3d(in_channels)
        if zero_init:
            nn.init.zeros_(self.bn.weight)

    def _affinity(self, x: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """Normalised pairwise weights ``f(x_i, x_j) / C(x)`` of shape (B, N, M)."""
        if self.mode == "gaussian":
            query = x.flatten(2).transpose(1, 2)  # (B, C, T, H, W) -> (B, N, C)
            key = pooled.flatten(2)  # (B, C, T, h, w) -> (B, C, M)
            return torch.softmax(torch.bmm(query, key), dim=-1)  # (B, N, C) x (B, C, M) -> (B, N, M)
        assert self.theta is not None and self.phi is not None
        theta = self.theta(x).flatten(2).transpose(1, 2)  # (B, Ci, T, H, W) -> (B, N, Ci)
        phi = self.phi(pooled).flatten(2)  # (B, Ci, T, h, w) -> (B, Ci, M)
        if self.mode == "concatenation":
            assert self.concat_project is not None
            w_theta, w_phi = self.concat_project.weight.chunk(2, dim=1)  # (1, 2Ci) -> 2 x (1, Ci)
            a = theta @ w_theta.t()  # (B, N, Ci) x (Ci, 1) -> (B, N, 1)
            b = w_phi @ phi  # (1, Ci) x (B, Ci, M) -> (B, 1, M)
            return F.relu(a + b) / phi.shape[-1]  # (B, N, 1) + (B, 1, M) -> (B, N, M)
        logits = torch.bmm(theta, phi)  # (B, N, Ci) x (B, Ci, M) -> (B, N, M)
        if self.mode == "dot_product":
            return logits / phi.shape[-1]
        if self.scale:
            logits = logits / self.inter_channels**0.5
        return torch.softmax(logits, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t, h, w = x.shape
        pooled = self.pool(x)
        weights = self._affinity(x, pooled)  # (B, N, M)
        g = self.g(pooled).flatten(2).transpose(1, 2)  # (B, Ci, T, h, w) -> (B, M, Ci)
        y = torch.bmm(weights, g)  # (B, N, M) x (B, M, Ci) -> (B, N, Ci)
        y = y.transpose(1, 2).reshape(b, self.inter_channels, t, h, w)  # (B, N, Ci) -> (B, Ci, T, H, W)
        return x + self.bn(self.out_conv(y))
