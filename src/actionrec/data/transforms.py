"""Clip transforms: random parameters drawn once per clip and applied to every frame.

Each step is a callable ``step(clip, generator=None) -> clip`` on a ``(T, C, H, W)`` tensor (or
``(N, T, C, H, W)`` after a multi-crop step). Geometry (resize, crop, flip) runs on ``uint8`` and
crops are views taken *before* anything is converted to float; resizing uses
``torch.nn.functional.interpolate`` (bilinear, antialiased) on the whole clip at once, no per-frame
Python loop. :func:`build_transform` chains the steps into a :class:`ClipPipeline` that takes the
decoder's ``(T, H, W, C)`` uint8 frames and returns a normalised float ``(C, T, H, W)`` clip.

Crops implemented: random resized crop (Inception-style, scale and aspect ratio), the multi-scale crop
with fixed corner/centre positions and scale jittering of "Temporal Segment Networks" (Wang et al.,
2016, arXiv 1608.00859, §3.2 "Data Augmentation"), centre crop, three crop along the long side and ten
crop (corners + centre, plus their mirror images). Optical flow clips (2 channels: x, y) are
flow-aware: a horizontal flip also negates the x displacement (``255 - x`` for uint8 flow quantised
around 128, ``-x`` for float flow). Flow images are resized like images (the TSN convention; the
displacements are not rescaled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from actionrec.errors import ConfigError

if TYPE_CHECKING:
    pass

Box = tuple[int, int, int, int]  # (top, left, height, width)
TRAIN_CROPS = ("random_resized", "multiscale", "short_side")
TSN_SCALES = (1.0, 0.875, 0.75, 0.66)


class ClipStep(Protocol):
    def __call__(self, clip: Tensor, generator: torch.Generator | None = None) -> Tensor: ...


def _randint(high: int, generator: torch.Generator | None) -> int:
    """A uniform integer in ``[0, high)``."""
    return int(torch.randint(high, (1,), generator=generator).item())


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator).item())


def resize_clip(clip: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear, antialiased resize of ``(..., C, H, W)`` (uint8 or float) to ``(..., C, *size)``."""
    if tuple(clip.shape[-2:]) == tuple(size):
        return clip
    lead = clip.shape[:-3]
    frames = clip.reshape(-1, *clip.shape[-3:])  # (..., C, H, W) -> (B, C, H, W)
    out = F.interpolate(frames, size=size, mode="bilinear", antialias=True, align_corners=False)
    return out.reshape(*lead, *out.shape[-3:])  # (B, C, h, w) -> (..., C, h, w)


def crop_clip(clip: Tensor, box: Box) -> Tensor:
    """The view ``clip[..., top:top+h, left:left+w]`` (no copy)."""
    top, left, h, w = box
    return clip[..., top : top + h, left : left + w]


def flip_clip(clip: Tensor, *, flow: bool = False) -> Tensor:
    """Mirror ``(..., C, H, W)`` left-right; for flow (C = 2: x, y) also negate the x displacement."""
    out = clip.flip(-1)
    if flow:
        x = out[..., 0:1, :, :]
        x = 255 - x if out.dtype == torch.uint8 else -x
        out = torch.cat([x, out[..., 1:, :, :]], dim=-3)
    return out


def _check_fits(clip: Tensor, h: int, w: int) -> None:
    if clip.shape[-2] < h or clip.shape[-1] < w:
        raise ValueError(f"cannot crop {h}x{w} from frames of {clip.shape[-2]}x{clip.shape[-1]}")


