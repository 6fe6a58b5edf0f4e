"""TAda2D networks of "TAda! Temporally-Adaptive Convolutions for Video Understanding"
(Huang et al., ICLR 2022, arXiv 2110.06178), §3.3 and Table 1.

TAda2D is a ResNet-50 applied frame by frame whose every 3x3 convolution is a
:class:`~actionrec.layers.tadaconv.TAdaConv2d` (``cal_dim="cin"``, generator reduction 4, temporal
kernels [3, 3]). Nothing is ever downsampled in time. The layout follows the official code
(alibaba-mmai-research/TAdaConv: ``configs/pool/backbone/tada2d.yaml``, ``Base2DStem``,
``ResNet3D``, ``TAda2DBlock``), which differs from a torchvision ResNet in one place: the stem is a
1x7x7 conv (stride 1,2,2) + BN + ReLU with NO max pool; the first block of res2 downsamples instead
(stride 2 in its 3x3 conv and in its 1x1 shortcut, as every stage's first block does). For 8x224x224:
stem -> 8x112x112, res2 -> 8x56x56, res3 -> 8x28x28, res4 -> 8x14x14, res5 -> 8x7x7.

A TAda bottleneck (official ``TAda2DBlock``)::

    a = ReLU(BN(conv1x1(x)))
    y = TAdaConv2d(a)                                      3x3, stride of the block
    b = ReLU(BN(y) + BN0(AvgPool3d([3, 1, 1], stride 1, padding [1, 0, 0])(y)))
    out = ReLU(BN(conv1x1(b)) + shortcut(x))              shortcut: 1x1 conv + BN where the shape changes

``BN0`` (our ``pool_bn``) starts with weight and bias at zero and the generator's last conv at zero,
so a fresh TAda2D computes exactly the plain per-frame ResNet with the same weights. The official
init also leaves the block's last BN at one (``zero_init_last_bn=False``); convs get
``kaiming_normal_(fan_out)``, the classifier N(0, 0.01). Head: global average pool over (T, H, W),
dropout 0.5 (the K400 config), linear; the official head applies a softmax at eval time, ours returns
logits.

Ablation switches (passed through every builder): ``calibrate`` (False: plain per-frame 3x3 convs),
``global_context`` (the generator's ``g`` term), ``avgpool_branch`` (the BN0(avgpool) term) and
``temporal_attention`` (window k of our :class:`~actionrec.layers.tadaconv.PixelTemporalAttention`
before every TAda conv; not in the paper). ``dynconv_*`` are the TAda models with
``temporal_attention=1``: our extension, not a published model. ``consistency_parts`` (>= 2) adds
our clip-consistency loss while training (:mod:`actionrec.layers.consistency`; weight in the recipe's
``task.loss_weights.consistency``); not in the paper.

Official checkpoints (``backbone.conv1.a``, ``backbone.conv{2-5}.res_{k}.conv_branch.*``,
``.short_cut(_bn)``, ``head.out``) load through :meth:`TAda2D.convert_state_dict`.
Cost: the paper's Kinetics table gives TAda2D-R50 (8 frames) about 43 GFLOPs a view (our project notes
record it, marked unverified); we measure 43.13 GMACs at 8 x 256^2, the test crop the official
configs use, and 27.49 M parameters (the official code's model, key for key: see the tests).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

from actionrec.layers.consistency import clip_consistency
from actionrec.layers.head import ClassifierHead
from actionrec.layers.tadaconv import TAdaConv2d, TemporalCalibration
from actionrec.models.base import VideoClassifier
from actionrec.models.registry import ModelCard, register_model

R50_WIDTHS = (64, 128, 256, 512)  # inner width of res2..res5 (outputs are 4x)
R50_DEPTHS = (3, 4, 6, 3)
SMALL_WIDTHS = (16, 32, 64, 128)
SMALL_DEPTHS = (1, 1, 1, 1)
EXPANSION = 4


class TAdaBottleneck(nn.Module):
    """ResNet bottleneck with a TAdaConv2d 3x3 and the average-pooling branch: (B, C_in, T, H, W) ->
    (B, 4 * width, T, H / stride, W / stride)."""

    def __init__(
        self,
        in_channels: int,
        width: int,
        *,
        stride: int = 1,
        calibrate: bool = True,
        global_context: bool = True,
        temporal_attention: int = 0,
        avgpool_branch: bool = True,
        reduction: int = 4,
        kernel_t: int = 3,
    ) -> None:
        super().__init__()
        out_channels = width * EXPANSION
        self.conv1 = nn.Conv3d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.conv2 = TAdaConv2d(
            width,
            width,
            3,
            stride=stride,
            padding=1,
            cal_dim="cin",
            reduction=reduction,
            kernel_t=kernel_t,
            global_context=global_context,
            calibrate=calibrate,
            temporal_attention=temporal_attention,
        )
        self.bn2 = nn.BatchNorm3d(width)
        self.pool = nn.AvgPool3d((3, 1, 1), stride=1, padding=(1, 0, 0)) if avgpool_branch else None
        self.pool_bn = nn.BatchNorm3d(width) if avgpool_branch else None
        self.conv3 = nn.Conv3d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, 1, stride=(1, stride, stride), bias=False),
                nn.BatchNorm3d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        a = self.relu(self.bn1(self.conv1(x)))  # (B, width, T, H, W)
        y = self.conv2(a)  # (B, width, T, H / s, W / s)
        b = self.bn2(y)
        if self.pool is not None and self.pool_bn is not None:
            b = b + self.pool_bn(self.pool(y))  # temporal [3, 1, 1] average of the TAda output
        b = self.relu(b)
        return self.relu(self.bn3(self.conv3(b)) + shortcut)


class TAda2D(VideoClassifier):
    """TAda2D ResNet (bottleneck) of §3.3: (B, 3, T, H, W) -> (B, num_classes), T kept throughout."""

    def __init__(
        self,
        *,
        num_classes: int = 400,
        widths: Sequence[int] = R50_WIDTHS,
        depths: Sequence[int] = R50_DEPTHS,
        stem_channels: int | None = None,
        in_channels: int = 3,
        dropout: float = 0.5,
        calibrate: bool = True,
        global_context: bool = True,
        temporal_attention: int = 0,
        avgpool_branch: bool = True,
        zero_init_last_bn: bool = False,
        consistency_parts: int = 0,
    ) -> None:
        super().__init__()
        if consistency_parts == 1 or consistency_parts < 0:
            raise ValueError(f"consistency_parts must be 0 (off) or >= 2, got {consistency_parts}")
        self.num_classes = num_classes
        self.consistency_parts = consistency_parts
        stem_channels = stem_channels or widths[0]
        self.stem = nn.Sequential(  # official Base2DStem: no max pool
            nn.Conv3d(in_channels, stem_channels, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(stem_channels),
            nn.ReLU(inplace=True),
        )
        flags = {
            "calibrate": calibrate,
            "global_context": global_context,
            "temporal_attention": temporal_attention,
            "avgpool_branch": avgpool_branch,
        }
        channels = stem_channels
        for i, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            blocks = []
            for j in range(depth):
                # every stage downsamples space in its first block, res2 included (it replaces the max pool)
                blocks.append(TAdaBottleneck(channels, width, stride=2 if j == 0 else 1, **flags))
                channels = width * EXPANSION
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_features = channels
        self.head = ClassifierHead(channels, num_classes, dropout=dropout)
        self._init_weights(zero_init_last_bn)

    def _init_weights(self, zero_init_last_bn: bool) -> None:
        """The official ``_init_convnet_weights``; the zero-started BN0 and generator ``b`` stay at zero."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, TemporalCalibration):
                m.reset_parameters()
            elif isinstance(m, TAdaBottleneck):
                if m.pool_bn is not None:
                    nn.init.zeros_(m.pool_bn.weight)
                if zero_init_last_bn:
                    nn.init.zeros_(m.bn3.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 3, T, 224, 224) -> (B, 64, T, 112, 112)
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)  # res2..res5: /2 in space each -> (B, 2048, T, 7, 7)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, object]:
        """Logits; ``{"logits", "losses": {"consistency"}}`` while training with ``consistency_parts``."""
        features = self.forward_features(x)  # (B, C, T, h, w)
        logits = self.forward_head(features)
        if not (self.training and self.consistency_parts):
            return logits
        loss = clip_consistency(
            features, lambda part: self.head.fc(self.head.pool(part)), parts=self.consistency_parts
        )
        return {"logits": logits, "losses": {"consistency": loss}}

    def convert_state_dict(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The official layout (``backbone.*`` / ``head.out.*``) or a torchvision ResNet -> ours; our own
        layout passes unchanged."""
        if "conv1.weight" in sd and "layer1.0.conv1.weight" in sd:
            return self._from_torchvision(sd)
        if not any(k.startswith("backbone.") for k in sd):
            return self._fill_offset_bias(sd)
        out: dict[str, torch.Tensor] = {}
        for key, value in sd.items():
            new = _official_key(key)
            if new.endswith("conv2.weight") and value.ndim == 6:
                value = value.flatten(0, 2)  # (1, 1, C_out, C_in, k, k) -> (C_out, C_in, k, k)
            elif new.endswith("conv2.bias") and value.ndim == 3:
                value = value.flatten()  # (1, 1, C_out) -> (C_out,)
            out[new] = value
        return out

    def _fill_offset_bias(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weights saved before the attention had its bias per offset: those biases start at zero."""
        own = self.state_dict()
        biases = [k for k in own if k.endswith("attn.offset_bias") and k not in sd]
        missing = {k: torch.zeros_like(own[k]) for k in biases}
        has_attention = any(k.endswith("attn.gamma") for k in sd)
        return {**sd, **missing} if missing and has_attention else sd

    def _from_torchvision(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """An ImageNet torchvision ResNet's state dict (the paper's initialisation, §4): every 2D
        kernel becomes the per-frame kernel (a time axis of 1 added where ours is 3D); the parts the
        image network lacks (calibration generators, BN0 of the pooled branch, attention) keep this
        model's fresh values, so the calibration starts at identity and the network computes the image
        ResNet on every frame; a classifier of another size keeps this model's."""
        own = self.state_dict()
        out = dict(own)
        for key, value in sd.items():
            new = _TORCHVISION.get(key, "stem.1." + key[4:] if key.startswith("bn1.") else key)
            if new not in own:
                out[new] = value  # reported as unexpected by the loader
                continue
            if value.ndim == 4 and own[new].ndim == 5:
                value = value.unsqueeze(2)  # (C_out, C_in, k, k) -> (C_out, C_in, 1, k, k)
            if value.shape == own[new].shape:
                out[new] = value
        return out


_TORCHVISION = {"conv1.weight": "stem.0.weight", "fc.weight": "head.fc.weight", "fc.bias": "head.fc.bias"}
# official TAda2DBlock child -> ours (its ``b_rf`` generator is handled separately: ours is ``conv2.rf``)
_BRANCH = {
    "a": "conv1",
    "a_bn": "bn1",
    "b": "conv2",
    "b_bn": "bn2",
    "b_avgpool_bn": "pool_bn",
    "c": "conv3",
    "c_bn": "bn3",
}
_BLOCK = re.compile(r"backbone\.conv([2-5])\.res_(\d+)\.(.+)")


def _official_key(key: str) -> str:
    """One official key -> ours; keys we do not know are returned unchanged (reported as unexpected)."""
    if key.startswith("backbone.conv1.a."):
        return "stem.0." + key.removeprefix("backbone.conv1.a.")
    if key.startswith("backbone.conv1.a_bn."):
        return "stem.1." + key.removeprefix("backbone.conv1.a_bn.")
    if key.startswith("head.out."):
        return "head.fc." + key.removeprefix("head.out.")
    m = _BLOCK.fullmatch(key)
    if m is None:
        return key
    prefix = f"layer{int(m[1]) - 1}.{int(m[2]) - 1}."
    rest = m[3]
    if rest.startswith("conv_branch.b_rf."):
        return prefix + "conv2.rf." + rest.removeprefix("conv_branch.b_rf.")
    if rest.startswith("conv_branch."):
        module, _, param = rest.removeprefix("conv_branch.").rpartition(".")
        return f"{prefix}{_BRANCH[module]}.{param}" if module in _BRANCH else key
    for name, index in (("short_cut_bn.", "1"), ("short_cut.", "0")):
        if rest.startswith(name):
            return prefix + f"downsample.{index}." + rest.removeprefix(name)
    return key


def _card(notes: str, *, crop: int = 224, short_side: int = 256, gmacs: float | None = None) -> ModelCard:
    return ModelCard(
        paper="TAda! Temporally-Adaptive Convolutions for Video Understanding",
        arxiv="2110.06178",
        section="§3.3, Table 1",
        num_frames=8,
        frame_interval=8,
        crop_size=crop,
        short_side=short_side,
        normalization="imagenet",
        published_gmacs=gmacs,  # the K400 table's "43 GFLOPs" a view (multiply-adds), at the 256 test crop
        published_input="3x8x256x256" if crop == 224 else "",
        published_top1=76.7 if crop == 224 else None,
        published_dataset="Kinetics-400" if crop == 224 else "",
        notes=notes,
    )


def _build(
    *,
    num_classes: int,
    widths: Sequence[int],
    depths: Sequence[int],
    temporal_attention: int = 0,
    **kw: object,
) -> TAda2D:
    return TAda2D(
        num_classes=num_classes,
        widths=widths,
        depths=depths,
        temporal_attention=temporal_attention,
        **kw,  # type: ignore[arg-type]
    )


_R50_NOTE = "Official K400 8x8 checkpoint: 76.7 top-1, 10x3 views (official MODEL_ZOO; test crop 256)."


_R50_MEASURED = "27.49M params, 33.02 GMACs at 3x8x224x224, 43.13 GMACs at 3x8x256x256 (the test crop)"


@register_model(_card(f"TAda2D-R50. {_R50_NOTE} Measured: {_R50_MEASURED}.", gmacs=43.0))
def tada_r50(*, num_classes: int = 400, **kw: object) -> TAda2D:
    return _build(num_classes=num_classes, widths=R50_WIDTHS, depths=R50_DEPTHS, **kw)


@register_model(
    _card(
        "TAda2D-R50 with our per-pixel temporal attention (window 1) before every TAdaConv; not a "
        "published model (published numbers are TAda2D's). "
        "Measured: 28.12M params, 34.46 GMACs at 3x8x224x224."
    )
)
def dynconv_r50(*, num_classes: int = 400, temporal_attention: int = 1, **kw: object) -> TAda2D:
    return _build(
        num_classes=num_classes,
        widths=R50_WIDTHS,
        depths=R50_DEPTHS,
        temporal_attention=temporal_attention,
        **kw,
    )


@register_model(_card("Narrow CPU TAda2D (widths 16-128, 1 block a stage), 8x48x48.", crop=48, short_side=56))
def tada_small(*, num_classes: int = 400, **kw: object) -> TAda2D:
    return _build(num_classes=num_classes, widths=SMALL_WIDTHS, depths=SMALL_DEPTHS, **kw)


@register_model(_card("tada_small with our per-pixel temporal attention (window 1).", crop=48, short_side=56))
def dynconv_small(*, num_classes: int = 400, temporal_attention: int = 1, **kw: object) -> TAda2D:
    return _build(
        num_classes=num_classes,
        widths=SMALL_WIDTHS,
        depths=SMALL_DEPTHS,
        temporal_attention=temporal_attention,
        **kw,
    )
