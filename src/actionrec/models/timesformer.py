"""TimeSformer: "Is Space-Time Attention All You Need for Video Understanding?" (Bertasius, Wang &
Torresani 2021, ICML, arXiv 2102.05095), §3 (the model, eq. 1-8), Fig. 1-2 (the five attention schemes)
and §4.1 (Table 1: schemes compared; HR and L inputs in §4.3).

A ViT-B/16 ("An Image is Worth 16x16 Words", Dosovitskiy et al. 2021) over the frames of a clip: every
frame cut into 16 x 16 patches, each a token of width D = 768 (eq. 1); a learned CLS token; learned
spatial position embeddings (one per patch position, shared by the frames) and temporal ones (one per
frame, zero at initialisation); 12 blocks of 12 heads, MLP x 4, LayerNorm eps 1e-6, stochastic depth
0 -> 0.1 over the blocks; the final LayerNorm's CLS token is the clip's feature (eq. 6).

The blocks follow one of five schemes (:mod:`actionrec.layers.space_time_attention`): ``space`` (S,
every frame alone, its CLS outputs averaged over the frames before the final norm, no time embedding),
``joint`` (ST), ``divided`` (T+S, the paper's default), ``local_global`` (L+G) and ``axial`` (T+W+H).
The official code (facebookresearch/TimeSformer) released the first three; L+G and axial are built
from the paper's description (choices in the layer's docstring).

A clip of another frame count or frame size than the model was built for is run with the position
embeddings resized by nearest-neighbour interpolation, as the official forward does.

Weights (``weights=`` or ``actionrec convert``): the official PySlowFast ``.pyth`` checkpoints (keys
``model.*``), Hugging Face's ``TimesformerForVideoClassification``, MMAction2's layout, our own files,
and timm's image ViT (``vit_base_patch16_224``), which initialises a video model as the official code
does: every spatial weight copied, each factorised attention (``temporal_attn``, ...) and its norm
copied from the spatial one, the zero-initialised ``*_fc`` and time embedding kept, the image
classifier dropped. A checkpoint of another frame count has its time embedding resized (nearest).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from actionrec.layers.attention import PatchEmbed
from actionrec.layers.head import ClassifierHead
from actionrec.layers.inflate import cross_modality_init
from actionrec.layers.space_time_attention import SCHEMES, SpaceTimeBlock
from actionrec.models.base import VideoClassifier
from actionrec.models.registry import ModelCard, register_model

# (embed_dim, depth, heads): ViT-B/16 as in the paper; ViT-S and ViT-Ti widths (DeiT's) for CPU work.
WIDTHS = {"base": (768, 12, 12), "small": (384, 12, 6), "tiny": (192, 12, 3)}


def resize_time_embed(embed: torch.Tensor, frames: int) -> torch.Tensor:
    """(1, T', D) -> (1, frames, D) by nearest-neighbour interpolation (the official code's choice)."""
    if embed.shape[1] == frames:
        return embed
    return F.interpolate(embed.transpose(1, 2), size=frames, mode="nearest").transpose(1, 2)


def resize_pos_embed(embed: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(1, 1 + P·P, D) -> (1, 1 + H·W, D): the CLS entry kept, the P x P patch grid resized (nearest)."""
    n = embed.shape[1] - 1
    side = round(n**0.5)
    if (side, side) == grid:
        return embed
    if side * side != n:
        raise ValueError(f"position embedding of {n} patches is not a square grid")
    patches = embed[:, 1:].transpose(1, 2).reshape(1, -1, side, side)  # (1, D, P, P)
    patches = F.interpolate(patches, size=grid, mode="nearest").flatten(2).transpose(1, 2)
    return torch.cat([embed[:, :1], patches], dim=1)


