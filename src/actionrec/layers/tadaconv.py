"""Temporally-adaptive 2D convolution of "TAda! Temporally-Adaptive Convolutions for Video Understanding"
(Huang et al., ICLR 2022, arXiv 2110.06178, §3).

TAdaConv (§3.1) convolves frame ``t`` with its own kernel ``W_t = alpha_t * W_b``: a shared base kernel
``W_b`` calibrated per video and per frame by a factor ``alpha_t``. ``alpha`` has shape (B, C, T, 1, 1)
and scales the input channels of the 2D kernel (``cal_dim="cin"``, the paper's choice) or, as the
official code also allows, its output channels (``cal_dim="cout"``). The calibration generator
(§3.2, :class:`TemporalCalibration`) is the official ``RouteFuncMLP``::

    x_bar = spatial mean of x                        (B, C, T, 1, 1)
    g     = mean of x_bar over T                     (B, C, 1, 1, 1)   "global context"
    alpha = 1 + b(ReLU(bn(a(x_bar + g_conv(g)))))    a, b: [k_t, 1, 1] convs, C -> C/r -> C

``b`` starts at zero, so a fresh layer equals the static per-frame convolution with ``W_b``.

Two equivalent implementations (``impl``):

- ``"grouped"``: the official one. All B*T calibrated kernels are materialised and applied as one
  grouped convolution with B*T groups.
- ``"scaled"``: the calibration is linear in a channel, so ``(alpha_t * W_b) x = W_b (alpha_t * x)`` for
  ``cin`` and ``alpha_t * (W_b x)`` for ``cout``: scale the input (or the output) and run one ordinary
  convolution over the B*T frames. One-off measurement, whole layer incl. the generator (2-core Intel
  Xeon shared with a training job, 1 thread, nice 19; B=2, C=64->64, T=8, 28x28, 3x3, median of 5,
  two runs): forward+backward cin grouped 38.5/40.5 ms vs scaled 33.9/37.5 ms, cout 35.2/37.8 vs
  36.2/35.4 ms; forward alone 10-17 ms either way, within the noise. ``"scaled"`` is the default: no
  slower here beyond the noise, it keeps no B*T*C_out*C_in*k*k kernel tensor, and it uses ordinary
  (ungrouped) conv kernels.

Loading the official checkpoints (``tadaconv/models/module_zoo/ops/tadaconv.py`` and
``branches/tada_branch.py`` of alibaba-mmai-research/TAdaConv): their ``TAdaConv2d.weight`` is
(1, 1, C_out, C_in // groups, kh, kw), ours is (C_out, C_in, kh, kw) (``w.flatten(0, 2)``); their bias is
(1, 1, C_out), not calibrated, ours is (C_out,). Their generator sits beside the conv as ``b_rf`` with
children ``g``, ``a``, ``bn``, ``b``; ours sits inside it as ``rf`` with the same children and shapes,
so ``conv_branch.b_rf.*`` maps to ``<conv>.rf.*``.

:class:`PixelTemporalAttention` is our extension, not part of the paper (see its docstring).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

CAL_DIMS = ("cin", "cout")
IMPLS = ("grouped", "scaled")
Pair = tuple[int, int]


def _pair(v: int | Pair) -> Pair:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class TemporalCalibration(nn.Module):
    """The calibration generator (official ``RouteFuncMLP``): (B, C_in, T, H, W) -> alpha (B, C_cal, T, 1, 1).

    ``out_channels`` (the calibrated width, C_cal) defaults to ``in_channels``; the official generator
    always outputs ``in_channels``, which for ``cal_dim="cout"`` only works when C_in == C_out.
    ``global_context=False`` drops ``g`` (an ablation; the module then has no ``g`` parameters).
    A model's weight-init loop must leave ``b.weight`` at zero (or call :meth:`reset_parameters`
    afterwards), as the official init helper does through its ``skip_init`` flag.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        *,
        reduction: int = 4,
        kernel_t: int | Pair = 3,
        global_context: bool = True,
    ) -> None:
        super().__init__()
        k_a, k_b = _pair(kernel_t)
        hidden = max(1, in_channels // reduction)
        self.g = nn.Conv3d(in_channels, in_channels, 1) if global_context else None
        self.a = nn.Conv3d(in_channels, hidden, (k_a, 1, 1), padding=(k_a // 2, 0, 0))
        self.bn = nn.BatchNorm3d(hidden)
        self.b = nn.Conv3d(
            hidden, out_channels or in_channels, (k_b, 1, 1), padding=(k_b // 2, 0, 0), bias=False
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero ``b`` so that alpha == 1 (the static convolution)."""
        nn.init.zeros_(self.b.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_bar = x.mean(dim=(3, 4), keepdim=True)  # (B, C, T, H, W) -> (B, C, T, 1, 1)
        if self.g is not None:
            x_bar = x_bar + self.g(x_bar.mean(dim=2, keepdim=True))  # + (B, C, 1, 1, 1), broadcast over T
        h = F.relu(self.bn(self.a(x_bar)))  # (B, C/r, T, 1, 1)
        return 1 + self.b(h)  # (B, C_cal, T, 1, 1)


class PixelTemporalAttention(nn.Module):
    """Per-pixel attention over a temporal window (our design): (B, C, T, H, W) -> (B, C, T, H, W).

    Each position (t, h, w) attends to (t', h, w) for t' in [t - k, t + k]; offsets that fall outside
    the clip are masked out of the softmax (not zero-padded), so the edge frames spread their weight over
    fewer neighbours and T=1 attends only to itself. Scores are scaled dot products between a query and a
    key, both 1x1x1 convs C -> d = C/r::

        s(t, t') = <q(x_t), k(x_t')> / sqrt(d) + b[t' - t]
        y_t = x_t + gamma * (sum_t' softmax(s)_t' x_t' - x_t)

    The learned bias per offset ``b`` (zero at the start) breaks the block's time symmetry: without it a
    position weights its neighbours by content alone, the block computes the same function of a clip and
    of its time reversal, and it cannot help tell a motion from its reverse (on the synthetic benchmark
    the symmetric block left ``tada_small`` at chance on the horizontal, vertical and rotation pairs).
    With it, a position can prefer its past or its future frame, and channels whose gate is near 1 then
    carry the neighbour's features beside the others' own: what the following convolution needs to see
    a displacement.

    Why dot products rather than a [2k+1, 1, 1] conv emitting 2k+1 logits: the weight on a neighbour
    then depends on that neighbour's own content (does the pixel at t' look like mine?), which is what
    is needed to follow a moving object; fixed-offset logits computed from the centre pixel alone could
    not tell a matching neighbour from a mismatching one. The values are the raw features, so the block
    only mixes frames and leaves channel mixing to the following convolution.

    ``gamma`` is a per-channel gate starting at 0, so a new block is the identity (and, as with any
    zero-init residual, ``q`` and ``k`` receive gradient only once ``gamma`` has moved). ``gamma = 1``
    replaces each feature by the weighted sum. ``enabled=False`` (also settable later, for ablations on a
    trained model) returns the input unchanged; the parameters are kept either way.
    """

    def __init__(self, channels: int, *, window: int = 1, reduction: int = 4, enabled: bool = True) -> None:
        super().__init__()
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        self.enabled = enabled
        self.dim = max(1, channels // reduction)
        self.q = nn.Conv3d(channels, self.dim, 1)
        self.k = nn.Conv3d(channels, self.dim, 1)
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1, 1))
        self.offset_bias = nn.Parameter(torch.zeros(2 * window + 1))  # b[-k..k], added to the scores

    def _windows(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, C, T, H, W, 2k+1): slot j holds frame t + j - k (zeros past the edges)."""
        k = self.window
        return F.pad(x, (0, 0, 0, 0, k, k)).unfold(2, 2 * k + 1, 1)  # (B, C, T + 2k, H, W) -> windows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        t, k = x.shape[2], self.window
        q = self.q(x).unsqueeze(-1)  # (B, d, T, H, W, 1)
        keys = self._windows(self.k(x))  # (B, d, T, H, W, 2k+1)
        scores = (q * keys).sum(1) / math.sqrt(self.dim) + self.offset_bias  # -> (B, T, H, W, 2k+1)
        offsets = torch.arange(-k, k + 1, device=x.device)  # (2k+1,)
        src = torch.arange(t, device=x.device)[:, None] + offsets  # source frame of each slot: (T, 2k+1)
        outside = ((src < 0) | (src >= t))[:, None, None, :]  # (T, 1, 1, 2k+1); the centre is always inside
        attn = scores.masked_fill(outside, float("-inf")).softmax(-1)  # (B, T, H, W, 2k+1)
        mixed = (self._windows(x) * attn.unsqueeze(1)).sum(-1)  # (B, C, T, H, W, 2k+1) -> (B, C, T, H, W)
        return x + self.gamma * (mixed - x)


class TAdaConv2d(nn.Module):
    """Temporally-adaptive 2D convolution: (B, C_in, T, H, W) -> (B, C_out, T, H', W').

    The kernel is spatial only; T is kept (no temporal stride, as in the official layer). Switches for
    ablations: ``calibrate=False`` is a plain per-frame 2D conv (no generator), ``global_context``
    toggles the generator's ``g`` term, ``temporal_attention=k > 0`` puts a
    :class:`PixelTemporalAttention` with window k (ours) before the convolution; the calibration is then
    computed from, and applied to, the attended features. The bias, if any, is not calibrated (as in
    the official code).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Pair,
        *,
        stride: int | Pair = 1,
        padding: int | Pair = 0,
        dilation: int | Pair = 1,
        bias: bool = False,
        cal_dim: str = "cin",
        reduction: int = 4,
        kernel_t: int | Pair = 3,
        global_context: bool = True,
        calibrate: bool = True,
        temporal_attention: int = 0,
        impl: str = "scaled",
    ) -> None:
        super().__init__()
        if cal_dim not in CAL_DIMS:
            raise ValueError(f"cal_dim must be one of {CAL_DIMS}, got {cal_dim!r}")
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.cal_dim, self.impl = cal_dim, impl
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))  # W_b
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.attn = (
            PixelTemporalAttention(in_channels, window=temporal_attention, reduction=reduction)
            if temporal_attention > 0
            else None
        )
        self.rf = (
            TemporalCalibration(
                in_channels,
                in_channels if cal_dim == "cin" else out_channels,
                reduction=reduction,
                kernel_t=kernel_t,
                global_context=global_context,
            )
            if calibrate
            else None
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Conv2d``'s initialisation (also the official one)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.weight[0].numel())
            nn.init.uniform_(self.bias, -bound, bound)

    def _conv(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int
    ) -> torch.Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, groups)

    def _grouped(self, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """One conv with B*T groups, each with its own calibrated kernel -> (B*T, C_out, H', W')."""
        b, c, t, h, w = x.shape
        x = x.transpose(1, 2).reshape(1, b * t * c, h, w)  # (B, C, T, H, W) -> (1, B*T*C_in, H, W)
        alpha = alpha.transpose(1, 2)  # (B, C_cal, T, 1, 1) -> (B, T, C_cal, 1, 1)
        # cin: (B, T, 1, C_in, 1, 1); cout: (B, T, C_out, 1, 1, 1)
        alpha = alpha.unsqueeze(2) if self.cal_dim == "cin" else alpha.unsqueeze(3)
        weight = (alpha * self.weight).reshape(-1, c, *self.kernel_size)  # -> (B*T*C_out, C_in, kh, kw)
        bias = None if self.bias is None else self.bias.repeat(b * t)  # (B*T*C_out,)
        y = self._conv(x, weight, bias, b * t)  # (1, B*T*C_out, H', W')
        return y.view(b * t, self.out_channels, *y.shape[-2:])  # -> (B*T, C_out, H', W')

    def _scaled(self, x: torch.Tensor, alpha: torch.Tensor | None) -> torch.Tensor:
        """Scale the input (cin) or output (cout) channels, then one plain conv -> (B*T, C_out, H', W')."""
        b, c, t, h, w = x.shape
        if alpha is not None and self.cal_dim == "cin":
            x = x * alpha  # (B, C_in, T, H, W) * (B, C_in, T, 1, 1)
        x = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B, C_in, T, H, W) -> (B*T, C_in, H, W)
        if alpha is None or self.cal_dim == "cin":
            return self._conv(x, self.weight, self.bias, 1)
        y = self._conv(x, self.weight, None, 1)  # (B*T, C_out, H', W')
        y = y * alpha.transpose(1, 2).reshape(b * t, -1, 1, 1)  # (B, C_out, T, 1, 1) -> (B*T, C_out, 1, 1)
        return y if self.bias is None else y + self.bias[:, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[0], x.shape[2]
        if self.attn is not None:
            x = self.attn(x)
        alpha = None if self.rf is None else self.rf(x)  # (B, C_cal, T, 1, 1)
        grouped = alpha is not None and self.impl == "grouped"
        y = self._grouped(x, alpha) if grouped else self._scaled(x, alpha)  # (B*T, C_out, H', W')
        return y.view(b, t, *y.shape[1:]).transpose(1, 2)  # (B*T, C_out, H', W') -> (B, C_out, T, H', W')

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        s += f", padding={self.padding}, bias={self.bias is not None}, cal_dim={self.cal_dim!r}"
        return s + f", impl={self.impl!r}"
