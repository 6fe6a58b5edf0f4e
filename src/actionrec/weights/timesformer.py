"""TimeSformer checkpoints of Hugging Face and MMAction2 -> the official (facebookresearch) key layout.

The official layout (``timesformer/models/vit.py``, timm ViT names; PySlowFast saves it under
``model.``) is the one :mod:`actionrec.models.timesformer` reads. Every attention's ``qkv`` weight has
its rows ordered ``[q; k; v]`` with the heads contiguous in each, which is also the row order of HF's
fused ``qkv`` Linear and of ``nn.MultiheadAttention.in_proj_weight`` (MMAction2): tensors are moved,
never altered. Block ``i`` (official names after ``blocks.{i}.``; HF's after
``timesformer.encoder.layer.{i}.``; MMAction2's after ``backbone.transformer_layers.layers.{i}.``):

======================  ====================================  =============================================
official                Hugging Face                          MMAction2 (divided / joint and space-only)
======================  ====================================  =============================================
``norm1``               ``layernorm_before``                  ``attentions.1.norm`` / ``norms.0``
``attn.qkv``            ``attention.attention.qkv``           ``attentions.{1/0}.attn.in_proj_{weight,bias}``
``attn.proj``           ``attention.output.dense``            ``attentions.{1/0}.attn.out_proj``
``temporal_norm1``      ``temporal_layernorm``                ``attentions.0.norm``
``temporal_attn.qkv``   ``temporal_attention.attention.qkv``  ``attentions.0.attn.in_proj_{weight,bias}``
``temporal_attn.proj``  ``temporal_attention.output.dense``   ``attentions.0.attn.out_proj``
``temporal_fc``         ``temporal_dense``                    ``attentions.0.temporal_fc``
``norm2``               ``layernorm_after``                   ``ffns.0.norm`` / ``norms.1``
``mlp.fc1``             ``intermediate.dense``                ``ffns.0.layers.0.0``
``mlp.fc2``             ``output.dense``                      ``ffns.0.layers.1``
======================  ====================================  =============================================

In MMAction2's divided space-time layers ``attentions.0`` is the temporal attention and ``attentions.1``
the spatial one; joint / space-only layers have one mmcv ``MultiheadAttention`` (``attentions.0``) and
``norms.{0,1}``. Outside the blocks: HF ``timesformer.embeddings.{cls_token, position_embeddings,
time_embeddings, patch_embeddings.projection}``, ``timesformer.layernorm`` and ``classifier``; MMAction2
``backbone.{cls_token, pos_embed, time_embed, patch_embed.projection, norm}`` and ``cls_head.fc_cls``.
``time_embed`` is absent for space-only models in all three layouts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from actionrec.errors import WeightsError

__all__ = ["detect_timesformer_layout", "hf_to_official", "mmaction_to_official", "to_official"]

_OFFICIAL_QKV = re.compile(r"^(?:model\.)?blocks\.\d+\.attn\.qkv\.weight$")
_HF_QKV = re.compile(r"^(?:timesformer\.)?encoder\.layer\.\d+\.attention\.attention\.qkv\.weight$")
_MM_QKV = re.compile(
    r"^(?:backbone\.)?transformer_layers\.layers\.\d+\.attentions\.\d+\.attn\.in_proj_weight$"
)

_HF_TOP = {
    "embeddings.cls_token": "cls_token",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.time_embeddings": "time_embed",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "layernorm.weight": "norm.weight",
    "layernorm.bias": "norm.bias",
}
_HF_HEAD = {"classifier.weight": "head.weight", "classifier.bias": "head.bias"}
_HF_BLOCK_KEY = re.compile(r"^encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")
_HF_BLOCK = {
    "layernorm_before": "norm1",
    "attention.attention.qkv": "attn.qkv",
    "attention.output.dense": "attn.proj",
    "temporal_layernorm": "temporal_norm1",
    "temporal_attention.attention.qkv": "temporal_attn.qkv",
    "temporal_attention.output.dense": "temporal_attn.proj",
    "temporal_dense": "temporal_fc",
    "layernorm_after": "norm2",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
}

_MM_TOP = {
    "cls_token": "cls_token",
    "pos_embed": "pos_embed",
    "time_embed": "time_embed",
    "patch_embed.projection.weight": "patch_embed.proj.weight",
    "patch_embed.projection.bias": "patch_embed.proj.bias",
    "norm.weight": "norm.weight",
    "norm.bias": "norm.bias",
}
_MM_HEAD = {"cls_head.fc_cls.weight": "head.weight", "cls_head.fc_cls.bias": "head.bias"}
_MM_BLOCK_KEY = re.compile(r"^transformer_layers\.layers\.(\d+)\.(.+)\.(weight|bias)$")
_MM_DIVIDED = {
    "attentions.0.norm": "temporal_norm1",
    "attentions.0.attn.in_proj": "temporal_attn.qkv",
    "attentions.0.attn.out_proj": "temporal_attn.proj",
    "attentions.0.temporal_fc": "temporal_fc",
    "attentions.1.norm": "norm1",
    "attentions.1.attn.in_proj": "attn.qkv",
    "attentions.1.attn.out_proj": "attn.proj",
    "ffns.0.norm": "norm2",
    "ffns.0.layers.0.0": "mlp.fc1",
    "ffns.0.layers.1": "mlp.fc2",
}
_MM_SINGLE = {  # joint_space_time and space_only: operation_order ('norm', 'self_attn', 'norm', 'ffn')
    "norms.0": "norm1",
    "attentions.0.attn.in_proj": "attn.qkv",
    "attentions.0.attn.out_proj": "attn.proj",
    "norms.1": "norm2",
    "ffns.0.layers.0.0": "mlp.fc1",
    "ffns.0.layers.1": "mlp.fc2",
}
_MM_DROPPED = ("data_preprocessor.",)  # mean / std buffers of the recognizer, not model weights


def detect_timesformer_layout(sd: Mapping[str, Tensor]) -> str | None:
    """``"official"``, ``"hf"`` or ``"mmaction"`` for a TimeSformer state dict, else ``None``.

    Official keys may carry PySlowFast's ``model.`` prefix, HF keys ``timesformer.`` (a
    ``TimesformerForVideoClassification``) or none (a bare ``TimesformerModel``), MMAction2 keys
    ``backbone.`` (a recognizer) or none (a bare backbone).
    """
    for pattern, layout in ((_OFFICIAL_QKV, "official"), (_HF_QKV, "hf"), (_MM_QKV, "mmaction")):
        if any(pattern.match(k) for k in sd):
            return layout
    return None


def _unexpected(layout: str, key: str) -> WeightsError:
    return WeightsError(f"{layout} TimeSformer checkpoint: unexpected key {key!r}")


def hf_to_official(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a Hugging Face ``TimesformerForVideoClassification`` / ``TimesformerModel`` state dict.

    ``classifier.*`` becomes ``head.*`` (omitted when absent); any key HF's model does not have is a
    :class:`WeightsError`.
    """
    out: dict[str, Tensor] = {}
    for key, value in sd.items():
        if key in _HF_HEAD:
            out[_HF_HEAD[key]] = value
            continue
        name = key.removeprefix("timesformer.")
        if name in _HF_TOP:
            out[_HF_TOP[name]] = value
            continue
        m = _HF_BLOCK_KEY.match(name)
        if m is None or m.group(2) not in _HF_BLOCK:
            raise _unexpected("Hugging Face", key)
        index, module, param = m.groups()
        out[f"blocks.{index}.{_HF_BLOCK[module]}.{param}"] = value
    return out


