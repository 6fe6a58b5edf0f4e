"""``actionrec test``: multi-view evaluation of trained weights on a config's test split."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from actionrec.engine.fast import PRECISIONS

EXAMPLE = """example:
  actionrec test --config r2plus1d-small_8x3_synthetic-rgb --weights runs/r2p1d/model.safetensors \\
      --out runs/r2p1d/test --clips 10 --crops 3 --data.root=data/synthetic
"""
_OVERRIDE = re.compile(r"^--?[A-Za-z_]\w*\.[\w.]+=")


def accept_overrides(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Let ``parser`` collect ``--section.key=value`` arguments into ``args.overrides`` (a list)."""
    original = parser.parse_known_args

    def parse_known_args(args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        ns, extras = original(args, namespace)
        ns.overrides = [*getattr(ns, "overrides", []), *(a for a in extras if _OVERRIDE.match(a))]
        return ns, [a for a in extras if not _OVERRIDE.match(a)]

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]
    parser.set_defaults(overrides=[])
    return parser


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "test",
        help="evaluate weights with several clips x crops per video",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Video-level top-1 / top-5 / mean class accuracy on the test split of a config, "
        "averaging the scores of N clips x {1, 3, 10} crops per video. Writes results.json, per-class and "
        "confusion CSV/PNG and predictions.csv to --out. Override config keys with --section.key=value.",
    )
    p.add_argument("--config", required=True, help="recipe YAML file or packaged recipe name")
    p.add_argument(
        "--weights", required=True, help="model.safetensors, a training checkpoint (.pt) or public weights"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--clips", type=int, default=1, help="temporal clips per video (default 1)")
    p.add_argument(
        "--crops", type=int, choices=(1, 3, 10), default=1, help="spatial crops per clip (default 1)"
    )
    p.add_argument(
        "--aggregate",
        choices=("softmax", "logits"),
        default="softmax",
        help="average softmax scores (default) or logits over views",
    )
    p.add_argument(
        "--precision", choices=PRECISIONS, default="auto", help="inference precision (default auto)"
    )
    p.add_argument("--batch-size", type=int, default=1, help="videos per batch (default 1)")
    p.add_argument("--json", action="store_true", help="print results.json to stdout")
    return accept_overrides(p)


def run(args: argparse.Namespace) -> int:
    from actionrec.engine.config import load_config, save_config
    from actionrec.engine.evaluate import build_test_dataset, evaluate, model_from_weights
    from actionrec.errors import ActionrecError
    from actionrec.models.registry import get_card

    if args.clips < 1 or args.batch_size < 1:
        raise ActionrecError("--clips and --batch-size must be >= 1")
    cfg = load_config(args.config, overrides=args.overrides)
    dataset = build_test_dataset(cfg, get_card(cfg.model.name), num_clips=args.clips, num_crops=args.crops)
    classes = [str(c) for c in getattr(dataset, "classes", [])]
    model, labels = model_from_weights(
        cfg.model.name, args.weights, num_classes=cfg.model.num_classes or len(classes), **cfg.model.overrides
    )
    if labels and classes and labels != classes:
        print("actionrec test: warning: the weights' class names differ from the dataset's", file=sys.stderr)
    out = Path(args.out)
    result = evaluate(
        model,
        dataset,
        num_clips=args.clips,
        num_crops=args.crops,
        aggregate=args.aggregate,
        precision=args.precision,
        batch_size=args.batch_size,
        num_workers=cfg.train.num_workers,
        out_dir=out,
    )
    save_config(cfg, out / "config.yaml")
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(
            f"top-1 {result.top1:.2%}  top-5 {result.top5:.2%}  mean class {result.mean_class_accuracy:.2%}  "
            f"({len(result.labels)} videos x {result.num_views} views, {result.precision}, "
            f"{result.seconds:.1f} s)"
        )
        print(f"results in {out}")
    bad = len(getattr(dataset, "failures", {})) + len(getattr(dataset, "missing", []))
    if bad:  # each was reported on stderr as it was met; the exit code tells scripts
        total = getattr(dataset, "total", bad + len(result.labels))
        print(
            f"actionrec test: {bad} of {total} videos missing or unreadable; left out of the results",
            file=sys.stderr,
        )
        return 2
    return 0