class ResizeShortSide:
    """Resize so the short side equals ``size``, keeping the aspect ratio (long side rounded).

    Input ``(..., C, H, W)`` uint8 or float; output the same dtype, ``(..., C, h, w)``.
    """

    def __init__(self, size: int) -> None:
        self.size = size

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        if height <= width:
            return self.size, int(width * self.size / height + 0.5)
        return int(height * self.size / width + 0.5), self.size

    def __call__(self, clip: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return resize_clip(clip, self.output_size(clip.shape[-2], clip.shape[-1]))


class CenterCrop:
    """Crop ``size`` x ``size`` from the centre (offsets rounded down).

    Input ``(..., C, H, W)`` with H, W >= size; output a view ``(..., C, size, size)``, same dtype.
    """

    def __init__(self, size: int) -> None:
        self.size = size

    def box(self, height: int, width: int) -> Box:
        return (height - self.size) // 2, (width - self.size) // 2, self.size, self.size

    def __call__(self, clip: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_fits(clip, self.size, self.size)
        return crop_clip(clip, self.box(clip.shape[-2], clip.shape[-1]))


class RandomCrop:
    """Crop ``size`` x ``size`` at one random position per clip (C3D-style training crop).

    Input ``(T, C, H, W)`` with H, W >= size; output a view ``(T, C, size, size)``, same dtype.
    """

    def __init__(self, size: int) -> None:
        self.size = size

    def get_params(self, height: int, width: int, generator: torch.Generator | None = None) -> Box:
        top = _randint(height - self.size + 1, generator)
        left = _randint(width - self.size + 1, generator)
        return top, left, self.size, self.size

    def __call__(self, clip: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_fits(clip, self.size, self.size)
        return crop_clip(clip, self.get_params(clip.shape[-2], clip.shape[-1], generator))


class RandomResizedCrop:
    """Crop a random area fraction (``scale``) with a random aspect ratio (``ratio``, drawn
    log-uniformly), then resize it to ``size`` x ``size``; one box per clip.

    Input ``(T, C, H, W)`` uint8 or float (any size); output ``(T, C, size, size)``, same dtype.
    After 10 failed draws it falls back to the largest centred box whose ratio lies in ``ratio``.
    """

    def __init__(
        self,
        size: int,
        *,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
    ) -> None:
        self.size, self.scale, self.ratio = size, scale, ratio

    def get_params(self, height: int, width: int, generator: torch.Generator | None = None) -> Box:
        area = height * width
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            target = area * _uniform(*self.scale, generator)
            aspect = math.exp(_uniform(log_lo, log_hi, generator))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                return _randint(height - h + 1, generator), _randint(width - w + 1, generator), h, w
        aspect = min(max(width / height, self.ratio[0]), self.ratio[1])
        w = min(width, round(height * aspect))
        h = min(height, round(w / aspect))
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, clip: Tensor, generator: torch.Generator | None = None) -> Tensor:
        box = self.get_params(clip.shape[-2], clip.shape[-1], generator)
        return resize_clip(crop_clip(clip, box), (self.size, self.size))


class MultiScaleCrop:
    """TSN's corner cropping with scale jittering (arXiv 1608.00859, §3.2), one draw per clip.

    Crop side lengths are ``int(short_side * s)`` for ``s`` in ``scales`` (sizes within 2 px of the
    output size snap to it); height and width scales are picked independently among pairs whose
    scale indices differ by at most ``max_distort``. The crop sits at one of 5 fixed positions
    (4 corners, centre) or, with ``more_fix_crop``, 13 (adding edge midpoints and quarter points),
    on a grid of quarter steps of the free space. The crop is then resized to ``size`` x ``size``.

    Input ``(T, C, H, W)`` uint8 or float (typically short side 256); output ``(T, C, size, size)``.
    """

    def __init__(
        self,
        size: int,
        *,
        scales: Sequence[float] = TSN_SCALES,
        max_distort: int = 1,
        more_fix_crop: bool = True,
    ) -> None:
        self.size, self.scales = size, tuple(scales)
        self.max_distort, self.more_fix_crop = max_distort, more_fix_crop

    def crop_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """Every allowed ``(crop_h, crop_w)``."""
        sides = [int(min(height, width) * s) for s in self.scales]
        sides = [self.size if abs(s - self.size) < 3 else s for s in sides]
        return [
            (h, w) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= self.max_distort
        ]

    def offsets(self, height: int, width: int, crop_h: int, crop_w: int) -> list[tuple[int, int]]:
        """The fixed ``(top, left)`` positions for one crop size."""
        hs, ws = (height - crop_h) // 4, (width - crop_w) // 4
        grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]
        if self.more_fix_crop:
            grid += [(2, 0), (2, 4), (4, 2), (0, 2), (1, 1), (1, 3), (3, 1), (3, 3)]
        return [(r * hs, c * ws) for r, c in grid]

    def get_params(self, height: int, width: int, generator: torch.Generator | None = None) -> Box:
        sizes = self.crop_sizes(height, width)
        crop_h, crop_w = sizes[_randint(len(sizes), generator)]
        positions = self.offsets(height, width, crop_h, crop_w)
        top, left = positions[_randint(len(positions), generator)]
        return top, left, crop_h, crop_w

    def __call__(self, clip: Tensor, generator: torch.Generator | None = None) -> Tensor:
        box = self.get_params(clip.shape[-2], clip.shape[-1], generator)
        return resize_clip(crop_clip(clip, box), (self.size, self.size))


class ThreeCrop:
    """Three ``size`` x ``size`` crops along the long side (left/centre/right, or top/centre/bottom
    for portrait frames), centred on the short side — the SlowFast/non-local test views.

    Input ``(T, C, H, W)``; output ``(3, T, C, size, size)``, same dtype.
    """

    def __init__(self, size: int) -> None:
        self.size = size

    def boxes(self, height: int, width: int) -> list[Box]:
        s = self.size
        if width >= height:
            top = (height - s) // 2
            return [(top, left, s, s) for left in (0, (width - s) // 2, width - s)]
        left = (width - s) // 2
        return [(top, left, s, s) for top in (0, (height - s) // 2, height - s)]

    def __call__(self, clip: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_fits(clip, self.size, self.size)
        return torch.stack([crop_clip(clip, b) for b in self.boxes(clip.shape[-2], clip.shape[-1])])


class TenCrop:
    """The four corner crops and the centre crop, then the same five mirrored (flow-aware), in the
    order top-left, top-right, bottom-left, bottom-right, centre, then their flips.

    Input ``(T, C, H, W)``; output ``(10, T, C, size, size)``, same dtype.
    """

    def __init__(self, size: int, *, flow: bool = False) -> None:
        self.size, self.flow = size, flow

    def boxes(self, height: int, width: int) -> list[Box]:
        s = self.size
        corners = [(0, 0), (0, width - s), (height - s, 0), (height - s, width - s)]
        return [(t, l, s, s) for t, l in corners] + [CenterCrop(s).box(height, width)]

    def __call__(self, clip: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_fits(clip, self.size, self.size)
        five = torch.stack([crop_clip(clip, b) for b in self.boxes(clip.shape[-2], clip.shape[-1])])
        return torch.cat([five, flip_clip(five, flow=self.flow)])


class RandomHorizontalFlip:
    """Mirror the whole clip with probability ``p`` (one draw per clip); flow-aware when ``flow``.

    Input ``(..., C, H, W)`` uint8 or float; output the same shape and dtype.
    """

    def __init__(self, p: float = 0.5, *, flow: bool = False) -> None:
        self.p, self.flow = p, flow

    def get_params(self, generator: torch.Generator | None = None) -> bool:
        """Whether this clip is flipped (one draw)."""
        return _uniform(0.0, 1.0, generator) < self.p

    def __call__(self, clip: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return flip_clip(clip, flow=self.flow) if self.get_params(generator) else clip


class ToFloat:
    """uint8 ``[0, 255]`` to float32 ``[0, 1]``; any shape."""

    def __call__(self, clip: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return clip.float().div_(255.0) if clip.dtype == torch.uint8 else clip.float()


_GREY = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)


def _grey(clip: Tensor) -> Tensor:
    return (clip * _GREY.to(clip.dtype)).sum(dim=-3, keepdim=True)  # (..., 3, H, W) -> (..., 1, H, W)


class ColorJitter:
    """Brightness, contrast and saturation factors drawn once per clip from ``[1 - v, 1 + v]`` and
    applied in a random order (contrast blends each frame with its mean grey level).

    Input float ``(T, 3, H, W)`` in ``[0, 1]``; output the same, clamped to ``[0, 1]``.
    """

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0) -> None:
        self.ranges = {"brightness": brightness, "contrast": contrast, "saturation": saturation}

    def get_params(self, generator: torch.Generator | None = None) -> list[tuple[str, float]]:
        order = torch.randperm(3, generator=generator).tolist()
        names = list(self.ranges)
        params = []
        for i in order:
            v = self.ranges[names[i]]
            if v > 0:
                params.append((names[i], _uniform(max(0.0, 1 - v), 1 + v, generator)))
        return params

    @staticmethod
    def apply(clip: Tensor, name: str, factor: float) -> Tensor:
        if name == "brightness":
            other = torch.zeros((), dtype=clip.dtype)
        elif name == "contrast":
            other = _grey(clip).mean(dim=(-3, -2, -1), keepdim=True)  # one mean grey level per frame
        else:
            other = _grey(clip)
        return (factor * clip + (1 - factor) * other).clamp_(0.0, 1.0)

    def __call__(self, clip: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for name, factor in self.get_params(generator):
            clip = self.apply(clip, name, factor)
        return clip


class Normalize:
    """``(x / 255 - mean) / std`` for uint8 input, ``(x - mean) / std`` for float input in ``[0, 1]``.

    ``mean``/``std`` are given for pixels in ``[0, 1]`` (``mean = std = 0.5`` maps to ``[-1, 1]``).
    Input ``(T, C, H, W)`` or ``(N, T, C, H, W)``, uint8 or float; output float32 of the same shape
    whose memory is already laid out as ``(C, T, H, W)`` / ``(N, C, T, H, W)``, so the model layout
    costs no further copy: the uint8 -> float conversion and the transpose happen in one pass.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        if len(mean) != len(std):
            raise ConfigError(f"mean has {len(mean)} values but std has {len(std)}")
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, clip: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if clip.shape[-3] != self.mean.shape[0]:
            raise ValueError(
                f"clip has {clip.shape[-3]} channels, normalisation expects {self.mean.shape[0]}"
            )
        scale = 1.0 / (self.std * 255.0) if clip.dtype == torch.uint8 else 1.0 / self.std
        out = _empty_channels_first(clip.shape)
        out.copy_(clip)  # casts to float32 and transposes in one pass
        return out.mul_(scale).sub_(self.mean / self.std)


def _empty_channels_first(shape: torch.Size) -> Tensor:
    """An empty float tensor of ``shape`` (time before channels) stored channels-before-time."""
    if len(shape) == 4:
        t, c, h, w = shape
        return torch.empty(c, t, h, w).permute(1, 0, 2, 3)  # (C, T, H, W) memory seen as (T, C, H, W)
    if len(shape) == 5:
        n, t, c, h, w = shape
        return torch.empty(n, c, t, h, w).permute(0, 2, 1, 3, 4)  # (N, C, T, H, W) seen as (N, T, C, H, W)
    return torch.empty(shape)


def _to_tchw(frames: np.ndarray | Tensor) -> Tensor:
    """Decoder frames ``(T, H, W, C)`` -> a ``(T, C, H, W)`` view (channels-last memory, no copy)."""
    clip = torch.from_numpy(np.asarray(frames)) if isinstance(frames, np.ndarray) else frames
    if clip.ndim != 4 or clip.shape[-1] not in (1, 2, 3):
        raise ValueError(f"expected frames of shape (T, H, W, C) with C in 1..3, got {tuple(clip.shape)}")
    return clip.permute(0, 3, 1, 2)  # (T, H, W, C) -> (T, C, H, W)


class ClipPipeline:
    """A chain of clip steps sharing one generator.

    Input: frames ``(T, H, W, C)`` uint8 (numpy or torch; C = 3 RGB or 2 quantised flow x, y).
    Output: float32 ``(C, T, H, W)``, or ``(N, C, T, H, W)`` when a step produced N crops.
    Call as ``pipeline(frames, generator=torch.Generator().manual_seed(0))`` for reproducible draws.
    """

    def __init__(self, steps: Sequence[ClipStep]) -> None:
        self.steps = list(steps)

    def __call__(self, frames: np.ndarray | Tensor, generator: torch.Generator | None = None) -> Tensor:
        clip = _to_tchw(frames)
        for step in self.steps:
            clip = step(clip, generator)
        if clip.ndim == 4:
            return clip.permute(1, 0, 2, 3).contiguous()  # (T, C, H, W) -> (C, T, H, W)
        return clip.permute(0, 2, 1, 3, 4).contiguous()  # (N, T, C, H, W) -> (N, C, T, H, W)

    def __repr__(self) -> str:
        return f"ClipPipeline({', '.join(type(s).__name__ for s in self.steps)})"


def _train_steps(
    crop: str, *, crop_size: int, short_side: int, scale: tuple[float, float], more_fix_crop: bool
) -> list[ClipStep]:
    if crop == "random_resized":  # the box is relative to the frame, so no resize is needed first
        return [RandomResizedCrop(crop_size, scale=scale)]
    if crop == "multiscale":
        return [ResizeShortSide(short_side), MultiScaleCrop(crop_size, more_fix_crop=more_fix_crop)]
    if crop == "short_side":
        return [ResizeShortSide(short_side), RandomCrop(crop_size)]
    raise ConfigError(f"train_crop must be one of {TRAIN_CROPS}, got {crop!r}")


def _test_crop(num_crops: int, crop_size: int, flow: bool) -> ClipStep:
    if num_crops == 1:
        return CenterCrop(crop_size)
    if num_crops == 3:
        return ThreeCrop(crop_size)
    if num_crops == 10:
        return TenCrop(crop_size, flow=flow)
    raise ConfigError(f"num_crops must be 1, 3 or 10, got {num_crops}")


def build_transform(
    *,
    train: bool,
    crop_size: int,
    short_side: int,
    mean: Sequence[float],
    std: Sequence[float],
    num_crops: int = 1,
    train_crop: str = "random_resized",
    flip: bool = True,
    color_jitter: float = 0.0,
    flow: bool = False,
    scale: tuple[float, float] = (0.08, 1.0),
    more_fix_crop: bool = True,
) -> ClipPipeline:
    """Frames ``(T, H, W, C)`` uint8 -> float ``(C, T, H, W)`` (``(N, C, T, H, W)`` for N test crops).

    Training: ``train_crop`` (``"random_resized"`` with area ``scale``; ``"multiscale"``: short side
    resize then TSN multi-scale crop; ``"short_side"``: short side resize then random crop), an
    optional flow-aware horizontal flip and, for RGB, colour jitter of strength ``color_jitter``.
    Testing: short side resize to ``short_side`` then a centre crop, three crop or ten crop
    (``num_crops`` = 1, 3, 10). Finally ``Normalize(mean, std)``.
    """
    if short_side < crop_size:
        raise ConfigError(f"short_side ({short_side}) must be at least crop_size ({crop_size})")
    channels = 2 if flow else 3
    if len(mean) != channels or len(std) != channels:
        raise ConfigError(
            f"{'flow' if flow else 'RGB'} needs {channels} mean/std values, got {len(mean)}/{len(std)}"
        )
    if flow and color_jitter > 0:
        raise ConfigError("color_jitter applies to RGB clips only, not to optical flow")
    if not train:
        return ClipPipeline(
            [ResizeShortSide(short_side), _test_crop(num_crops, crop_size, flow), Normalize(mean, std)]
        )
    if num_crops != 1:
        raise ConfigError(f"training uses one crop per clip, got num_crops={num_crops}")
    steps = _train_steps(
        train_crop, crop_size=crop_size, short_side=short_side, scale=scale, more_fix_crop=more_fix_crop
    )
    if flip:
        steps.append(RandomHorizontalFlip(flow=flow))
    if color_jitter > 0:
        steps += [ToFloat(), ColorJitter(color_jitter, color_jitter, color_jitter)]
    steps.append(Normalize(mean, std))
    return ClipPipeline(steps)