def mmaction_to_official(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename an MMAction2 ``TimeSformer`` recognizer (or bare backbone) state dict.

    Divided space-time checkpoints are told by their ``attentions.1`` keys. ``cls_head.fc_cls.*``
    becomes ``head.*`` (omitted when absent); ``data_preprocessor.*`` buffers are dropped; any other
    key that MMAction2's TimeSformer does not have is a :class:`WeightsError`.
    """
    divided = any(".attentions.1." in k for k in sd)
    block_names = _MM_DIVIDED if divided else _MM_SINGLE
    out: dict[str, Tensor] = {}
    for key, value in sd.items():
        if key.startswith(_MM_DROPPED):
            continue
        if key in _MM_HEAD:
            out[_MM_HEAD[key]] = value
            continue
        name = key.removeprefix("backbone.")
        if name in _MM_TOP:
            out[_MM_TOP[name]] = value
            continue
        # nn.MultiheadAttention names its fused projection in_proj_weight / in_proj_bias
        name = name.replace(".in_proj_weight", ".in_proj.weight").replace(".in_proj_bias", ".in_proj.bias")
        m = _MM_BLOCK_KEY.match(name)
        if m is None or m.group(2) not in block_names:
            raise _unexpected("MMAction2", key)
        index, module, param = m.groups()
        out[f"blocks.{index}.{block_names[module]}.{param}"] = value
    return out


def to_official(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Any known TimeSformer layout -> official keys (an official one only loses its ``model.`` prefix)."""
    layout = detect_timesformer_layout(sd)
    if layout == "official":
        return {k.removeprefix("model."): v for k, v in sd.items()}
    if layout == "hf":
        return hf_to_official(sd)
    if layout == "mmaction":
        return mmaction_to_official(sd)
    sample = ", ".join(list(sd)[:3])
    raise WeightsError(
        f"not a TimeSformer checkpoint of a known layout (official, Hugging Face, MMAction2): keys {sample}"
    )


_WIDTH_NAMES = {768: "base", 384: "small", 192: "tiny"}  # ViT-B / -S / -Ti, their heads assumed (12 / 6 / 3)
_NAMED_INPUTS = {(16, 448): "timesformer_hr", (96, 224): "timesformer_l"}  # divided, base width


def infer_timesformer_model(sd: Mapping[str, Tensor]) -> tuple[str, dict[str, int]] | None:
    """The registered TimeSformer a checkpoint of a known layout holds and the builder arguments its
    shapes need (frames, frame size, patch size, depth), or ``None`` for another network.

    The scheme is told by the keys (``temporal_attn``: divided; ``time_embed`` alone: joint; neither:
    space-only), the width by the embedding size; the head count cannot be read from the weights, so a
    width's usual one (ViT-B 12, ViT-S 6, ViT-Ti 3) is assumed.
    """
    if detect_timesformer_layout(sd) is None:
        return None
    sd = to_official(sd)
    divided = any(".temporal_attn." in k for k in sd)
    scheme = "divided" if divided else "joint" if "time_embed" in sd else "space"
    dim = sd["cls_token"].shape[-1]
    if dim not in _WIDTH_NAMES:
        raise WeightsError(f"TimeSformer of width {dim}: no registered model has it (768, 384 or 192)")
    patch = sd["patch_embed.proj.weight"].shape[-1]
    img = round((sd["pos_embed"].shape[1] - 1) ** 0.5) * patch
    frames = sd["time_embed"].shape[1] if "time_embed" in sd else 8
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    if (dim, scheme, patch, depth) == (768, "divided", 16, 12) and (frames, img) in _NAMED_INPUTS:
        return _NAMED_INPUTS[(frames, img)], {}
    given = {"num_frames": frames, "img_size": img, "patch_size": patch, "depth": depth}
    defaults = {"num_frames": 8, "img_size": 224, "patch_size": 16, "depth": 12}
    return f"timesformer_{_WIDTH_NAMES[dim]}_{scheme}", {k: v for k, v in given.items() if v != defaults[k]}
