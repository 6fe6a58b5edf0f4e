"""Dynamic motion filters: per-clip, per-time-step k x k kernels that predict the next frame.

DynamoNet (Diba et al., "DynamoNet: Dynamic Action and Motion Network", ICCV 2019, arXiv 1904.11407,
§3, Fig. 2) predicts, from a clip of T frames, T motion filters; filter t applied to frame t predicts
frame t + 1. The filters are the "dynamic filters" of kernel-prediction networks: one k x k kernel
per clip and time step, the same kernel at every pixel and for every channel::

    pred[b, c, t, y, x] = sum_{i, j} w[b, t, i * k + j] * frame[b, c, t, y + i - r, x + j - r],  r = k // 2

so tap (i, j) reads the pixel (i - r, j - r) away, and a kernel whose mass sits at (r, r - d) moves the
content d pixels to the right. :func:`apply_motion_filters` computes this as one depthwise convolution
(each (clip, time step, channel) plane is its own group), which keeps memory at one frame per plane
(``F.unfold`` would hold k^2 copies) and lets gradients reach the kernels.

:class:`MotionFilterGenerator` maps backbone features (B, C', T', h, w) to the T kernels (our design:
the paper does not publish it); :class:`DynamicMotionRepresentation` turns the kernels into the
Dynamic Motion Representation (DMR) the classifier reads: the kernels concatenated over time (§3),
optionally reduced by a linear layer.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Padding = Literal["replicate", "zeros", "reflect", "circular"]
PADDINGS: tuple[Padding, ...] = ("replicate", "zeros", "reflect", "circular")


def filter_size(filters: torch.Tensor) -> int:
    """k of (..., k * k) kernels; raises for a last dimension that is not an odd square."""
    k = math.isqrt(filters.shape[-1])
    if k * k != filters.shape[-1] or k % 2 == 0:
        raise ValueError(f"motion filters need k*k taps with k odd, got {filters.shape[-1]}")
    return k


def shift_filter(k: int, dx: int = 0, dy: int = 0) -> torch.Tensor:
    """The (k * k,) kernel that moves the content ``dx`` pixels right and ``dy`` down (0, 0: identity)."""
    r = k // 2
    if k % 2 == 0 or max(abs(dx), abs(dy)) > r:
        raise ValueError(f"a shift of ({dx}, {dy}) needs an odd k >= {2 * max(abs(dx), abs(dy)) + 1}")
    w = torch.zeros(k, k)
    w[r - dy, r - dx] = 1.0  # out[y, x] = in[y - dy, x - dx]
    return w.flatten()


def apply_motion_filters(
    frames: torch.Tensor, filters: torch.Tensor, *, padding: Padding = "replicate"
) -> torch.Tensor:
    """Filter every frame with its own kernel: (B, C, T, H, W) frames, (B, T, k * k) kernels ->
    (B, C, T, H, W), frame t filtered with kernel t (the same kernel for every channel and pixel).

    ``padding`` says what lies beyond the border: ``replicate`` (default: the edge pixel, right for
    real video where content enters from outside), ``zeros``, ``reflect`` or ``circular`` (a torus).
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    b, c, t, h, w = frames.shape
    if filters.shape[:2] != (b, t):
        raise ValueError(f"{tuple(filters.shape)} filters for {t} frames of {b} clips; need (B, T, k*k)")
    k = filter_size(filters)
    r = k // 2
    x = frames.transpose(1, 2).reshape(1, b * t * c, h, w)  # (B, C, T, H, W) -> (1, B*T*C, H, W)
    mode = "constant" if padding == "zeros" else padding
    x = F.pad(x, (r, r, r, r), mode=mode)  # (1, B*T*C, H + 2r, W + 2r)
    weight = filters.to(x.dtype).reshape(b * t, 1, 1, k, k).expand(b * t, c, 1, k, k)
    weight = weight.reshape(b * t * c, 1, k, k)  # (B*T*C, 1, k, k): one kernel per plane
    y = F.conv2d(x, weight, groups=b * t * c)  # (1, B*T*C, H, W)
    return y.reshape(b, t, c, h, w).transpose(1, 2)  # (1, B*T*C, H, W) -> (B, C, T, H, W)


