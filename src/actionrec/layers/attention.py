"""Transformer parts of a ViT ("An Image is Worth 16x16 Words", Dosovitskiy et al. 2021, arXiv
2010.11929, §3.1): patch embedding, multi-head self-attention, MLP and stochastic depth.

Names follow timm's ViT (``patch_embed.proj``, ``attn.qkv``, ``attn.proj``, ``mlp.fc1`` / ``fc2``), so
image and video transformer checkpoints of that layout load key for key. ``qkv`` rows are ``[q; k; v]``
with the heads contiguous inside each.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchEmbed(nn.Module):
    """Frames to patch tokens: (B, C, T, H, W) -> (B·T, H/p · W/p, D), a p x p convolution of stride p."""

    def __init__(self, *, patch_size: int = 16, in_channels: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        b, c, t, h, w = x.shape
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"frame size {h}x{w} is not a multiple of the patch size {self.patch_size}")
        x = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B, C, T, H, W) -> (B·T, C, H, W)
        x = self.proj(x)  # (B·T, D, H/p, W/p)
        grid = (x.shape[2], x.shape[3])
        return x.flatten(2).transpose(1, 2), grid  # (B·T, H/p · W/p, D), row-major patches


class Attention(nn.Module):
    """Multi-head self-attention over the tokens of each item: (B, N, D) -> (B, N, D).

    Computed by ``F.scaled_dot_product_attention`` (softmax(q kᵀ / sqrt(d_head)) v), which picks a fused
    kernel where one exists.
    """

    def __init__(
        self,
        dim: int,
        *,
        num_heads: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, d // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, heads, N, d_head)
        drop = self.attn_drop if self.training else 0.0
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        x = x.transpose(1, 2).reshape(b, n, d)  # (B, heads, N, d_head) -> (B, N, D)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    """fc1 -> GELU -> dropout -> fc2 -> dropout, hidden width ``mlp_ratio`` x dim."""

    def __init__(self, dim: int, *, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class DropPath(nn.Module):
    """Stochastic depth ("Deep Networks with Stochastic Depth", Huang et al. 2016, arXiv 1603.09382):
    in training, zero the residual branch of each item (first dimension) with probability ``p`` and
    scale the kept ones by 1 / (1 - p)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"
