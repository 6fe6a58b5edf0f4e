"""2D -> 3D inflation (Carreira & Zisserman 2017, "Quo Vadis, Action Recognition? A New Model and the
Kinetics Dataset", arXiv 1705.07750, §2.4 "Inflating 2D ConvNets into 3D" and "Bootstrapping 3D filters
from 2D filters"), plus the cross-modality initialisation of flow networks (Wang et al. 2016,
"Temporal Segment Networks", arXiv 1608.00859, §3.2).

:func:`inflate` turns a torchvision image CNN into a video CNN taking (B, C, T, H, W) by replacing
modules in place of a copy: ``Conv2d -> Conv3d`` (kernels repeated over time and divided by the time
kernel, or put in the centre slice), ``BatchNorm2d -> BatchNorm3d`` (statistics copied), max/avg
pooling to 3D (time kernel 1 unless asked), ``AdaptiveAvgPool2d((h, w)) -> AdaptiveAvgPool3d((1, h, w))``.
Linear layers stay: torchvision's ``torch.flatten(x, 1)`` after the pool still gives (B, C * h * w).
State-dict keys are unchanged, so a 2D checkpoint loads into the inflated model (the loader inflates
4-D kernels on the fly).

The "boring video" fixed point. With ``"mean"`` inflation a video made of one image repeated T times
gives every 3D convolution the 2D response at every frame whose time window lies inside the clip.
At the first and last ``kt // 2`` frames a zero time-padding replaces frames by zeros, so the response
there shrinks; the error then spreads inwards by ``kt // 2`` frames per layer and reaches the pooled
output of a deep network. With ``time_padding="replicate"`` the padded frames are copies of the edge
frame, i.e. the same image, so the fixed point holds at every frame of every layer and the pooled
output equals the 2D network's output exactly. ``"center"`` inflation is a per-frame 2D network
whatever the padding (only the centre tap is non-zero), so it reproduces the 2D output for any video.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

TimeKernel = int | Callable[[str, nn.Conv2d], int]


def inflate_weight(weight_2d: torch.Tensor, time_kernel: int, *, method: str = "mean") -> torch.Tensor:
    """(Cout, Cin, kH, kW) -> (Cout, Cin, kT, kH, kW).

    ``"mean"`` repeats the kernel over time and divides by ``time_kernel``, so a video of one repeated
    image gives the 2D response ("boring video" fixed point); ``"center"`` puts the kernel in the centre
    time slice and zeros elsewhere.
    """
    if method == "mean":
        return weight_2d.unsqueeze(2).repeat(1, 1, time_kernel, 1, 1) / time_kernel
    if method == "center":
        w = weight_2d.new_zeros(*weight_2d.shape[:2], time_kernel, *weight_2d.shape[2:])
        w[:, :, time_kernel // 2] = weight_2d
        return w
    raise ValueError(f"unknown inflation method {method!r} (mean or center)")


def cross_modality_init(conv_weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """First-layer kernel for ``in_channels`` inputs (e.g. 2L flow channels) from an RGB kernel.

    The RGB kernel is averaged over its input channels and replicated ``in_channels`` times (TSN §3.2):
    (Cout, 3, ...) -> (Cout, in_channels, ...).
    """
    mean = conv_weight.mean(dim=1, keepdim=True)  # (Cout, 3, ...) -> (Cout, 1, ...)
    return mean.expand(-1, in_channels, *conv_weight.shape[2:]).contiguous()


def set_in_channels(conv: nn.Conv2d | nn.Conv3d, channels: int, *, from_rgb: bool = True) -> None:
    """Make ``conv`` (a network's first layer) take ``channels`` inputs, in place: its kernel by
    :func:`cross_modality_init` from the RGB one, or, ``from_rgb=False`` (nothing pretrained), a fresh
    kaiming-normal kernel (torchvision ResNet's init). Its bias, if any, is kept."""
    if conv.in_channels == channels:
        return
    weight = conv.weight.detach()
    if from_rgb:
        new = cross_modality_init(weight, channels)  # (O, 3, ...) -> (O, channels, ...)
    else:
        new = weight.new_empty(weight.shape[0], channels, *weight.shape[2:])
        nn.init.kaiming_normal_(new, mode="fan_out", nonlinearity="relu")
    conv.weight = nn.Parameter(new)
    conv.in_channels = channels


class InflatedConv3d(nn.Conv3d):
    """``nn.Conv3d`` whose time padding is zeros (as usual) or replicates the edge frames."""

    def __init__(self, *args: object, time_padding: str = "zeros", **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if time_padding not in ("zeros", "replicate"):
            raise ValueError(f"unknown time_padding {time_padding!r} (zeros or replicate)")
        self.time_padding = time_padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pt = self.padding[0]
        if self.time_padding == "zeros" or pt == 0:
            return super().forward(x)
        x = F.pad(x, (0, 0, 0, 0, pt, pt), mode="replicate")  # (B, C, T, H, W) -> (B, C, T + 2pt, H, W)
        return F.conv3d(
            x, self.weight, self.bias, self.stride, (0, *self.padding[1:]), self.dilation, self.groups
        )


def _conv3d(name: str, conv: nn.Conv2d, kt: int, st: int, method: str, time_padding: str) -> InflatedConv3d:
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError(f"{name}: only Conv2d with numeric zero padding can be inflated")
    new = InflatedConv3d(
        conv.in_channels,
        conv.out_channels,
        (kt, *conv.kernel_size),
        stride=(st, *conv.stride),
        padding=(kt // 2, *conv.padding),
        dilation=(1, *conv.dilation),
        groups=conv.groups,
        bias=conv.bias is not None,
        time_padding=time_padding,
    )
    with torch.no_grad():
        new.weight.copy_(inflate_weight(conv.weight, kt, method=method))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new.train(conv.training)


def _batchnorm3d(bn: nn.BatchNorm2d) -> nn.BatchNorm3d:
    new = nn.BatchNorm3d(
        bn.num_features,
        eps=bn.eps,
        momentum=bn.momentum,
        affine=bn.affine,
        track_running_stats=bn.track_running_stats,
    )
    new.load_state_dict(bn.state_dict())
    return new.train(bn.training)


def _pool3d(pool: nn.Module, kt: int) -> nn.Module:
    k, s, p = (nn.modules.utils._pair(v) for v in (pool.kernel_size, pool.stride, pool.padding))
    if isinstance(pool, nn.MaxPool2d):
        d = nn.modules.utils._pair(pool.dilation)
        return nn.MaxPool3d(
            (kt, *k), (kt, *s), (kt // 2 if kt > 1 else 0, *p), (1, *d), ceil_mode=pool.ceil_mode
        )
    return nn.AvgPool3d(
        (kt, *k),
        (kt, *s),
        (kt // 2 if kt > 1 else 0, *p),
        ceil_mode=pool.ceil_mode,
        count_include_pad=pool.count_include_pad,
        divisor_override=pool.divisor_override,
    )


def _adaptive3d(pool: nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d) -> nn.Module:
    size = nn.modules.utils._pair(pool.output_size)
    cls = nn.AdaptiveAvgPool3d if isinstance(pool, nn.AdaptiveAvgPool2d) else nn.AdaptiveMaxPool3d
    return cls((1, *size))


def _drop_googlenet_aux(model: nn.Module) -> None:
    """GoogLeNet/Inception-v3 auxiliary heads assume 2D maps: remove them (eval-only outputs anyway)."""
    if hasattr(model, "aux_logits"):
        model.aux_logits = False
        for name in ("aux1", "aux2", "AuxLogits"):
            if getattr(model, name, None) is not None:
                setattr(model, name, None)


def inflate(
    model_2d: nn.Module,
    *,
    time_kernel: TimeKernel = 3,
    method: str = "mean",
    time_stride: int | Callable[[str, nn.Conv2d], int] = 1,
    pool_time_kernel: int = 1,
    time_padding: str = "zeros",
    in_channels: int | None = None,
) -> nn.Module:
    """A 3D copy of a 2D CNN (ResNet, GoogLeNet, VGG, ...) taking (B, C, T, H, W) clips.

    ``time_kernel``: an int applies to every convolution with a spatial kernel larger than 1 (1x1
    convolutions stay 1x1x1, as in I3D), or a callable ``(module name, conv) -> kT`` decides per conv.
    ``time_stride``: an int applies to convolutions with a spatial stride > 1, or a callable per conv.
    ``pool_time_kernel``: time kernel (and stride) of the max/avg pools. ``time_padding``: ``"zeros"``
    or ``"replicate"`` (see the module docstring for why the boring-video fixed point needs it).
    ``in_channels``: input channels of the video network when they differ from the image network's,
    e.g. ``2 * L`` for a stack of L flow fields; the first convolution then gets the cross-modality
    initialisation (:func:`cross_modality_init`). The input model is not modified; the copy keeps
    its train/eval mode.
    """
    model = copy.deepcopy(model_2d)
    _drop_googlenet_aux(model)

    def kt_of(name: str, conv: nn.Conv2d) -> int:
        if callable(time_kernel):
            return int(time_kernel(name, conv))
        return time_kernel if max(conv.kernel_size) > 1 else 1

    def st_of(name: str, conv: nn.Conv2d) -> int:
        if callable(time_stride):
            return int(time_stride(name, conv))
        return time_stride if max(conv.stride) > 1 else 1

    for name, module in list(model.named_modules()):
        new = _inflate_module(name, module, kt_of, st_of, method, pool_time_kernel, time_padding)
        if new is not None:
            _set_submodule(model, name, new)
    if in_channels is not None:
        set_in_channels(next(m for m in model.modules() if isinstance(m, nn.Conv3d)), in_channels)
    return model


def _inflate_module(
    name: str,
    module: nn.Module,
    kt_of: Callable[[str, nn.Conv2d], int],
    st_of: Callable[[str, nn.Conv2d], int],
    method: str,
    pool_kt: int,
    time_padding: str,
) -> nn.Module | None:
    if isinstance(module, nn.Conv2d):
        return _conv3d(name, module, kt_of(name, module), st_of(name, module), method, time_padding)
    if isinstance(module, nn.BatchNorm2d):
        return _batchnorm3d(module)
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        return _pool3d(module, pool_kt)
    if isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
        return _adaptive3d(module)
    if isinstance(module, nn.Dropout2d):
        return nn.Dropout3d(module.p, module.inplace)
    if type(module).__module__.startswith("torch.nn") and type(module).__name__.endswith("2d"):
        raise ValueError(f"{name}: cannot inflate {type(module).__name__}")
    return None


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def extend_in_time(trunk: nn.Module, plan: Mapping[str, tuple[int, int]]) -> nn.Module:
    """Give the named ``1 x h x w`` convs of ``trunk`` a time extent and stride (no time padding);
    ``plan`` maps a conv's name to ``(time extent, time stride)``.

    The new kernel is the 2D one repeated over time and divided by the extent, so a clip of identical
    frames gives the 2D response. ``trunk`` is changed in place and returned.
    """
    for name, (kt, st) in plan.items():
        conv = trunk.get_submodule(name)
        if not isinstance(conv, nn.Conv3d) or conv.kernel_size[0] != 1:
            raise ValueError(f"{name}: expected a Conv3d with time kernel 1, found {conv}")
        new = nn.Conv3d(
            conv.in_channels,
            conv.out_channels,
            (kt, *conv.kernel_size[1:]),
            stride=(st, *conv.stride[1:]),
            padding=(0, *conv.padding[1:]),  # type: ignore[misc]
            groups=conv.groups,
            bias=conv.bias is not None,
            device=conv.weight.device,
        )
        with torch.no_grad():
            new.weight.copy_(inflate_weight(conv.weight[:, :, 0], kt))
            if conv.bias is not None:
                new.bias.copy_(conv.bias)
        parent, _, child = name.rpartition(".")
        setattr(trunk.get_submodule(parent) if parent else trunk, child, new)
    return trunk
