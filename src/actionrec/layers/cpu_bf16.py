"""A guard against a CPU bf16 bug: Conv3d weight gradients are garbage when 1 < T < the temporal kernel.

Under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (PyTorch 2.14, oneDNN), the *weight* gradient of a
Conv3d whose input has more than one but fewer time steps than its temporal kernel (T = 2 under a
3x1x1 kernel with padding 1, T = 2..4 under a 5-tap kernel) comes out inf / NaN / off by orders of
magnitude, while the forward pass and the input gradient are right. Every video ResNet meets this shape
in its last stage (R(2+1)D-18 on 16 frames has T = 2 in ``layer4``), so bf16 training on CPU diverges
within an epoch or two.

The bug lives in the kernel behind ``F.conv3d``, not in ``nn.Conv3d``: subclasses with their own
``forward`` (I3D's TF-"SAME" :class:`~actionrec.layers.same_pad.Conv3dSame`) and modules calling
``F.conv3d`` directly meet it too. So the guard works at the dispatch level: a torch function mode
(:class:`Fp32SmallTConv3d`) sees every ``F.conv3d`` call and runs exactly the affected ones outside
autocast in fp32, judged by the shapes the convolution itself receives (after any explicit padding);
everything else keeps bf16. Each affected call costs next to nothing: its T is tiny.
:func:`guard_cpu_bf16_conv3d` keeps that mode active while a model's forward runs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map_only


def is_affected_conv3d(*, x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether ``F.conv3d(x, weight, ...)`` would hit the bug: CPU autocast and 1 < T < temporal kernel.

    ``x`` is (B, C, T, H, W) or unbatched (C, T, H, W); ``weight`` is (out, in / groups, kT, kH, kW).
    """
    return x.device.type == "cpu" and torch.is_autocast_enabled("cpu") and 1 < x.shape[-3] < weight.shape[2]


def _to_fp32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.is_floating_point() else t


class Fp32SmallTConv3d(TorchFunctionMode):
    """Runs the affected ``F.conv3d`` calls (see :func:`is_affected_conv3d`) in fp32 outside autocast.

    Every other call goes through untouched. Usable directly as ``with Fp32SmallTConv3d(): ...``; the
    mode keeps no state, so one instance may be entered any number of times.
    """

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if func is F.conv3d:
            x = args[0] if args else kwargs["input"]
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            if is_affected_conv3d(x=x, weight=weight):
                args, kwargs = tree_map_only(torch.Tensor, _to_fp32, (args, kwargs))
                with torch.autocast("cpu", enabled=False):
                    return func(*args, **kwargs)
        return func(*args, **kwargs)


_MODE = Fp32SmallTConv3d()


class _ForwardScope:
    """Forward hooks that keep :data:`_MODE` pushed while the guarded module's forward runs.

    The exit hook is registered with ``always_call=True`` so that an exception in the forward still
    pops the mode; the count makes it pop only what the entry hook pushed.
    """

    def __init__(self) -> None:
        self.pushed = 0

    def enter(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        _MODE.__enter__()
        self.pushed += 1

    def exit(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if self.pushed:
            self.pushed -= 1
            _MODE.__exit__(None, None, None)


def guard_cpu_bf16_conv3d(model: nn.Module) -> nn.Module:
    """Make every affected ``F.conv3d`` call inside ``model``'s forward run in fp32 (see the module doc).

    Adds two forward hooks to ``model`` (in place, once: a second call changes nothing); parameters,
    state-dict keys, module classes and the outputs outside the affected shapes stay exactly as they
    were. ``nn.Conv3d``, its subclasses and direct ``F.conv3d`` calls are all covered. Returns ``model``.
    """
    if getattr(model, "_cpu_bf16_conv3d_guard", None) is None:
        scope = _ForwardScope()
        model.register_forward_pre_hook(scope.enter, prepend=True)
        model.register_forward_hook(scope.exit, prepend=True, always_call=True)
        model._cpu_bf16_conv3d_guard = scope
    return model
