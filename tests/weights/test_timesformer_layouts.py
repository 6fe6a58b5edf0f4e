"""TimeSformer checkpoints of Hugging Face and MMAction2 -> official keys (actionrec.weights.timesformer)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from actionrec.errors import WeightsError
from actionrec.weights.timesformer import (
    detect_timesformer_layout,
    hf_to_official,
    mmaction_to_official,
    to_official,
)

D, DEPTH, HEADS, FRAMES, IMG, PATCH, CLASSES = 48, 2, 3, 4, 32, 16, 5
N = (IMG // PATCH) ** 2
MODES = ["divided_space_time", "joint_space_time", "space_only"]
OUR_NAME = {"divided_space_time": "divided", "joint_space_time": "joint", "space_only": "space"}


def official_shapes(mode: str, head: bool = True) -> dict[str, tuple[int, ...]]:
    """The facebookresearch/TimeSformer (vit.py) state dict of the small test model, without ``model.``."""
    shapes: dict[str, tuple[int, ...]] = {
        "cls_token": (1, 1, D),
        "pos_embed": (1, 1 + N, D),
        "patch_embed.proj.weight": (D, 3, PATCH, PATCH),
        "patch_embed.proj.bias": (D,),
        "norm.weight": (D,),
        "norm.bias": (D,),
    }
    if mode != "space_only":
        shapes["time_embed"] = (1, FRAMES, D)
    if head:
        shapes |= {"head.weight": (CLASSES, D), "head.bias": (CLASSES,)}
    linears = {"attn.qkv": (3 * D, D), "attn.proj": (D, D), "mlp.fc1": (4 * D, D), "mlp.fc2": (D, 4 * D)}
    norms = ["norm1", "norm2"]
    if mode == "divided_space_time":
        linears |= {"temporal_attn.qkv": (3 * D, D), "temporal_attn.proj": (D, D), "temporal_fc": (D, D)}
        norms.append("temporal_norm1")
    for i in range(DEPTH):
        for name, shape in linears.items():
            shapes[f"blocks.{i}.{name}.weight"] = shape
            shapes[f"blocks.{i}.{name}.bias"] = (shape[0],)
        for name in norms:
            shapes[f"blocks.{i}.{name}.weight"] = shapes[f"blocks.{i}.{name}.bias"] = (D,)
    return shapes


def shapes_of(sd: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


# ---------------------------------------------------------------------------------------------------
# Hugging Face (transformers.TimesformerForVideoClassification)


def hf_model(mode: str) -> nn.Module:
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    config = transformers.TimesformerConfig(
        image_size=IMG,
        patch_size=PATCH,
        num_frames=FRAMES,
        hidden_size=D,
        num_hidden_layers=DEPTH,
        num_attention_heads=HEADS,
        intermediate_size=4 * D,
        num_labels=CLASSES,
        attention_type=mode,
        layer_norm_eps=1e-6,  # the official model's LayerNorm eps (also HF's default)
    )
    torch.manual_seed(0)
    model = transformers.TimesformerForVideoClassification(config).eval()
    with torch.no_grad():  # every parameter random, also those HF initialises to 0 / 1
        for name, p in model.named_parameters():
            nn.init.normal_(p, std=0.02)
            if "layernorm" in name and name.endswith("weight"):
                p.add_(1.0)  # LayerNorm gains near 1, so that activations do not vanish
        model.classifier.weight.normal_(std=1.0)  # logits of order 1: a 1e-4 tolerance means something
    return model


def hf_reference_logits(model: nn.Module, mode: str, x: torch.Tensor) -> torch.Tensor:
    """HF logits for ``x`` (B, C, T, H, W), as the official model computes them.

    HF takes ``pixel_values`` (B, T, C, H, W). Its space-only model classifies every frame (logits of
    shape (B*T, classes)); the official one averages the frames' tokens before the final LayerNorm, so
    that is rebuilt from the last hidden state here.
    """
    with torch.no_grad():
        out = model(pixel_values=x.permute(0, 2, 1, 3, 4), output_hidden_states=True)
        if mode != "space_only":
            return out.logits
        hidden = out.hidden_states[-1]  # (B*T, 1+N, D), before the final LayerNorm
        pooled = hidden.reshape(x.shape[0], FRAMES, *hidden.shape[1:]).mean(1)
        return model.classifier(model.timesformer.layernorm(pooled)[:, 0])


@pytest.mark.parametrize("mode", MODES)
def test_hf_keys_and_shapes(mode: str) -> None:
    sd = hf_model(mode).state_dict()
    assert detect_timesformer_layout(sd) == "hf"
    official = hf_to_official(sd)
    assert shapes_of(official) == official_shapes(mode)
    assert (
        official["blocks.1.attn.qkv.weight"]
        is sd["timesformer.encoder.layer.1.attention.attention.qkv.weight"]
    )
    assert to_official(sd).keys() == official.keys()
    # a bare TimesformerModel has neither the timesformer. prefix nor a classifier
    base = {k.removeprefix("timesformer."): v for k, v in sd.items() if not k.startswith("classifier.")}
    assert shapes_of(to_official(base)) == official_shapes(mode, head=False)


@pytest.mark.parametrize("mode", MODES)
def test_hf_logits_match_ours(mode: str) -> None:
    from actionrec.models import create_model

    hf = hf_model(mode)
    torch.manual_seed(1)
    x = torch.randn(2, 3, FRAMES, IMG, IMG)  # ours: (B, C, T, H, W)
    expected = hf_reference_logits(hf, mode, x)
    assert expected.shape == (2, CLASSES) and expected.abs().max() > 0.5
    ours = create_model(
        f"timesformer_tiny_{OUR_NAME[mode]}",
        num_classes=CLASSES,
        img_size=IMG,
        num_frames=FRAMES,
        embed_dim=D,
        depth=DEPTH,
        num_heads=HEADS,
    ).eval()
    ours.load_state_dict(ours.convert_state_dict(hf_to_official(hf.state_dict())))
    with torch.no_grad():
        got = ours(x)
    assert (got - expected).abs().max().item() < 1e-4


# ---------------------------------------------------------------------------------------------------
# MMAction2 (mmaction2 needs compiled mmcv: the layout is written by hand from its source)


def mmaction_state_dict(mode: str, head: bool = True) -> dict[str, torch.Tensor]:
    """What ``Recognizer3D(backbone=TimeSformer(num_frames=4, img_size=32, patch_size=16, embed_dims=48,
    num_heads=3, num_transformer_layers=2, attention_type=mode), cls_head=TimeSformerHead(...))``
    saves, random-filled. Read from open-mmlab/mmaction2 (1.x) and open-mmlab/mmcv (2.x):

    - recognizer: ``backbone.`` + ``cls_head.`` (mmaction/models/recognizers/base.py);
      ``cls_head.fc_cls`` = nn.Linear(in_channels, num_classes) (mmaction/models/heads/timesformer_head.py)
    - mmaction/models/backbones/timesformer.py: ``cls_token``, ``pos_embed``, ``time_embed`` (not for
      space_only), ``patch_embed.projection`` (Conv2d), ``norm`` (LN eps 1e-6),
      ``transformer_layers`` = mmcv TransformerLayerSequence -> ``layers.{i}`` = BaseTransformerLayer
      with ``attentions`` / ``ffns`` / ``norms`` ModuleLists (mmcv/cnn/bricks/transformer.py)
    - divided_space_time: attn_cfgs [DividedTemporalAttentionWithNorm, DividedSpatialAttentionWithNorm]
      -> ``attentions.0`` temporal {norm, attn (nn.MultiheadAttention), temporal_fc}, ``attentions.1``
      spatial {norm, attn}; ffn FFNWithNorm -> ``ffns.0.norm`` (mmaction/models/common/transformer.py)
    - joint_space_time / space_only: mmcv MultiheadAttention (``attentions.0.attn``) and mmcv FFN,
      operation_order ('norm', 'self_attn', 'norm', 'ffn') -> ``norms.0``, ``norms.1``
    - nn.MultiheadAttention: ``in_proj_weight`` (3D, D) rows [q; k; v], ``in_proj_bias``, ``out_proj``
    - mmcv FFN: ``layers`` = Sequential(Sequential(Linear, act, Dropout), Linear, Dropout) ->
      ``ffns.0.layers.0.0`` (fc1), ``ffns.0.layers.1`` (fc2)
    (Checked against the real classes built on CPU with mmcv-lite 2.1.0 + mmengine + mmaction2 1.2.0.)
    """
    shapes: dict[str, tuple[int, ...]] = {
        "backbone.cls_token": (1, 1, D),
        "backbone.pos_embed": (1, 1 + N, D),
        "backbone.patch_embed.projection.weight": (D, 3, PATCH, PATCH),
        "backbone.patch_embed.projection.bias": (D,),
        "backbone.norm.weight": (D,),
        "backbone.norm.bias": (D,),
    }
    if mode != "space_only":
        shapes["backbone.time_embed"] = (1, FRAMES, D)
    if head:
        shapes |= {"cls_head.fc_cls.weight": (CLASSES, D), "cls_head.fc_cls.bias": (CLASSES,)}
    attentions = ["attentions.0", "attentions.1"] if mode == "divided_space_time" else ["attentions.0"]
    for i in range(DEPTH):
        p = f"backbone.transformer_layers.layers.{i}."
        for a in attentions:
            shapes |= {
                f"{p}{a}.attn.in_proj_weight": (3 * D, D),
                f"{p}{a}.attn.in_proj_bias": (3 * D,),
                f"{p}{a}.attn.out_proj.weight": (D, D),
                f"{p}{a}.attn.out_proj.bias": (D,),
            }
        shapes |= {
            f"{p}ffns.0.layers.0.0.weight": (4 * D, D),
            f"{p}ffns.0.layers.0.0.bias": (4 * D,),
            f"{p}ffns.0.layers.1.weight": (D, 4 * D),
            f"{p}ffns.0.layers.1.bias": (D,),
        }
        if mode == "divided_space_time":
            norms = ["attentions.0.norm", "attentions.1.norm", "ffns.0.norm"]
            shapes |= {
                f"{p}attentions.0.temporal_fc.weight": (D, D),
                f"{p}attentions.0.temporal_fc.bias": (D,),
            }
        else:
            norms = ["norms.0", "norms.1"]
        for n in norms:
            shapes[f"{p}{n}.weight"] = shapes[f"{p}{n}.bias"] = (D,)
    generator = torch.Generator().manual_seed(0)
    return {k: torch.randn(s, generator=generator) for k, s in shapes.items()}


@pytest.mark.parametrize("mode", MODES)
def test_mmaction_keys_and_shapes(mode: str) -> None:
    sd = mmaction_state_dict(mode)
    assert detect_timesformer_layout(sd) == "mmaction"
    official = mmaction_to_official(sd)
    assert shapes_of(official) == official_shapes(mode)
    assert to_official(sd).keys() == official.keys()
    assert all(any(v is w for w in sd.values()) for v in official.values())  # moved, not altered
    p = "backbone.transformer_layers.layers.1."
    spatial = "attentions.1" if mode == "divided_space_time" else "attentions.0"
    assert official["blocks.1.attn.qkv.weight"] is sd[f"{p}{spatial}.attn.in_proj_weight"]
    assert official["blocks.1.attn.qkv.bias"] is sd[f"{p}{spatial}.attn.in_proj_bias"]
    assert official["blocks.1.mlp.fc2.weight"] is sd[f"{p}ffns.0.layers.1.weight"]
    assert official["head.weight"] is sd["cls_head.fc_cls.weight"]
    if mode == "divided_space_time":
        assert (
            official["blocks.0.temporal_attn.qkv.weight"] is sd[f"{p[:-2]}0.attentions.0.attn.in_proj_weight"]
        )
        assert official["blocks.1.temporal_fc.weight"] is sd[f"{p}attentions.0.temporal_fc.weight"]
        assert official["blocks.1.temporal_norm1.bias"] is sd[f"{p}attentions.0.norm.bias"]
        assert official["blocks.1.norm2.weight"] is sd[f"{p}ffns.0.norm.weight"]
    else:
        assert official["blocks.1.norm1.weight"] is sd[f"{p}norms.0.weight"]
        assert official["blocks.1.norm2.weight"] is sd[f"{p}norms.1.weight"]


def test_mmaction_backbone_only_and_preprocessor_buffers() -> None:
    sd = mmaction_state_dict("divided_space_time", head=False)
    bare = {k.removeprefix("backbone."): v for k, v in sd.items()}
    assert shapes_of(to_official(bare)) == official_shapes("divided_space_time", head=False)
    sd["data_preprocessor.mean"] = torch.zeros(3, 1, 1, 1)
    assert shapes_of(to_official(sd)) == official_shapes("divided_space_time", head=False)


# ---------------------------------------------------------------------------------------------------
# official layout and bad input


def test_official_loses_model_prefix_only() -> None:
    sd = {"model." + k: torch.zeros(s) for k, s in official_shapes("divided_space_time").items()}
    assert detect_timesformer_layout(sd) == "official"
    out = to_official(sd)
    assert shapes_of(out) == official_shapes("divided_space_time")
    assert to_official(out).keys() == out.keys()


def test_unrelated_state_dict_is_a_weights_error() -> None:
    sd = {"conv1.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(5, 8)}
    assert detect_timesformer_layout(sd) is None
    with pytest.raises(WeightsError, match="not a TimeSformer checkpoint"):
        to_official(sd)


def test_unknown_key_in_a_known_layout_is_a_weights_error() -> None:
    sd = mmaction_state_dict("space_only")
    sd["backbone.transformer_layers.layers.0.attentions.0.temporal_fc.weight"] = torch.zeros(D, D)
    with pytest.raises(WeightsError, match="unexpected key"):
        to_official(sd)
    with pytest.raises(WeightsError, match="Hugging Face"):
        hf_to_official(
            {
                "timesformer.encoder.layer.0.attention.attention.qkv.weight": torch.zeros(1),
                "x": torch.zeros(1),
            }
        )
