"""Fusing the feature maps of two streams (Feichtenhofer, Pinz & Zisserman 2016, "Convolutional
Two-Stream Network Fusion for Video Action Recognition", arXiv 1604.06573).

§3.1, spatial fusion of ``a`` (the spatial stream) and ``b`` (the temporal stream), both
(B, C, T, H, W), at every time step and location:

* ``sum``: a + b; ``max``: the elementwise maximum; ``concat``: [a, b] on channels (2C);
* ``conv``: [a, b] convolved by a filter bank to C channels. With ``kernel=(1, 1, 1)`` it is the
  paper's 2D conv fusion (1 x 1 x 2C x C); with (3, 3, 3) it is the fusion of the final architecture
  (§3.2 "3D Conv + 3D Pooling", Fig. 4: concatenation, a 3x3x3 Conv3D from 1024 to 512 channels,
  ReLU, 3D max-pooling). Initialisation, ``init=``:

  - ``"paper"``: the released code's (``cnn_ucf101_fusion.m``, ``initMethod = '2sumAB'`` times a
    Gaussian): the weight from input channel i of ``a`` to output i is 0.25, from channel i of ``b``
    0.75, every other channel pair 0, each tap multiplied by a normalised 3-D Gaussian (sigma = 1,
    the taps sum to 1; a 1-tap kernel is just the centre), bias 0. So on an input that is constant
    over the kernel's window the fusion gives 0.25 a + 0.75 b: a weighted sum.
  - ``"sum"``: [I I] at the centre tap (``initMethod = 'sumAB'``): exactly a + b at initialisation.
  - ``"random"``: PyTorch's default.
* ``bilinear``: the outer product of a and b at each location, summed over locations (here averaged,
  which only rescales): a (B, C*C, T, 1, 1) map that has lost where things were.

§3.2, temporal fusion of the fused maps over T: :class:`Pool3d`, a max-pool over time and space
(the code replaces pool5 by a 3D max-pool of the same spatial size and stride, over the 5 frames of
a clip with temporal stride 2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

FUSIONS = ("sum", "max", "concat", "conv", "bilinear")
CONV_INITS = ("paper", "sum", "random")


def gaussian_kernel3d(size: tuple[int, int, int], sigma: float = 1.0) -> torch.Tensor:
    """A (kt, kh, kw) Gaussian centred in the window, normalised to sum 1."""
    axes = [torch.arange(k, dtype=torch.float64) - (k - 1) / 2 for k in size]
    t, h, w = torch.meshgrid(*axes, indexing="ij")
    g = torch.exp(-(t**2 + h**2 + w**2) / (2 * sigma**2))
    return (g / g.sum()).float()


class ConvFusion(nn.Module):
    """[a, b] (2C channels) -> Conv3d -> (B, out, T, H, W), 'same' padding, stride 1 (no ReLU here)."""

    def __init__(
        self,
        channels: int,
        *,
        out_channels: int | None = None,
        kernel: tuple[int, int, int] = (3, 3, 3),
        init: str = "paper",
    ) -> None:
        super().__init__()
        if init not in CONV_INITS:
            raise ValueError(f"init must be one of {CONV_INITS}, got {init!r}")
        if any(k % 2 == 0 for k in kernel):
            raise ValueError(f"the fusion kernel must be odd in every dimension, got {kernel}")
        out = out_channels or channels
        self.conv = nn.Conv3d(2 * channels, out, kernel, padding=tuple(k // 2 for k in kernel))
        if init != "random":
            self.reset_to(init)

    @torch.no_grad()
    def reset_to(self, init: str) -> None:
        """Set the weights as ``init`` says (see the module docstring)."""
        out, in2, *kernel = self.conv.weight.shape
        c = in2 // 2
        eye = torch.eye(c, out).T  # (out, C): output i reads input i
        wa, wb = (0.25, 0.75) if init == "paper" else (1.0, 1.0)
        mix = torch.cat([wa * eye, wb * eye], dim=1)  # (out, 2C)
        if init == "paper":
            taps = gaussian_kernel3d(tuple(kernel))  # type: ignore[arg-type]
        else:
            taps = torch.zeros(kernel)
            taps[tuple(k // 2 for k in kernel)] = 1.0
        self.conv.weight.copy_(mix[:, :, None, None, None] * taps)  # (out, 2C, kt, kh, kw)
        self.conv.bias.zero_()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([a, b], dim=1))  # (B, 2C, T, H, W) -> (B, out, T, H, W)


def bilinear_fusion(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) x (B, C, T, H, W) -> (B, C*C, T, 1, 1): outer products averaged over locations."""
    bsz, c, t, h, w = a.shape
    out = torch.einsum("bcthw,bdthw->btcd", a, b) / (h * w)  # (B, T, C, C)
    return out.reshape(bsz, t, c * c).permute(0, 2, 1)[..., None, None]  # -> (B, C*C, T, 1, 1)


