"""Regenerate the official-TimeSformer equivalence fixtures stored next to this script.

Usage (needs torch and einops; nothing else from the official requirements)::

    python tests/data/timesformer/make_official_fixture.py /path/to/TimeSformer-checkout

The argument is a checkout of https://github.com/facebookresearch/TimeSformer. Its
``timesformer/models/vit.py`` is imported from there at run time; no official code is kept in
this repository. Only imports that ``VisionTransformer`` does not use at run time are stubbed:

* ``timesformer/__init__.py`` and ``timesformer/models/__init__.py`` are bypassed (they pull in
  the whole PySlowFast training stack), by registering bare package modules;
* ``timesformer.models.build`` (fvcore registry) is replaced by a no-op ``MODEL_REGISTRY``;
* ``torch._six`` (gone from modern torch) is provided with ``container_abcs = collections.abc``,
  which is what ``to_2tuple`` used it for.

The official model code and numerics are used unchanged.
"""

from __future__ import annotations

import argparse
import collections.abc
import copy
import importlib
import math
import sys
import types
from functools import partial
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent

SCHEMES = {"divided": "divided_space_time", "joint": "joint_space_time", "space": "space_only"}

CONFIG = {
    "img_size": 32,
    "patch_size": 16,
    "in_chans": 3,
    "num_classes": 5,
    "embed_dim": 48,
    "depth": 2,
    "num_heads": 3,
    "mlp_ratio": 4,
    "qkv_bias": True,
    "num_frames": 4,
    "drop_rate": 0.0,
    "attn_drop_rate": 0.0,
    "drop_path_rate": 0.1,
}

SEED = 0

CFG_YAML = """\
# Fixture checkpoint made with the official TimeSformer VisionTransformer (tiny config).
# The official wrapper hardcodes the ViT-B sizes; FIXTURE lists the tiny sizes used instead.
TRAIN:
  ENABLE: False
DATA:
  NUM_FRAMES: 4
  TRAIN_CROP_SIZE: 32
  TEST_CROP_SIZE: 32
  INPUT_CHANNEL_NUM: [3]
TIMESFORMER:
  ATTENTION_TYPE: '{attention_type}'
  PRETRAINED_MODEL: ''
MODEL:
  MODEL_NAME: TimeSformer
  NUM_CLASSES: 5
  ARCH: vit
FIXTURE:
  IMG_SIZE: 32
  PATCH_SIZE: 16
  EMBED_DIM: 48
  DEPTH: 2
  NUM_HEADS: 3
  MLP_RATIO: 4
  QKV_BIAS: True
  LN_EPS: 1.0e-06
  DROP_PATH_RATE: 0.1
RNG_SEED: 0
"""


def load_official_vit(checkout: Path) -> types.ModuleType:
    """Import ``timesformer.models.vit`` from ``checkout`` with minimal stubs (see module doc)."""
    pkg_root = checkout / "timesformer"
    if not (pkg_root / "models" / "vit.py").is_file():
        raise SystemExit(f"{checkout} is not a TimeSformer checkout (no timesformer/models/vit.py)")

    for name, path in (("timesformer", pkg_root), ("timesformer.models", pkg_root / "models")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(path)]
        sys.modules[name] = pkg

    class _NoOpRegistry:
        def register(self, obj=None):
            return (lambda o: o) if obj is None else obj

    build = types.ModuleType("timesformer.models.build")
    build.MODEL_REGISTRY = _NoOpRegistry()
    sys.modules["timesformer.models.build"] = build

    if "torch._six" not in sys.modules:
        six = types.ModuleType("torch._six")
        six.container_abcs = collections.abc
        sys.modules["torch._six"] = six

    return importlib.import_module("timesformer.models.vit")


def build(vit: types.ModuleType, attention_type: str, **overrides) -> nn.Module:
    kwargs = {**CONFIG, **overrides}
    return vit.VisionTransformer(
        norm_layer=partial(nn.LayerNorm, eps=1e-6), attention_type=attention_type, **kwargs
    )