class MotionFilterGenerator(nn.Module):
    """Backbone features (B, C', T', h, w) -> ``steps`` k x k motion kernels (B, steps, k * k).

    Our design (the paper leaves it open): average over space, resample time linearly from T' to
    ``steps`` (the backbone may have strided time), a temporal conv (kernel 3) with ReLU so each
    kernel sees its neighbours' features, and a 1 x 1 conv to the k^2 taps. ``normalize=True`` puts
    a softmax over the taps: every kernel is then a convex combination of shifted copies of the frame
    (brightness kept, no blow-up); False leaves the taps free. The last layer starts with small
    weights (N(0, 0.01)) and, when normalised, a bias giving half the mass to the centre tap:
    a fresh generator copies (mostly) the previous frame, the natural baseline, instead of blurring it.
    """

    def __init__(
        self, in_channels: int, *, filter_size: int = 7, hidden: int = 128, normalize: bool = True
    ) -> None:
        super().__init__()
        if filter_size < 1 or filter_size % 2 == 0:
            raise ValueError(f"filter_size must be odd and positive, got {filter_size}")
        self.filter_size, self.normalize = filter_size, normalize
        self.temporal = nn.Conv1d(in_channels, hidden, 3, padding=1)
        self.taps = nn.Conv1d(hidden, filter_size * filter_size, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        k = self.filter_size
        nn.init.normal_(self.taps.weight, 0.0, 0.01)
        with torch.no_grad():
            centre = shift_filter(k)
            # softmax: centre logit log(k^2 - 1) gives the centre tap as much mass as all others together
            bias = centre * math.log(max(k * k - 1, 1)) if self.normalize else centre
            self.taps.bias.copy_(bias)

    def forward(self, features: torch.Tensor, steps: int) -> torch.Tensor:
        z = features.flatten(3).mean(-1)  # (B, C', T', h, w) -> (B, C', T')
        if z.shape[-1] != steps:
            z = F.interpolate(z, size=steps, mode="linear", align_corners=False)  # (B, C', steps)
        z = self.taps(F.relu(self.temporal(z)))  # (B, C', steps) -> (B, k*k, steps)
        z = z.transpose(1, 2)  # (B, k*k, steps) -> (B, steps, k*k)
        return z.softmax(-1) if self.normalize else z


class DynamicMotionRepresentation(nn.Module):
    """The DMR: (B, steps, k * k) kernels -> (B, steps * k * k) concatenated over time (§3), or
    (B, dim) after a linear layer and ReLU when ``dim > 0``; ``out_features`` says which."""

    def __init__(self, steps: int, filter_size: int, *, dim: int = 0) -> None:
        super().__init__()
        flat = steps * filter_size * filter_size
        self.proj: nn.Module = (
            nn.Sequential(nn.Linear(flat, dim), nn.ReLU(inplace=True)) if dim > 0 else nn.Identity()
        )
        self.out_features = dim if dim > 0 else flat

    def forward(self, filters: torch.Tensor) -> torch.Tensor:
        return self.proj(filters.flatten(1))  # (B, steps, k*k) -> (B, steps*k*k) [-> (B, dim)]


def reconstruction_loss(
    pred: torch.Tensor, target: torch.Tensor, *, loss: Literal["l1", "l2"] = "l1"
) -> torch.Tensor:
    """Mean absolute (``l1``) or squared (``l2``) error over every element, in float32."""
    diff = pred.float() - target.float()
    if loss == "l1":
        return diff.abs().mean()
    if loss == "l2":
        return diff.square().mean()
    raise ValueError(f"loss must be 'l1' or 'l2', got {loss!r}")
