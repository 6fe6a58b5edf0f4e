"""DynamoNet of "DynamoNet: Dynamic Action and Motion Network" (Diba et al., ICCV 2019, arXiv 1904.11407),
§3 and Fig. 2 (subsection numbers not checked against the paper; no official code exists).

What the paper fixes (../shared/reference/FAMILIES.md): from a clip of T frames the network predicts T
dynamic motion filters, filter t predicting frame t + 1 from frame t; the filters concatenated over time
are the Dynamic Motion Representation (DMR), joined with the backbone's features for the classifier;
training is multi-task (classification + frame prediction), and the frame prediction alone pretrains the
network on unlabeled video. Here::

    feats   = backbone(clip)                                  (B, F, T', h, w)
    filters = generator(feats, T)                             (B, T, k*k), softmax over the k*k taps
    pred[t] = filters[t] (*) frame[t]     t = 1..T            one k x k kernel per clip and step
    target  = frames 2..T and the future frame (the frame after the clip, the ``future`` stream)
    logits  = fc(dropout([mean(feats), DMR(filters)]))
    loss    = CE(logits, y) + lambda * |pred - target|_1      (task multitask; pretrain: the recon term)

For t < T the target frame is inside the clip the backbone saw: those filters encode observed motion;
only the last one extrapolates. Without a ``future`` frame (a plain clip) the last filter predicts nothing
and frames 2..T are the targets. Reconstruction is on the normalised input frames at the input resolution.

Our choices, where the paper is silent or not confirmed:

* Backbone: the paper uses STC-ResNeXt; ``dynamonet_r3d_18`` uses torchvision's R3D-18 layout
  (:mod:`actionrec.models.resnet3d`), ``dynamonet_small`` the CPU-scale R(2+1)D of ``r2plus1d_small``, so
  ``use_dmr=False, recon=False`` is that baseline's architecture (the ablation the recipes compare with).
* Generator (:class:`~actionrec.layers.motion_filters.MotionFilterGenerator`): spatial mean of the last
  stage, time resampled to T, temporal conv (3) + ReLU, 1 x 1 conv to k^2 taps, softmax; it starts near
  "copy the previous frame". R3D-18 strides time by 8, so its 16 filters come from 2 feature steps.
* Filter size k = 7 (``filter_size``): a kernel covers shifts up to 3 px. On the synthetic benchmark
  (48 px) objects travel 0.3-0.5 x 48 px over 24-32 frames, 0.45-1 px a frame, so 1.35-3 px between the
  frames of an 8 x 3 clip; k = 5 would miss the fastest. Real 112-px video at 1 frame apart is in range.
* Border: replicate padding (content entering the frame is unknown; the edge pixel is the least bad guess).
* Loss: L1 (``loss="l1"``, sharper than L2 for prediction); lambda = 1 in the multitask recipe, untuned
  (at the start CE ~ log K = 2.6 and the L1 ~0.15 on the synthetic clips: classification leads).
* DMR: the T kernels flattened (T k^2 values) then ``Linear -> ReLU`` to ``dmr_dim`` (128 / 64) so that the
  softmax taps (~1/k^2 each) meet the pooled backbone features at a comparable scale; ``dmr_dim=0`` is the
  plain concatenation. The DMR always has ``dmr_steps`` (the card's frames) kernels, generated for it from
  the features, so the classifier takes clips of any length (for T = dmr_steps they are the same kernels).

``forward`` of a tensor clip returns logits (evaluation, the model zoo's tests); of a dict ``{"rgb",
"future"}`` (what the dataset builds from the card's streams) it returns ``{"logits", "losses":
{"recon"}}``, read by :mod:`actionrec.engine.tasks`. A pretrained checkpoint fine-tunes through the
recipe's ``model.weights`` (with ``model.pretrained_classes`` when the class count changes).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import nn

from actionrec.layers.head import ClassifierHead
from actionrec.layers.motion_filters import (
    DynamicMotionRepresentation,
    MotionFilterGenerator,
    Padding,
    apply_motion_filters,
    reconstruction_loss,
)
from actionrec.layers.resnet_blocks import Full3d
from actionrec.models.base import VideoClassifier
from actionrec.models.registry import ModelCard, register_model
from actionrec.models.resnet3d import VideoResNet, VideoResNetConfig, small_config

Loss = Literal["l1", "l2"]
_PAPER = "DynamoNet: Dynamic Action and Motion Network (Diba et al., ICCV 2019)"
_ARXIV = "1904.11407"


class DynamoNet(VideoClassifier):
    """A video backbone, a motion-filter generator, the DMR and a classifier over both (module docstring)."""

    def __init__(
        self,
        backbone: VideoResNet,
        *,
        num_classes: int = 400,
        dmr_steps: int = 16,
        filter_size: int = 7,
        generator_hidden: int = 128,
        dmr_dim: int = 128,
        use_dmr: bool = True,
        recon: bool = True,
        loss: Loss = "l1",
        normalize_filters: bool = True,
        padding: Padding = "replicate",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if loss not in ("l1", "l2"):
            raise ValueError(f"loss must be 'l1' or 'l2', got {loss!r}")
        self.backbone = backbone
        self.generator = MotionFilterGenerator(
            backbone.num_features,
            filter_size=filter_size,
            hidden=generator_hidden,
            normalize=normalize_filters,
        )
        self.dmr = DynamicMotionRepresentation(dmr_steps, filter_size, dim=dmr_dim) if use_dmr else None
        in_features = backbone.num_features + (self.dmr.out_features if self.dmr is not None else 0)
        self.head = ClassifierHead(in_features, num_classes, dropout=dropout)
        self.num_classes, self.num_features = num_classes, in_features
        self.dmr_steps, self.recon, self.loss, self.padding = dmr_steps, recon, loss, padding
        self._init_fc()

    # ------------------------------------------------------------ classification
    def forward_features(self, x: Any) -> torch.Tensor:
        """A clip (B, 3, T, H, W), or a dict with ``rgb``, -> (B, F, T', h, w) backbone features."""
        return self.backbone.forward_features(_rgb(x))

    def forward_head(
        self, x: torch.Tensor, pre_logits: bool = False, *, filters: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Features (B, F, T', h, w) -> logits; ``filters`` (B, dmr_steps, k*k): kernels already made."""
        z = x.flatten(2).mean(-1)  # (B, F, T', h, w) -> (B, F)
        if self.dmr is not None:
            if filters is None or filters.shape[1] != self.dmr_steps:
                filters = self.generator(x, self.dmr_steps)  # (B, dmr_steps, k*k)
            z = torch.cat([z, self.dmr(filters).to(z.dtype)], dim=1)  # (B, F + D)
        return self.head(z, pre_logits=pre_logits)

    def forward(self, x: Any) -> Any:
        if not isinstance(x, Mapping):
            return self.forward_head(self.forward_features(x))
        rgb, future = x["rgb"], x.get("future")
        feats = self.forward_features(rgb)
        filters = self.generator(feats, rgb.shape[2])  # (B, T, k*k)
        logits = self.forward_head(feats, filters=filters)
        losses: dict[str, torch.Tensor] = {}
        if self.recon:
            pred, target = self._predict(rgb, future, filters)
            losses["recon"] = reconstruction_loss(pred, target, loss=self.loss)
        return {"logits": logits, "losses": losses}

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes)
        self._init_fc()

    def _init_fc(self) -> None:
        fc = self.head.fc
        if isinstance(fc, nn.Linear):
            nn.init.normal_(fc.weight, 0.0, 0.01)
            nn.init.zeros_(fc.bias)

    # ------------------------------------------------------------ frame prediction
    def _predict(
        self, rgb: torch.Tensor, future: torch.Tensor | None, filters: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted, real) next frames, (B, 3, S, H, W) each: S = T with a future frame, else T - 1."""
        if future is None:
            if rgb.shape[2] < 2:
                raise ValueError("frame prediction needs two frames, or a future frame after the clip")
            sources, target, filters = rgb[:, :, :-1], rgb[:, :, 1:], filters[:, :-1]  # (B, 3, T-1, H, W)
        else:
            sources = rgb
            target = torch.cat([rgb[:, :, 1:], future[:, :, :1].to(rgb.dtype)], dim=2)  # (B, 3, T, H, W)
        with _float32(rgb.device):  # the error of small differences: float32
            pred = apply_motion_filters(sources.float(), filters.float(), padding=self.padding)
        return pred, target.float()

    def predict_frames(
        self, rgb: torch.Tensor, future: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """For visualisation: ``inputs`` (the frames filtered), ``predicted`` and ``targets`` next frames,
        (B, 3, S, H, W) each, and the ``filters`` used (B, S, k, k); S = T with ``future``, else T - 1."""
        filters = self.generator(self.forward_features(rgb), rgb.shape[2])  # (B, T, k*k)
        pred, target = self._predict(rgb, future, filters)
        s, k = pred.shape[2], self.generator.filter_size
        inputs = rgb[:, :, :s]
        return {
            "inputs": inputs,
            "predicted": pred,
            "targets": target,
            "filters": filters[:, :s].unflatten(-1, (k, k)),
        }


def _float32(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Autocast switched off where it is on (a meta device has none)."""
    if device.type in ("cpu", "cuda") and torch.is_autocast_enabled(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def _rgb(x: Any) -> torch.Tensor:
    return x["rgb"] if isinstance(x, Mapping) else x


_STREAMS: dict[str, Any] = {"streams": ("rgb", "future"), "future_frames": 1}
_SECTION = "§3 (dynamic motion filters, DMR, multi-task loss), Fig. 2"


def _card(notes: str, **kwargs: Any) -> ModelCard:
    return ModelCard(paper=_PAPER, arxiv=_ARXIV, section=_SECTION, **_STREAMS, notes=notes, **kwargs)


_R3D_NOTES = (
    "Backbone R3D-18 (torchvision layout) instead of the paper's STC-ResNeXt; generator, k = 7, DMR "
    "reduction and lambda are ours (module docstring). The paper's numbers (recalled, unconfirmed: K400 "
    "~77.9, self-supervised UCF101 88.1 / HMDB51 59.9) are for other backbones and are not claimed. "
    "Measured: 33.73M params, 40.70 GMACs at 3x16x112x112 (400 classes; R3D-18: 33.37M); the frame "
    "prediction adds 0.03 GMACs."
)
_SMALL_NOTES = (
    "Not in the paper: the r2plus1d_small backbone (widths 16/32/64/128, one block per stage, no temporal "
    "stride) with 8 motion filters of 7 x 7, for CPU-scale experiments on the synthetic benchmark "
    "(8 frames, 48x48). use_dmr=False, recon=False has r2plus1d_small's architecture. "
    "Measured: 1.03M params, 0.22 GMACs at 3x8x48x48 (400 classes; r2plus1d_small: 0.95M); the frame "
    "prediction adds 0.003 GMACs."
)


def _build(
    backbone: VideoResNet, *, num_classes: int, dmr_steps: int, hidden: int, dmr_dim: int, **kwargs: Any
) -> DynamoNet:
    return DynamoNet(
        backbone,
        num_classes=num_classes,
        dmr_steps=dmr_steps,
        generator_hidden=hidden,
        dmr_dim=dmr_dim,
        **kwargs,
    )


@register_model(_card(_R3D_NOTES, num_frames=16, crop_size=112, short_side=128, normalization="kinetics"))
def dynamonet_r3d_18(
    *,
    num_classes: int = 400,
    dropout: float = 0.0,
    use_dmr: bool = True,
    recon: bool = True,
    filter_size: int = 7,
    loss: Loss = "l1",
    dmr_dim: int = 128,
    dmr_steps: int = 16,
    normalize_filters: bool = True,
    padding: Padding = "replicate",
) -> DynamoNet:
    """DynamoNet on an R3D-18 backbone: 16 motion filters of 7 x 7 for 16 x 112 x 112 clips."""
    backbone = VideoResNet(VideoResNetConfig(convs=(Full3d(),) * 4, stem="3d"), num_classes=0)
    return _build(
        backbone,
        num_classes=num_classes,
        dmr_steps=dmr_steps,
        hidden=128,
        dmr_dim=dmr_dim,
        dropout=dropout,
        use_dmr=use_dmr,
        recon=recon,
        filter_size=filter_size,
        loss=loss,
        normalize_filters=normalize_filters,
        padding=padding,
    )


@register_model(_card(_SMALL_NOTES, num_frames=8, crop_size=48, short_side=48, normalization="kinetics"))
def dynamonet_small(
    *,
    num_classes: int = 400,
    dropout: float = 0.0,
    use_dmr: bool = True,
    recon: bool = True,
    filter_size: int = 7,
    loss: Loss = "l1",
    dmr_dim: int = 64,
    dmr_steps: int = 8,
    normalize_filters: bool = True,
    padding: Padding = "replicate",
) -> DynamoNet:
    """DynamoNet on ``r2plus1d_small``'s backbone: 8 motion filters of 7 x 7 for 8 x 48 x 48 clips."""
    backbone = VideoResNet(small_config(), num_classes=0)
    return _build(
        backbone,
        num_classes=num_classes,
        dmr_steps=dmr_steps,
        hidden=64,
        dmr_dim=dmr_dim,
        dropout=dropout,
        use_dmr=use_dmr,
        recon=recon,
        filter_size=filter_size,
        loss=loss,
        normalize_filters=normalize_filters,
        padding=padding,
    )