def randomise_(model: nn.Module, gen: torch.Generator) -> None:
    """Overwrite every parameter deterministically, so no zero/one init can hide a bug.

    Matrices (linear, conv): N(0, 1/fan_in); LayerNorm weights: 1 + N(0, 0.1^2); all biases,
    including LayerNorm biases: N(0, 0.1^2); cls_token, pos_embed, time_embed: N(0, 0.5^2).
    The scales keep activations O(1), so attention logits are far from uniform.
    """
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
            if name in ("cls_token", "pos_embed", "time_embed"):
                p.copy_(0.5 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.1 * noise)
            elif p.dim() >= 2:
                p.copy_(noise / math.sqrt(p[0].numel()))
            else:  # LayerNorm weight
                p.copy_(1.0 + 0.1 * noise)


def reference_logits(model: nn.Module, clip: torch.Tensor) -> torch.Tensor:
    """Logits computed in float64 from the float32 weights, rounded to float32."""
    model64 = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        out64 = model64(clip.double())
        out32 = model(clip)
    torch.testing.assert_close(out32, out64.float(), rtol=1e-4, atol=1e-4)
    return out64.float()


def checkpoint(model: nn.Module, attention_type: str) -> dict:
    # The official wrapper (class TimeSformer / vit_base_patch16_224 in vit.py) holds the
    # VisionTransformer as ``self.model``; PySlowFast saves {"epoch", "model_state", ..., "cfg"}.
    state = {"model." + k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    return {"epoch": 1, "model_state": state, "cfg": CFG_YAML.format(attention_type=attention_type)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("checkout", type=Path, help="path of a facebookresearch/TimeSformer checkout")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: next to script)")
    args = parser.parse_args(argv)

    vit = load_official_vit(args.checkout.resolve())
    args.out.mkdir(parents=True, exist_ok=True)

    gen = torch.Generator().manual_seed(SEED)
    clip = torch.randn(2, 3, 4, 32, 32, generator=gen)
    clip8 = torch.randn(1, 3, 8, 32, 32, generator=gen)

    for short, attention_type in SCHEMES.items():
        torch.manual_seed(SEED)
        model = build(vit, attention_type)
        randomise_(model, torch.Generator().manual_seed(SEED + 1))
        model.eval()

        logits = reference_logits(model, clip)
        # Each clip alone must give its row of the batched result (batch order is kept).
        for i in range(clip.shape[0]):
            torch.testing.assert_close(reference_logits(model, clip[i : i + 1]), logits[i : i + 1])

        ckpt_path = args.out / f"official_{short}.pyth"
        torch.save(checkpoint(model, attention_type), ckpt_path)
        io_path = args.out / f"official_{short}_io.pt"
        torch.save({"input": clip.clone(), "logits": logits}, io_path)

        # Round trip: the saved checkpoint must reproduce the saved logits.
        ckpt = torch.load(ckpt_path, weights_only=True)
        fresh = build(vit, attention_type).eval()
        fresh.load_state_dict({k[len("model.") :]: v for k, v in ckpt["model_state"].items()})
        io = torch.load(io_path, weights_only=True)
        torch.testing.assert_close(reference_logits(fresh, io["input"]), io["logits"], rtol=0, atol=0)
        print(f"{short:8s} {attention_type:20s} logits[0]={[round(x, 4) for x in logits[0].tolist()]}")

        if short == "divided":
            # Model built for 4 frames, run on 8: exercises the nearest-mode time_embed resize.
            logits8 = reference_logits(model, clip8)
            io8_path = args.out / "official_divided_io_8frames.pt"
            torch.save({"input": clip8.clone(), "logits": logits8}, io8_path)
            print(f"divided  8-frame input          logits[0]={[round(x, 4) for x in logits8[0].tolist()]}")


if __name__ == "__main__":
    main()
