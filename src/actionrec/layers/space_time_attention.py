"""Space-time self-attention blocks of TimeSformer ("Is Space-Time Attention All You Need for Video
Understanding?", Bertasius, Wang & Torresani 2021, arXiv 2102.05095, §3 and Fig. 1-2).

A block takes the clip's tokens ``x`` (B, 1 + H·W·T, D): a CLS token, then the patch tokens in
(h w t) order, time fastest (the official code's order), and the patch grid ``(T, H, W)``. Each scheme
is a pre-norm residual block; they differ in what each token attends to:

* ``space`` — within its frame only; the model runs every frame as its own item (no block of its own).
* ``joint`` (ST) — every token of the clip, CLS included, in one attention.
* ``divided`` (T+S) — the same patch position in the other frames (CLS excluded), then ``temporal_fc``
  and the residual; then the patches of its own frame plus a copy of CLS per frame, the CLS copies'
  outputs averaged over the frames; then the MLP.
* ``local_global`` (L+G) — a local window of T x H/2 x W/2 patches (CLS excluded, then ``local_fc``),
  then a sparse global attention over the whole clip at a stride of 2 patches in t, h and w (a CLS copy
  per strided set, averaged). The paper does not say whether the local window slides; here the grid is
  partitioned into 2 x 2 blocks of all T frames. A partition costs (N/4)² a window, computed as one
  batched attention, where a sliding window needs a mask over all N² pairs or a gather per query; the
  global step then connects the windows. The stride-2 global attention is dilated: the token at
  (t, h, w) attends to the tokens of the same parity (t mod 2, h mod 2, w mod 2), 8 sets a clip.
* ``axial`` (T+W+H) — time (then ``temporal_fc``), width (then ``width_fc``), height with a CLS copy
  per column, each with its own LayerNorm and attention.

The first attention of the factorised schemes is followed by a linear layer initialised to zero (the
official ``temporal_fc``), so a block starts as its last attention alone, and the weights of an image
ViT's ``attn`` can initialise every attention. Stochastic depth is drawn per item of each attention's
batch, as the official code does (per pixel column in the temporal step, per frame in the spatial one).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from actionrec.layers.attention import Attention, DropPath, Mlp

SCHEMES = ("space", "joint", "divided", "local_global", "axial")
Grid = tuple[int, int, int]  # (T, H, W) of the patch tokens


def split_tokens(x: torch.Tensor, grid: Grid) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 1 + H·W·T, D) -> CLS (B, 1, D) and patches (B, H, W, T, D)."""
    t, h, w = grid
    return x[:, :1], x[:, 1:].reshape(x.shape[0], h, w, t, x.shape[-1])


