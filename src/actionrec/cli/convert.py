"""``actionrec convert``: turn a public checkpoint into our safetensors file with a JSON card.

Which model a checkpoint is for, and its class count, are told by :mod:`actionrec.weights.sniff`; this
module parses the arguments, reads the labels file and prints a summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from actionrec.errors import ActionrecError, WeightsError

EXAMPLE = """example:
  actionrec convert i3d_rgb_kinetics400_deepmind.pkl i3d_rgb.safetensors --labels kinetics400.txt
  actionrec convert rgb_imagenet.pt i3d_imagenet.safetensors            (pytorch-i3d layout)
  actionrec convert r2plus1d_18-91a641e6.pth r2p1d.safetensors --model r2plus1d_18
  actionrec convert TimeSformer_divST_8x32_224_K400.pyth timesformer.safetensors --labels kinetics400.txt
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "convert",
        help="convert a public checkpoint to actionrec safetensors",
        description="Read a DeepMind I3D pickle / TF-named .npz, a pytorch-i3d .pt, a torchvision .pth or a "
        "TimeSformer checkpoint (official .pyth, Hugging Face, MMAction2), "
        "map it onto a registered model and write safetensors with a card (model, classes, labels, "
        "preprocessing). The model and class count are inferred where the checkpoint tells them.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", type=Path, metavar="SRC", help="checkpoint to read")
    p.add_argument("dst", type=Path, metavar="DST", help="safetensors file to write")
    p.add_argument(
        "--model", help="registered model name (inferred for I3D / TimeSformer checkpoints and our own files)"
    )
    p.add_argument("--labels", type=Path, help="class names, one per line, stored in the card")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of a sentence")
    return p


def _labels(path: Path | None, card: dict[str, Any] | None) -> list[str] | None:
    if path is None:
        return (card or {}).get("labels")
    if not path.is_file():
        raise ActionrecError(f"{path}: labels file not found")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run(args: argparse.Namespace) -> int:
    from actionrec.models.complexity import count_params
    from actionrec.weights import save_weights
    from actionrec.weights.sniff import infer_model, model_for_checkpoint

    if args.src.resolve() == args.dst.resolve():
        raise ActionrecError(f"{args.dst}: destination is the source file")
    name, overrides = (args.model, {}) if args.model else infer_model(args.src)
    model, result = model_for_checkpoint(name, args.src, overrides)
    labels = _labels(args.labels, result.card)
    if labels is not None and len(labels) != model.num_classes:
        raise WeightsError(
            f"{args.labels}: {len(labels)} labels for a checkpoint with {model.num_classes} classes"
        )
    save_weights(
        model, args.dst, labels=labels, extra={"source": args.src.name, "source_layout": result.layout}
    )
    summary = {
        "dst": str(args.dst),
        "model": name,
        "num_classes": model.num_classes,
        "params": count_params(model),
        "layout": result.layout,
        "labels": labels is not None,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"wrote {args.dst}: {name}, {model.num_classes} classes, "
            f"{summary['params'] / 1e6:.2f}M parameters (from a {result.layout} checkpoint)"
        )
    return 0
