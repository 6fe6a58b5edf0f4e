"""``actionrec convert``: turn a public checkpoint into our safetensors file with a JSON card."""

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
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "convert",
        help="convert a public checkpoint to actionrec safetensors",
        description="Read a DeepMind I3D pickle / TF-named .npz, a pytorch-i3d .pt or a torchvision .pth, "
        "map it onto a registered model and write safetensors with a card (model, classes, labels, "
        "preprocessing). The model and class count are inferred where the checkpoint tells them.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", type=Path, metavar="SRC", help="checkpoint to read")
    p.add_argument("dst", type=Path, metavar="DST", help="safetensors file to write")
    p.add_argument("--model", help="registered model name (inferred for I3D checkpoints and our own files)")
    p.add_argument("--labels", type=Path, help="class names, one per line, stored in the card")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of a sentence")
    return p


def _infer_model(src: Path) -> str:
    from actionrec.weights.convert import detect_layout, strip_wrapper_prefixes, to_tensor_dict
    from actionrec.weights.files import read_raw

    raw, card = read_raw(src)
    if card and card.get("model"):
        return str(card["model"])
    sd = strip_wrapper_prefixes(to_tensor_dict(raw, name=str(src)))
    layout = detect_layout(sd)
    if layout == "state-dict":
        raise ActionrecError(f"{src}: cannot tell which model this checkpoint is for; pass --model NAME")
    stems = [v for k, v in sd.items() if "Conv3d_1a_7x7" in k and v.ndim == 5]
    flow = bool(stems) and 2 in (stems[0].shape[1], stems[0].shape[3])  # torch (O,I,..) or TF (..,I,O)
    return "i3d_inception_v1_flow" if flow else "i3d_inception_v1"


def _build(name: str, src: Path) -> Any:
    """The model with the checkpoint's class count, loaded strictly."""
    from actionrec.models.registry import create_model
    from actionrec.weights import load_weights, read_state_dict
    from actionrec.weights.convert import match_state_dict

    model = create_model(name)
    sd, _, _ = read_state_dict(model, src)
    classes = match_state_dict(model, sd).classes
    if classes is not None:
        model = create_model(name, num_classes=classes[0])
    result = load_weights(model, src, strict=True)
    return model, result


def _labels(path: Path | None, card: dict[str, Any] | None) -> list[str] | None:
    if path is None:
        return (card or {}).get("labels")
    if not path.is_file():
        raise ActionrecError(f"{path}: labels file not found")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run(args: argparse.Namespace) -> int:
    from actionrec.models.complexity import count_params
    from actionrec.weights import save_weights

    if args.src.resolve() == args.dst.resolve():
        raise ActionrecError(f"{args.dst}: destination is the source file")
    name = args.model or _infer_model(args.src)
    model, result = _build(name, args.src)
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