def join_tokens(cls: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
    """CLS (B, 1, D) and patches (B, H, W, T, D) -> (B, 1 + H·W·T, D)."""
    return torch.cat([cls, patches.flatten(1, 3)], dim=1)


class SpaceTimeBlock(nn.Module):
    """One TimeSformer block of ``scheme`` (see the module docstring): (B, 1 + H·W·T, D) -> same shape."""

    def __init__(
        self,
        dim: int,
        *,
        num_heads: int,
        scheme: str = "divided",
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if scheme not in SCHEMES:
            raise ValueError(f"attention scheme must be one of {SCHEMES}, got {scheme!r}")
        self.scheme = scheme
        norm = partial(nn.LayerNorm, dim, eps=norm_eps)
        attn = partial(
            Attention, dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop
        )
        self.norm1 = norm()
        self.attn = attn()
        # the factorised steps before the last attention: (name prefix of norm / attention / fc)
        self.steps = {
            "divided": ("temporal",),
            "axial": ("temporal", "width"),
            "local_global": ("local",),
        }.get(scheme, ())
        for step in self.steps:
            self.add_module(f"{step}_norm1", norm())
            self.add_module(f"{step}_attn", attn())
            fc = nn.Linear(dim, dim)
            nn.init.zeros_(fc.weight)
            nn.init.zeros_(fc.bias)
            self.add_module(f"{step}_fc", fc)
        self.drop_path = DropPath(drop_path)
        self.norm2 = norm()
        self.mlp = Mlp(dim, hidden=int(dim * mlp_ratio), drop=drop)

    def forward(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        if self.scheme in ("space", "joint"):
            x = x + self.drop_path(self.attn(self.norm1(x)))
        else:
            x = getattr(self, f"_{self.scheme}")(x, grid)
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def _step(self, name: str, seqs: torch.Tensor) -> torch.Tensor:
        """A factorised attention over (items, L, D) without CLS, through its zero-initialised fc."""
        norm, attn, fc = (getattr(self, f"{name}_{part}") for part in ("norm1", "attn", "fc"))
        return fc(self.drop_path(attn(norm(seqs))))

    def _last_step(self, cls: torch.Tensor, seqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``attn`` over (B·G, L, D) sequences (G per sample) each with a copy of CLS prepended.

        Returns the CLS residual (B, 1, D), averaged over the G copies, and the sequences' (B·G, L, D).
        """
        b, _, d = cls.shape
        g = seqs.shape[0] // b
        seqs = torch.cat([cls.repeat_interleave(g, dim=0), seqs], dim=1)  # (B·G, 1 + L, D)
        res = self.drop_path(self.attn(self.norm1(seqs)))
        return res[:, 0].view(b, g, d).mean(1, keepdim=True), res[:, 1:]

    def _divided(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        t, h, w = grid
        cls, p = split_tokens(x, grid)  # (B, 1, D), (B, H, W, T, D)
        b, d = x.shape[0], x.shape[-1]
        # time: each patch position attends over its T frames
        p = p + self._step("temporal", p.reshape(b * h * w, t, d)).view(b, h, w, t, d)
        # space: each frame attends over its H·W patches and a copy of CLS
        frames = p.permute(0, 3, 1, 2, 4).reshape(b * t, h * w, d)  # (B·T, H·W, D)
        cls_res, res = self._last_step(cls, frames)
        p = p + res.view(b, t, h, w, d).permute(0, 2, 3, 1, 4)  # back to (B, H, W, T, D)
        return join_tokens(cls + cls_res, p)

    def _local_global(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        t, h, w = grid
        if t % 2 or h % 2 or w % 2:
            raise ValueError(f"local-global attention needs an even patch grid (T, H, W), got {grid}")
        cls, p = split_tokens(x, grid)  # (B, 1, D), (B, H, W, T, D)
        b, d, h2, w2, t2 = x.shape[0], x.shape[-1], h // 2, w // 2, t // 2
        # local: 2 x 2 windows of T x H/2 x W/2 patches
        win = p.view(b, 2, h2, 2, w2, t, d).permute(0, 1, 3, 2, 4, 5, 6)  # (B, 2, 2, H/2, W/2, T, D)
        res = self._step("local", win.reshape(b * 4, h2 * w2 * t, d))  # (B·4, H/2·W/2·T, D)
        p = p + res.view(b, 2, 2, h2, w2, t, d).permute(0, 1, 3, 2, 4, 5, 6).reshape(b, h, w, t, d)
        # global: the 8 interleaved sets of every second patch in h, w and t, each with a CLS copy
        sets = p.view(b, h2, 2, w2, 2, t2, 2, d).permute(0, 2, 4, 6, 1, 3, 5, 7)
        sets = sets.reshape(b * 8, h2 * w2 * t2, d)  # (B, 2, 2, 2, H/2, W/2, T/2, D) -> (B·8, N/8, D)
        cls_res, res = self._last_step(cls, sets)
        res = res.view(b, 2, 2, 2, h2, w2, t2, d).permute(0, 4, 1, 5, 2, 6, 3, 7)  # (B, H/2, 2, W/2, ..., D)
        return join_tokens(cls + cls_res, p + res.reshape(b, h, w, t, d))

    def _axial(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        t, h, w = grid
        cls, p = split_tokens(x, grid)  # (B, 1, D), (B, H, W, T, D)
        b, d = x.shape[0], x.shape[-1]
        # time: (B·H·W, T, D)
        p = p + self._step("temporal", p.reshape(b * h * w, t, d)).view(b, h, w, t, d)
        # width: each row of each frame, (B·H·T, W, D)
        rows = p.permute(0, 1, 3, 2, 4).reshape(b * h * t, w, d)
        p = p + self._step("width", rows).view(b, h, t, w, d).permute(0, 1, 3, 2, 4)
        # height: each column of each frame with a CLS copy, (B·W·T, 1 + H, D)
        cols = p.permute(0, 2, 3, 1, 4).reshape(b * w * t, h, d)
        cls_res, res = self._last_step(cls, cols)
        p = p + res.view(b, w, t, h, d).permute(0, 3, 1, 2, 4)  # back to (B, H, W, T, D)
        return join_tokens(cls + cls_res, p)