class StreamFusion(nn.Module):
    """Spatial fusion of two (B, C, T, H, W) maps by ``kind`` (one of :data:`FUSIONS`).

    ``out_channels(C)`` is the fused width: C for sum / max / conv, 2C for concat, C*C for bilinear.
    ``conv`` is followed by a ReLU (the fused map replaces a ReLU output of the tower).
    """

    def __init__(
        self,
        kind: str,
        channels: int,
        *,
        kernel: tuple[int, int, int] = (3, 3, 3),
        init: str = "paper",
    ) -> None:
        super().__init__()
        if kind not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {kind!r}")
        self.kind, self.channels = kind, channels
        self.conv = ConvFusion(channels, kernel=kernel, init=init) if kind == "conv" else None

    @property
    def out_channels(self) -> int:
        c = self.channels
        return {"concat": 2 * c, "bilinear": c * c}.get(self.kind, c)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.kind == "sum":
            return a + b
        if self.kind == "max":
            return torch.maximum(a, b)
        if self.kind == "concat":
            return torch.cat([a, b], dim=1)  # (B, C, ...) x 2 -> (B, 2C, ...)
        if self.kind == "bilinear":
            return bilinear_fusion(a, b)
        return F.relu(self.conv(a, b))  # type: ignore[misc]


class Pool3d(nn.Module):
    """3D max-pooling in place of a tower's 2D pool5: ``(frames, kh, kw)`` window, stride
    ``(temporal_stride, sh, sw)``; the window covers at most the clip's T steps (T=1: a 2D pool)."""

    def __init__(
        self,
        *,
        frames: int = 5,
        kernel: tuple[int, int] = (1, 1),
        stride: tuple[int, int] = (1, 1),
        temporal_stride: int = 2,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.frames, self.kernel, self.stride = frames, kernel, stride
        self.temporal_stride, self.ceil_mode = temporal_stride, ceil_mode

    @classmethod
    def like(cls, pool2d: nn.Module, *, frames: int = 5, temporal_stride: int = 2) -> Pool3d:
        """The 3D version of a tower's ``nn.MaxPool2d`` (or a time-only pool after an identity)."""
        if isinstance(pool2d, nn.MaxPool2d):
            k, s = pool2d.kernel_size, pool2d.stride
            pair = (k, k) if isinstance(k, int) else tuple(k)
            step = (s, s) if isinstance(s, int) else tuple(s)
            return cls(
                frames=frames,
                kernel=pair,  # type: ignore[arg-type]
                stride=step,  # type: ignore[arg-type]
                temporal_stride=temporal_stride,
                ceil_mode=pool2d.ceil_mode,
            )
        return cls(frames=frames, temporal_stride=temporal_stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kt = min(self.frames, x.shape[2])
        kh, kw = (min(k, s) for k, s in zip(self.kernel, x.shape[3:]))
        # (B, C, T, H, W) -> (B, C, T', H', W')
        return F.max_pool3d(
            x, (kt, kh, kw), stride=(self.temporal_stride, *self.stride), ceil_mode=self.ceil_mode
        )


def log_mean_softmax(*logits: torch.Tensor) -> torch.Tensor:
    """log of the average of the softmax of each (B, K) logits: its softmax is exactly that average."""
    logp = torch.stack([F.log_softmax(x.float(), dim=-1) for x in logits])  # (M, B, K)
    return torch.logsumexp(logp, dim=0) - math.log(len(logits))
