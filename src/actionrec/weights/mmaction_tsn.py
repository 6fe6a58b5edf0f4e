"""MMAction2's TSN checkpoints (ResNet backbones) -> :class:`actionrec.models.tsn.TSN` names.

MMAction2 (open-mmlab/mmaction2, ``mmaction/models/backbones/resnet.py``, ``heads/tsn_head.py``) wraps
every convolution of its ResNet with its BN in an mmcv ``ConvModule`` (``.conv`` / ``.bn``) and names
the classifier ``cls_head.fc_cls``; its ``Recognizer2D`` keeps the backbone under ``backbone.``:

=============================================  ==========================================
MMAction2                                       ours (torchvision names under ``backbone.``)
=============================================  ==========================================
``backbone.conv1.conv.weight``                  ``backbone.conv1.weight``
``backbone.conv1.bn.*``                         ``backbone.bn1.*``
``backbone.layerI.J.convN.conv.weight``         ``backbone.layerI.J.convN.weight``
``backbone.layerI.J.convN.bn.*``                ``backbone.layerI.J.bnN.*``
``backbone.layerI.J.downsample.conv.weight``    ``backbone.layerI.J.downsample.0.weight``
``backbone.layerI.J.downsample.bn.*``           ``backbone.layerI.J.downsample.1.*``
``cls_head.fc_cls.{weight,bias}``               ``head.fc.{weight,bias}``
=============================================  ==========================================

Checkpoints made with ``backbone=dict(type='torchvision.resnet50')`` already use torchvision names
(``backbone.conv1.weight``): those keys pass unchanged (``backbone.fc.*`` dropped). The flow models
stack L flow fields as channels ``x1, y1, x2, y2, ...`` (MMAction2's ``FormatShape('NCHW')`` on flow,
and ours), so their ``conv1`` loads as is. ``data_preprocessor.*`` buffers (mean / std) are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from actionrec.errors import WeightsError

_CONV_MODULE = re.compile(r"^backbone\.((?:layer\d+\.\d+\.)?)(conv\d+|downsample)\.(conv|bn)\.(.+)$")
_HEAD = {"cls_head.fc_cls.weight": "head.fc.weight", "cls_head.fc_cls.bias": "head.fc.bias"}
_DROPPED = ("data_preprocessor.", "backbone.fc.")


def is_mmaction_tsn(state_dict: Mapping[str, object]) -> bool:
    """Whether a state dict is an MMAction2 recognizer with a TSN head (``cls_head.fc_cls.*``)."""
    return "cls_head.fc_cls.weight" in state_dict and any(k.startswith("backbone.") for k in state_dict)


def _rename(key: str) -> str:
    if key in _HEAD:
        return _HEAD[key]
    m = _CONV_MODULE.match(key)
    if m is None:
        return key  # torchvision-named backbone keys pass unchanged
    prefix, module, part, rest = m.groups()
    if module == "downsample":
        return f"backbone.{prefix}downsample.{0 if part == 'conv' else 1}.{rest}"
    if part == "conv":
        return f"backbone.{prefix}{module}.{rest}"
    index = module[len("conv") :]
    return f"backbone.{prefix}bn{index}.{rest}"  # conv1.bn -> bn1 (stem and blocks alike)


def convert_mmaction_tsn(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an MMAction2 TSN (ResNet) state dict to ours; keys of other heads are an error."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith(_DROPPED):
            continue
        if not key.startswith(("backbone.", "cls_head.")):
            raise WeightsError(f"MMAction2 TSN checkpoint: unexpected key {key!r}")
        if key.startswith("cls_head.") and key not in _HEAD:
            raise WeightsError(
                f"MMAction2 TSN checkpoint: unknown head key {key!r} (a TSNHead has fc_cls only)"
            )
        out[_rename(key)] = value
    return out
