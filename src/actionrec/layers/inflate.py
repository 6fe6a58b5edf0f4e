"""2D -> 3D weight inflation (Carreira & Zisserman 2017, "Quo Vadis, Action Recognition?", arXiv 1705.07750, §2.4).

(being extended: whole-model ``inflate``.)
"""

from __future__ import annotations

import torch


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
