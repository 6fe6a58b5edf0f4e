"""The AlexNet-like frame network of Karpathy et al. 2014, as 3D modules with time kernel 1.

Karpathy, Toderici, Shetty, Leung, Sukthankar and Fei-Fei, "Large-scale Video Classification with
Convolutional Neural Networks", CVPR 2014 (no arXiv version), §3.1: the single-frame network
``C(96,11,3)-N-P-C(256,5,1)-N-P-C(384,3,1)-C(384,3,1)-C(256,3,1)-P-FC(4096)-FC(4096)`` on 170x170 crops,
where C(d, f, s) is a convolution of d filters f x f with stride s, N a local response normalisation
(Krizhevsky et al. 2012) with k = 2, n = 5, alpha = 1e-4, beta = 0.5, and P a max pool over
non-overlapping 2x2 regions.

The paper gives no paddings. We pad conv1 by 2 and the other convolutions to "same" (2, 1, 1, 1): the
last pool then leaves 6x6x256 at 170x170 (AlexNet's familiar 9216 features), and with the last pool
removed an 89x89 multiresolution stream ends at 7x7x256, as §3.2 states. Every convolution is a
``Conv3d`` with a ``1 x f x f`` kernel, so the network runs on every frame of a (B, C, T, H, W) clip and
:mod:`actionrec.models.karpathy` fuses time by extending chosen kernels over time.

:class:`FrameFCHead` holds the two FC layers and the classifier. It scores every time step the trunk
leaves (T for a per-frame trunk, 1 after early or slow fusion on 10 frames) and averages the scores. An
adaptive average pool to the paper's grid comes first: at the paper's input size it is the identity,
and it lets the network run on other sizes (the small clips of the tests).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class AlexNetConfig:
    """The convolutional layers as data; ``pool_after`` and ``norm_after`` count convolutions from 1."""

    widths: tuple[int, ...] = (96, 256, 384, 384, 256)
    kernels: tuple[int, ...] = (11, 5, 3, 3, 3)
    strides: tuple[int, ...] = (3, 1, 1, 1, 1)
    paddings: tuple[int, ...] = (2, 2, 1, 1, 1)
    norm_after: tuple[int, ...] = (1, 2)
    pool_after: tuple[int, ...] = (1, 2, 5)
    fc_widths: tuple[int, ...] = (4096, 4096)
    grid: int = 6  # the last conv's map at the paper's input: 6x6 at 170 px, 7x7 at 89 px without pool 5
    lrn: tuple[int, float, float, float] = (5, 1e-4, 0.5, 2.0)  # n, alpha, beta, k
    in_channels: int = 3


class AlexNetTrunk(nn.Sequential):
    """conv1 .. conv5 with ReLU, LRN (``norm1``, ``norm2``) and 2x2 pools (``pool1`` ...), per frame.

    (B, 3, T, H, W) -> (B, 256, T, h, w); 170x170 gives h = w = 6.
    """

    def __init__(self, cfg: AlexNetConfig = AlexNetConfig()) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        in_ch = cfg.in_channels
        size, alpha, beta, k = cfg.lrn
        for i, (width, kernel, stride, pad) in enumerate(
            zip(cfg.widths, cfg.kernels, cfg.strides, cfg.paddings), start=1
        ):
            layers[f"conv{i}"] = nn.Conv3d(
                in_ch, width, (1, kernel, kernel), stride=(1, stride, stride), padding=(0, pad, pad)
            )
            layers[f"relu{i}"] = nn.ReLU(inplace=True)
            if i in cfg.norm_after:
                layers[f"norm{i}"] = nn.LocalResponseNorm(size, alpha=alpha, beta=beta, k=k)
            if i in cfg.pool_after:
                layers[f"pool{i}"] = nn.MaxPool3d((1, 2, 2), stride=(1, 2, 2))
            in_ch = width
        super().__init__(layers)
        self.num_features = in_ch

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)


class FrameFCHead(nn.Module):
    """(B, F, T, h, w) -> (B, num_classes): FC(4096)-FC(4096)-classifier on every time step, averaged.

    ``pre_logits`` returns the time-averaged output of the last FC layer (B, 4096).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        grid: int = 6,
        fc_widths: tuple[int, ...] = (4096, 4096),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool3d((None, grid, grid))
        layers: list[nn.Module] = []
        width = in_channels * grid * grid
        for i, out in enumerate(fc_widths):
            if i > 0:
                layers.append(nn.Dropout(dropout))
            layers += [nn.Linear(width, out), nn.ReLU(inplace=True)]
            width = out
        self.fcs = nn.Sequential(*layers)
        self.in_features = width
        self.dropout = nn.Dropout(dropout)
        self.fc: nn.Module = self._make_fc(num_classes)

    def _make_fc(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.in_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool(x)  # (B, F, T, h, w) -> (B, F, T, grid, grid); the identity at the paper's size
        x = self.fcs(
            x.transpose(1, 2).flatten(2)
        )  # (B, T, F, grid, grid) -> (B, T, F*grid^2) -> (B, T, 4096)
        if pre_logits:
            return x.mean(1)  # (B, T, 4096) -> (B, 4096)
        return self.fc(self.dropout(x)).mean(1)  # (B, T, 4096) -> (B, T, K) -> (B, K)

    def reset(self, num_classes: int) -> None:
        self.fc = self._make_fc(num_classes)