class TimeSformer(VideoClassifier):
    """(B, C, T, H, W) clip -> (B, num_classes); ``forward_features`` gives tokens (B, 1 + N, D)."""

    def __init__(
        self,
        *,
        num_classes: int = 400,
        attention: str = "divided",
        img_size: int = 224,
        patch_size: int = 16,
        num_frames: int = 8,
        in_channels: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if attention not in SCHEMES:
            raise ValueError(f"attention must be one of {SCHEMES}, got {attention!r}")
        self.num_classes = num_classes
        self.attention = attention
        self.patch_embed = PatchEmbed(patch_size=patch_size, in_channels=in_channels, embed_dim=embed_dim)
        num_patches = (img_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        if attention != "space":
            self.time_embed = nn.Parameter(torch.zeros(1, num_frames, embed_dim))
            self.time_drop = nn.Dropout(drop_rate)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # 0 -> drop_path_rate
        self.blocks = nn.ModuleList(
            SpaceTimeBlock(
                embed_dim,
                num_heads=num_heads,
                scheme=attention,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                drop=drop_rate,
                attn_drop=attn_drop_rate,
                drop_path=rate,
            )
            for rate in rates
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = ClassifierHead(embed_dim, num_classes, dropout=dropout, token_pool="cls")
        self._init_weights()

    def _init_weights(self) -> None:
        """timm's ViT init: truncated normal (std 0.02) for the embeddings and linear layers, zero biases
        (the factorised steps' ``*_fc`` stay zero, the time embedding zero)."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear) and not name.endswith("_fc"):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def no_weight_decay(self) -> set[str]:
        """Embeddings trained without weight decay (the official code's list)."""
        return {"pos_embed", "cls_token", "time_embed"} & {n for n, _ in self.named_parameters()}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[0], x.shape[2]
        patches, (h, w) = self.patch_embed(x)  # (B·T, H·W, D)
        cls = self.cls_token.expand(b * t, -1, -1)
        x = torch.cat([cls, patches], dim=1) + resize_pos_embed(self.pos_embed, (h, w))  # (B·T, 1 + H·W, D)
        x = self.pos_drop(x)
        if self.attention == "space":
            for block in self.blocks:
                x = block(x, (1, h, w))
            x = x.view(b, t, *x.shape[1:]).mean(1)  # every frame's tokens averaged: (B, 1 + H·W, D)
            return self.norm(x)
        d = x.shape[-1]
        cls = x[:b, :1]  # CLS + its position embedding, the same for every frame: (B, 1, D)
        x = x[:, 1:].view(b, t, h * w, d) + resize_time_embed(self.time_embed, t).unsqueeze(2)
        x = self.time_drop(x).transpose(1, 2).reshape(b, h * w * t, d)  # (B, H·W·T, D), time fastest
        x = torch.cat([cls, x], dim=1)  # (B, 1 + H·W·T, D)
        for block in self.blocks:
            x = block(x, (t, h, w))
        return self.norm(x)

    def convert_state_dict(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Any supported checkpoint layout -> this model's keys (see the module docstring)."""
        from actionrec.weights.timesformer import to_official

        return adapt_state_dict(self, to_official(sd))


def _from_image_vit(model: TimeSformer, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An image ViT's (or a space-only model's) weights for a video model: each factorised step's norm
    and attention copied from the block's spatial ones, the model's own zero ``*_fc``, time embedding
    and (when the sizes differ) classifier kept."""
    own = model.state_dict()
    out = dict(sd)
    for i, block in enumerate(model.blocks):
        for step in block.steps:
            for part in ("norm1", "attn"):
                for key in own:
                    if key.startswith(f"blocks.{i}.{step}_{part}."):
                        out[key] = sd[key.replace(f".{step}_{part}.", f".{part}.")]
            for key in own:
                if key.startswith(f"blocks.{i}.{step}_fc."):
                    out[key] = own[key]
    if "time_embed" in own:
        out["time_embed"] = own["time_embed"]
    for key in ("head.fc.weight", "head.fc.bias"):
        if key in own and (key not in sd or sd[key].shape != own[key].shape):
            out[key] = own[key]
    return out


def adapt_state_dict(model: TimeSformer, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official-layout keys (``head.*``) -> ``model``'s: classifier renamed, an image ViT expanded to
    the model's scheme, position embeddings and the patch kernel resized to the model's input."""
    sd = {(f"head.fc.{k[5:]}" if k in ("head.weight", "head.bias") else k): v for k, v in sd.items()}
    own = model.state_dict()
    factorised = any(".temporal_attn." in k or ".local_attn." in k or ".width_attn." in k for k in sd)
    if "time_embed" in own and "time_embed" not in sd and not factorised:
        sd = _from_image_vit(model, sd)
    if "time_embed" in sd and "time_embed" in own:
        sd["time_embed"] = resize_time_embed(sd["time_embed"], own["time_embed"].shape[1])
    if "time_embed" in sd and "time_embed" not in own:
        del sd["time_embed"]  # a video checkpoint into a space-only model: frames are independent there
    if "pos_embed" in sd and sd["pos_embed"].shape != own["pos_embed"].shape:
        side = round((own["pos_embed"].shape[1] - 1) ** 0.5)
        sd["pos_embed"] = resize_pos_embed(sd["pos_embed"], (side, side))
    kernel = sd.get("patch_embed.proj.weight")
    channels = own["patch_embed.proj.weight"].shape[1]
    if kernel is not None and kernel.shape[1] != channels:
        sd["patch_embed.proj.weight"] = cross_modality_init(kernel, channels)
    return sd


def _timesformer(size: str, attention: str, *, num_classes: int, **kw: object) -> TimeSformer:
    dim, depth, heads = WIDTHS[size]
    kw = {"embed_dim": dim, "depth": depth, "num_heads": heads, **kw}
    return TimeSformer(num_classes=num_classes, attention=attention, **kw)  # type: ignore[arg-type]


# Table 1 (8 x 224², K400 / SSv2 top-1) and the params the paper gives per scheme (400 classes).
_TABLE1 = {
    "space": (85.9, 76.9, 36.6),
    "joint": (85.9, 77.4, 58.5),
    "divided": (121.4, 78.0, 59.5),
    "local_global": (121.4, 75.9, 56.3),
    "axial": (156.8, 73.5, 56.2),
}
_PAPER = "Is Space-Time Attention All You Need for Video Understanding?"
_SCHEME_NAMES = {"space": "S", "joint": "ST", "divided": "T+S", "local_global": "L+G", "axial": "T+W+H"}


def _card(size: str, attention: str) -> ModelCard:
    params, k400, ssv2 = _TABLE1[attention]
    base = size == "base"
    gmacs = 196.0 if base and attention == "divided" else None
    notes = (
        f"Scheme {_SCHEME_NAMES[attention]}. Table 1 (as our reference notes recall it; the official code "
        f"counts the same within 0.2 %): {params} M params, K400 {k400} / SSv2 {ssv2} top-1 (ImageNet-21K "
        "init). GMACs: 0.59 TFLOPs for 3 views of the divided model in the paper, 196 G (fvcore-style "
        "multiply-adds) a view as MMAction2 reports."
        if base
        else f"Scheme {_SCHEME_NAMES[attention]}, {size} width ({WIDTHS[size][0]}-d): no published numbers."
    )
    return ModelCard(
        paper=_PAPER,
        arxiv="2102.05095",
        section="§3, Fig. 1-2, Table 1" if base else "§3, Fig. 1-2 (widths of DeiT-S / -Ti)",
        num_frames=8,
        frame_interval=32,  # the released 8x32 models
        crop_size=224,
        short_side=224,
        normalization="minus_one_one",
        published_params_m=params if base else None,
        published_gmacs=gmacs,
        published_input="3x8x224x224" if base else "",
        published_top1=k400 if base else None,
        published_dataset="kinetics400" if base else "",
        notes=notes,
    )


def _register(size: str, attention: str) -> None:
    def builder(*, num_classes: int = 400, **kw: object) -> TimeSformer:
        return _timesformer(size, attention, num_classes=num_classes, **kw)

    builder.__name__ = builder.__qualname__ = f"timesformer_{size}_{attention}"
    builder.__doc__ = f"TimeSformer-{size} with {_SCHEME_NAMES[attention]} attention."
    register_model(_card(size, attention))(builder)


for _size in WIDTHS:
    for _attention in SCHEMES:
        _register(_size, _attention)


def _register_input(
    name: str, *, frames: int, size: int, interval: int, gmacs: float, top1: float, tflops: float
) -> None:
    """The paper's TimeSformer-HR / -L: the divided base model on another input (§4.3, Table 2)."""

    def builder(*, num_classes: int = 400, **kw: object) -> TimeSformer:
        kw = {"num_frames": frames, "img_size": size, **kw}
        return _timesformer("base", "divided", num_classes=num_classes, **kw)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"TimeSformer with divided attention on {frames} x {size}² clips."
    label = "TimeSformer-HR" if name.endswith("_hr") else "TimeSformer-L"
    card = ModelCard(
        paper=_PAPER,
        arxiv="2102.05095",
        section=f"§4.3 ({label}), Table 2",
        num_frames=frames,
        frame_interval=interval,  # the released TimeSformer_divST_{frames}x{interval}_{size}
        crop_size=size,
        short_side=size,
        normalization="minus_one_one",
        published_params_m=121.4,
        published_gmacs=gmacs,
        published_input=f"3x{frames}x{size}x{size}",
        published_top1=top1,
        published_dataset="kinetics400",
        notes=f"Divided attention on {frames} x {size}². Table 2 (as our reference notes recall it, not "
        f"checked against the PDF here): {top1} K400 top-1, {tflops} TFLOPs for 3 views, i.e. {gmacs:,.0f} "
        "GMACs a view; the params are Table 1's (the same network; its position embeddings grow with the "
        "frame size).",
    )
    register_model(card)(builder)


_register_input("timesformer_hr", frames=16, size=448, interval=16, gmacs=1703.0, top1=79.7, tflops=5.11)
_register_input("timesformer_l", frames=96, size=224, interval=4, gmacs=2380.0, top1=80.7, tflops=7.14)
