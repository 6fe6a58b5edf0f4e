"""Beyond short snippets: a shared frame CNN, then feature pooling or an LSTM over up to 120 frames.

Ng, Hausknecht, Vijayanarasimhan, Vinyals, Monga and Toderici, "Beyond Short Snippets: Deep Networks for
Video Classification", CVPR 2015, arXiv 1503.08909.

* §3.1 (Figure 2), feature pooling: conv, late, slow and local pooling and time-domain convolution, each
  with max (the paper's best) or average pooling over time; the heads are in
  :mod:`actionrec.layers.temporal_pool`. Max or mean over time is symmetric in the frames, so conv and
  late pooling are invariant to frame order by construction.
* §3.2 (Figure 3), LSTM: stacked LSTM layers (the paper: 5 x 512) over the frame features, a prediction
  at every step. The training loss and the video prediction are weighted linearly from 0 (first frame)
  to 1 (last frame); ``step_weights="last"`` or ``"uniform"`` are the alternatives. In training the
  model returns ``{"logits", "step_logits", "step_weights"}`` and :mod:`actionrec.engine.tasks` takes the
  weighted mean of the per-step cross-entropies; in eval mode it returns the weighted logits.
* §4 (input): frames at 1 fps, up to 120 (``sampling: {mode: fps, fps: 1, max_frames: 120}``).

The frame network is the paper's AlexNet / GoogLeNet replaced by a torchvision ResNet-18/50 (ImageNet
weights from a local state-dict file, as in :mod:`actionrec.models.single_frame`), or, for CPU work on the
synthetic benchmark, the small video ResNet with temporal kernel 1 (``single_frame_small``'s network).

Long inputs: :class:`FrameTrunk` runs the frame network ``frame_chunk`` frames at a time. In eval mode
the chunks give the features of one pass (bitwise with ATen's convolutions; oneDNN picks kernels by
batch size, so an uneven chunk can differ in the last bits, ~1e-6). In training every chunk is
checkpointed (``torch.utils.checkpoint``): only its input and output are kept, its activations are
recomputed in the backward pass, and the recomputation leaves BatchNorm's running statistics untouched.
BatchNorm normalises each chunk with that chunk's own statistics in training.

Peak memory of ``conv_pooling_r50`` on 1 x 3 x 120 x 224 x 224, fp32: growth of the process's peak RSS
(VmHWM) over its RSS after building the model and the input, one fresh process per case, on
lscpu's "Intel(R) Xeon(R) Processor" (KVM, 2 cores, AVX-512 + AMX, shared with other jobs), torch 2.14:

* inference, one pass: 1297 MiB (20 s); ``frame_chunk=16``: 300 MiB (31 s);
* training step (forward + backward), ``frame_chunk=16``: 2059 MiB (128 s);
* training step, one pass: not run at 120 frames; 1670 MiB at 16 frames and 2968 MiB at 32 (81 MiB a
  frame) extrapolate to about 10 GiB.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from actionrec.layers.resnet_blocks import init_resnet_weights
from actionrec.layers.temporal_pool import (
    ConvPoolingHead,
    LatePoolingHead,
    LocalPoolingHead,
    SlowPoolingHead,
    TimeConvHead,
)
from actionrec.models.base import VideoClassifier
from actionrec.models.registry import ModelCard, register_model
from actionrec.models.resnet3d import VideoResNet, small_config
from actionrec.models.single_frame import imagenet_resnet

_PAPER = "Beyond Short Snippets: Deep Networks for Video Classification (Ng et al., CVPR 2015)"
_ARXIV = "1503.08909"
STEP_WEIGHTS = ("linear", "last", "uniform")


# ---------------------------------------------------------------- the frame network


@contextmanager
def _running_stats_kept(module: nn.Module) -> Iterator[None]:
    """BatchNorm running statistics are restored on exit (a checkpoint's recomputation must not count)."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [[b.clone() for b in m.buffers()] for m in bns]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, bufs in zip(bns, saved):
                for b, s in zip(m.buffers(), bufs):
                    b.copy_(s)


class FrameTrunk(nn.Module):
    """(B, C, T, H, W) clip -> (B, F, T, h, w): a 2D network on every frame, ``frame_chunk`` at a time.

    ``net`` maps (N, C, H, W) frames to (N, F, h, w) maps. ``frame_chunk=None`` runs all B*T frames at
    once; otherwise chunks of ``frame_chunk`` frames, each checkpointed when training with autograd.
    """

    def __init__(self, net: nn.Module, num_features: int, *, frame_chunk: int | None = None) -> None:
        super().__init__()
        if frame_chunk is not None and frame_chunk < 1:
            raise ValueError(f"frame_chunk must be a positive number of frames, got {frame_chunk}")
        self.net = net
        self.num_features = num_features
        self.frame_chunk = frame_chunk

    def _run(self, frames: torch.Tensor) -> torch.Tensor:
        if self.training and torch.is_grad_enabled():
            return checkpoint(
                self.net,
                frames,
                use_reentrant=False,
                context_fn=lambda: (nullcontext(), _running_stats_kept(self.net)),
            )
        return self.net(frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B, C, T, H, W) -> (B*T, C, H, W)
        if self.frame_chunk is None:
            f = self.net(frames)
        else:
            f = torch.cat([self._run(part) for part in frames.split(self.frame_chunk)])  # (B*T, F, h, w)
        return f.reshape(b, t, *f.shape[1:]).transpose(1, 2)  # (B*T, F, h, w) -> (B, F, T, h, w)


class SmallFrameNet(nn.Module):
    """The small video ResNet with temporal kernel 1, as a 2D network: (N, C, H, W) -> (N, F, h, w)."""

    def __init__(self, *, in_channels: int = 3) -> None:
        super().__init__()
        self.trunk = VideoResNet(small_config(temporal_kernel=1, in_channels=in_channels), num_classes=0)
        self.num_features = self.trunk.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk.forward_features(x.unsqueeze(2)).squeeze(2)  # (N, C, 1, H, W) -> (N, F, h, w)


class ResNetFrameNet(nn.Module):
    """A torchvision ResNet up to its last stage: (N, 3, H, W) -> (N, F, H/32, W/32)."""

    def __init__(self, arch: str, *, backbone_weights: str | Path | None = None) -> None:
        super().__init__()
        net = imagenet_resnet(arch, backbone_weights=backbone_weights)
        self.num_features = net.num_features
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layers = nn.Sequential(net.layer1, net.layer2, net.layer3, net.layer4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


# ---------------------------------------------------------------- the LSTM head (§3.2)


def weights_over_time(num_steps: int, scheme: str) -> torch.Tensor:
    """(S,) weights of the per-step predictions: ``linear`` 0 -> 1 (§3.2), ``last`` or ``uniform``."""
    if scheme == "linear":
        return torch.linspace(0.0, 1.0, num_steps) if num_steps > 1 else torch.ones(1)
    if scheme == "last":
        return torch.nn.functional.one_hot(torch.tensor(num_steps - 1), num_steps).float()
    if scheme == "uniform":
        return torch.ones(num_steps)
    raise ValueError(f"step_weights must be one of {STEP_WEIGHTS}, got {scheme!r}")


class LSTMHead(nn.Module):
    """Frame features -> stacked LSTM -> a classifier at every step, combined with ``step_weights``.

    The logits are the weighted mean of the per-step logits; with a linear classifier that equals
    classifying the weighted mean of the LSTM outputs, which is what ``pre_logits=True`` returns.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        hidden: int,
        num_layers: int,
        dropout: float = 0.0,
        weights: str = "linear",
    ) -> None:
        super().__init__()
        weights_over_time(2, weights)  # fail at build time on an unknown scheme
        self.weights = weights
        self.hidden = hidden
        self.lstm = nn.LSTM(in_features, hidden, num_layers=num_layers, batch_first=True, dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.fc: nn.Module = self._make_fc(num_classes)

    def _make_fc(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.hidden, num_classes) if num_classes > 0 else nn.Identity()

    def reset(self, num_classes: int) -> None:
        self.fc = self._make_fc(num_classes)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor | dict[str, torch.Tensor]:
        x = x.flatten(3).mean(-1).transpose(1, 2)  # (B, F, T, h, w) -> (B, F, T) -> (B, T, F)
        h, _ = self.lstm(x)  # (B, T, F) -> (B, T, hidden)
        w = weights_over_time(h.shape[1], self.weights).to(h.device, h.dtype)  # (T,)
        if pre_logits:
            return torch.einsum("bth,t->bh", h, w) / w.sum()  # (B, T, hidden) -> (B, hidden)
        steps = self.fc(self.dropout(h))  # (B, T, hidden) -> (B, T, K)
        logits = torch.einsum("btk,t->bk", steps, w) / w.sum()  # (B, T, K) -> (B, K)
        if self.training:
            return {"logits": logits, "step_logits": steps, "step_weights": w}
        return logits


# ---------------------------------------------------------------- the model


def _init_head(head: nn.Module) -> None:
    """He-normal convs and hidden FC layers (they feed ReLUs), a small-normal classifier; LSTMs as torch."""
    init_resnet_weights(head)  # convs (fan-out) and every linear layer (normal, std 0.01)
    for m in head.modules():
        if isinstance(m, nn.Linear) and m is not getattr(head, "fc", None):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")


class SnippetNet(VideoClassifier):
    """Figure 2 / 3: the same frame network on every frame, then a pooling head or an LSTM head."""

    def __init__(self, trunk: FrameTrunk, head: nn.Module, *, num_classes: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.num_features = trunk.num_features
        self.num_classes = num_classes
        self.head = head
        _init_head(head)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) clip -> (B, F, T, h, w) last conv maps of every frame (frames never mix)."""
        return self.trunk(x)

    def forward_head(  # type: ignore[override]
        self, x: torch.Tensor, pre_logits: bool = False
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        return self.head(x, pre_logits=pre_logits)


def _small(
    head: type[nn.Module], num_classes: int, in_channels: int, frame_chunk: int | None, **kw
) -> SnippetNet:
    """``head(F, num_classes, **kw)`` over the small frame network."""
    net = SmallFrameNet(in_channels=in_channels)
    trunk = FrameTrunk(net, net.num_features, frame_chunk=frame_chunk)
    return SnippetNet(trunk, head(net.num_features, num_classes, **kw), num_classes=num_classes)


def _resnet(
    arch: str,
    head: type[nn.Module],
    num_classes: int,
    backbone_weights: str | Path | None,
    frame_chunk: int | None,
    **kw: object,
) -> SnippetNet:
    """``head(F, num_classes, **kw)`` over a torchvision ResNet frame network."""
    net = ResNetFrameNet(arch, backbone_weights=backbone_weights)
    trunk = FrameTrunk(net, net.num_features, frame_chunk=frame_chunk)
    return SnippetNet(trunk, head(net.num_features, num_classes, **kw), num_classes=num_classes)


# ---------------------------------------------------------------- cards and builders

_SMALL_INPUT = {"num_frames": 8, "frame_interval": 3, "crop_size": 48, "short_side": 48}
_PAPER_INPUT = {"num_frames": 120, "sampling": "fps", "fps": 1.0, "max_frames": 120, "crop_size": 224}
_SMALL_NOTES = (
    "CPU scale, not in the paper: single_frame_small's network (the small video ResNet with temporal "
    "kernel 1) on 8 frames of 48x48 (the synthetic benchmark); windows of 4 frames, stride 2, stand in "
    "for the paper's 10 and 5 over 120 frames. "
)
_RESNET_NOTES = (
    "Frame network: torchvision {arch} (the paper used AlexNet / GoogLeNet), ImageNet weights via "
    "backbone_weights=PATH; frame_chunk frames at a time (checkpointed in training). The paper gives no "
    "params for this backbone. "
)
# name -> (params M, GMACs) measured with actionrec.models.complexity at the card's input, 400 classes
_COUNTS = {
    "conv_pooling_small": (0.376, 0.078),
    "late_pooling_small": (0.376, 0.078),
    "slow_pooling_small": (0.393, 0.078),
    "local_pooling_small": (0.479, 0.078),
    "time_conv_small": (0.663, 0.086),
    "lstm_small": (0.624, 0.080),
    "conv_pooling_r18": (11.64, 217.6),
    "conv_pooling_r50": (24.76, 490.5),
    "lstm_r18": (21.89, 218.9),
    "lstm_r50": (37.37, 492.1),
}


def _card(name: str, section: str, arch: str = "") -> ModelCard:
    params, gmacs = _COUNTS[name]
    shape = "3x120x224x224" if arch else "3x8x48x48"
    measured = (
        f"Measured (count_params / count_macs, 400 classes): {params}M params, {gmacs} GMACs per {shape}."
    )
    if arch:
        notes, inputs = _RESNET_NOTES.format(arch=arch), {**_PAPER_INPUT, "short_side": 256}
        section += ", §4 (1 fps, up to 120 frames)"
    else:
        notes, inputs = _SMALL_NOTES, _SMALL_INPUT
    norm = "imagenet" if arch else "kinetics"
    return ModelCard(
        paper=_PAPER, arxiv=_ARXIV, section=section, notes=notes + measured, normalization=norm, **inputs
    )  # type: ignore[arg-type]


_CONV, _LATE, _SLOW = "§3.1 (conv pooling), Figure 2", "§3.1 (late pooling), Figure 2", "§3.1 (slow pooling)"
_LOCAL, _TCONV, _LSTM = "§3.1 (local pooling)", "§3.1 (time-domain convolution)", "§3.2 (LSTM), Figure 3"


@register_model(_card("conv_pooling_small", _CONV))
def conv_pooling_small(
    *,
    num_classes: int = 400,
    dropout: float = 0.0,
    pool: str = "max",
    fc_dims: Sequence[int] = (128,),
    in_channels: int = 3,
    frame_chunk: int | None = None,
) -> SnippetNet:
    """Max (or mean) over time of the last conv maps, then FC layers."""
    kw = {"fc_dims": tuple(fc_dims), "pool": pool, "dropout": dropout}
    return _small(ConvPoolingHead, num_classes, in_channels, frame_chunk, **kw)


@register_model(_card("late_pooling_small", _LATE))
def late_pooling_small(
    *,
    num_classes: int = 400,
    dropout: float = 0.0,
    pool: str = "max",
    fc_dims: Sequence[int] = (128,),
    in_channels: int = 3,
    frame_chunk: int | None = None,
) -> SnippetNet:
    """FC layers on every frame, then max (or mean) over time."""
    kw = {"fc_dims": tuple(fc_dims), "pool": pool, "dropout": dropout}
    return _small(LatePoolingHead, num_classes, in_channels, frame_chunk, **kw)


@register_model(_card("slow_pooling_small", _SLOW))
def slow_pooling_small(
    *,
    num_classes: int = 400,
    dropout: float = 0.0,
    pool: str = "max",
    fc_dims: Sequence[int] = (128, 128),
    window: int = 4,
    stride: int = 2,
    in_channels: int = 3,
    frame_chunk: int | None = None,
) -> SnippetNet:
    """Pool windows of ``window`` frames ``stride`` apart, shared FC, pool the windows, FC."""
    kw = {"fc_dims": tuple(fc_dims), "pool": pool, "dropout": dropout, "window": window, "stride": stride}
    return _small(SlowPoolingHead, num_classes, in_channels, frame_chunk, **kw)


@register_model(_card("local_pooling_small", _LOCAL))
def local_pooling_small(
    *,
    num_classes: int = 400,
    dropout: float = 0.0,
    pool: str = "max",
    fc_dims: Sequence[int] = (128,),
    window: int = 4,
    stride: int = 2,
    num_frames: int = 8,
    in_channels: int = 3,
    frame_chunk: int | None = None,
) -> SnippetNet:
    """Pool windows of frames, shared FC, one classifier over every window (built for ``num_frames``)."""
    kw = {"fc_dims": tuple(fc_dims), "pool": pool, "dropout": dropout, "window": window, "stride": stride}
    return _small(LocalPoolingHead, num_classes, in_channels, frame_chunk, num_frames=num_frames, **kw)


@register_model(_card("time_conv_small", _TCONV))
def time_conv_small(
    *,
    num_classes: int = 400,
    dropout: float = 0.0,
    pool: str = "max",
    channels: int = 64,
    window: int = 4,
    stride: int = 2,
    fc_dims: Sequence[int] = (128,),
    in_channels: int = 3,
    frame_chunk: int | None = None,
) -> SnippetNet:
    """``channels`` kernels of ``window`` x 3 x 3, time stride ``stride`` (paper: 256, 10, 5), pool, FC."""
    kw = {"fc_dims": tuple(fc_dims), "pool": pool, "dropout": dropout, "window": window, "stride": stride}
    return _small(TimeConvHead, num_classes, in_channels, frame_chunk, channels=channels, **kw)


@register_model(_card("lstm_small", _LSTM))
def lstm_small(
    *,
    num_classes: int = 400,
    dropout: float = 0.0,
    hidden: int = 128,
    num_layers: int = 2,
    step_weights: str = "linear",
    in_channels: int = 3,
    frame_chunk: int | None = None,
) -> SnippetNet:
    """A ``num_layers`` x ``hidden`` LSTM over the frame features (paper: 5 x 512), a prediction per step."""
    kw = {"hidden": hidden, "num_layers": num_layers, "dropout": dropout, "weights": step_weights}
    return _small(LSTMHead, num_classes, in_channels, frame_chunk, **kw)


@register_model(_card("conv_pooling_r18", _CONV, "resnet18"))
def conv_pooling_r18(
    *,
    num_classes: int = 400,
    dropout: float = 0.0,
    pool: str = "max",
    fc_dims: Sequence[int] = (512,),
    backbone_weights: str | Path | None = None,
    frame_chunk: int | None = 16,
) -> SnippetNet:
    """Conv pooling over ResNet-18 frame maps."""
    kw = {"fc_dims": tuple(fc_dims), "pool": pool, "dropout": dropout}
    return _resnet("resnet18", ConvPoolingHead, num_classes, backbone_weights, frame_chunk, **kw)


@register_model(_card("conv_pooling_r50", _CONV, "resnet50"))
def conv_pooling_r50(
    *,
    num_classes: int = 400,
    dropout: float = 0.0,
    pool: str = "max",
    fc_dims: Sequence[int] = (512,),
    backbone_weights: str | Path | None = None,
    frame_chunk: int | None = 16,
) -> SnippetNet:
    """Conv pooling over ResNet-50 frame maps."""
    kw = {"fc_dims": tuple(fc_dims), "pool": pool, "dropout": dropout}
    return _resnet("resnet50", ConvPoolingHead, num_classes, backbone_weights, frame_chunk, **kw)


@register_model(_card("lstm_r18", _LSTM, "resnet18"))
def lstm_r18(
    *,
    num_classes: int = 400,
    dropout: float = 0.0,
    hidden: int = 512,
    num_layers: int = 5,
    step_weights: str = "linear",
    backbone_weights: str | Path | None = None,
    frame_chunk: int | None = 16,
) -> SnippetNet:
    """The paper's 5 x 512 LSTM over ResNet-18 frame features."""
    kw = {"hidden": hidden, "num_layers": num_layers, "dropout": dropout, "weights": step_weights}
    return _resnet("resnet18", LSTMHead, num_classes, backbone_weights, frame_chunk, **kw)


@register_model(_card("lstm_r50", _LSTM, "resnet50"))
def lstm_r50(
    *,
    num_classes: int = 400,
    dropout: float = 0.0,
    hidden: int = 512,
    num_layers: int = 5,
    step_weights: str = "linear",
    backbone_weights: str | Path | None = None,
    frame_chunk: int | None = 16,
) -> SnippetNet:
    """The paper's 5 x 512 LSTM over ResNet-50 frame features."""
    kw = {"hidden": hidden, "num_layers": num_layers, "dropout": dropout, "weights": step_weights}
    return _resnet("resnet50", LSTMHead, num_classes, backbone_weights, frame_chunk, **kw)
