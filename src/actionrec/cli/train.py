"""``actionrec train``: train a model from a YAML recipe, with ``--section.key=value`` overrides."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from pathlib import Path

from actionrec.engine.config import Config, load_config, packaged_recipes

EXAMPLE = """examples:
  actionrec train --config r2plus1d-small_8x3_synthetic-rgb --out runs/r2p1d
  actionrec train --config my.yaml --out runs/x --optim.lr=0.05 --train.epochs=30
  actionrec train --out runs/x --resume            # continue a stopped run (its config.yaml)
  torchrun --nproc_per_node=4 -m actionrec train --config FILE --out DIR   # data parallel
"""


def _override_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group(
        "config overrides", "VALUE is parsed as YAML; unset keys keep the recipe's value"
    )
    for section in dataclasses.fields(Config):
        cls = typing.get_type_hints(Config)[section.name]
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            group.add_argument(
                f"--{section.name}.{f.name}",
                dest=f"ov:{section.name}.{f.name}",
                metavar="VALUE",
                default=None,
                help=f"(default {default!r})",
            )
    group.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any dotted key, e.g. --set model.overrides.width=32",
    )


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train a model from a recipe",
        description=__doc__,
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        metavar="FILE|NAME",
        help=f"a YAML file or a packaged recipe: {', '.join(packaged_recipes())}",
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for checkpoints and logs")
    p.add_argument("--resume", action="store_true", help="continue from DIR/last.pt")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    _override_options(p)
    return p


def _overrides(args: argparse.Namespace) -> list[str]:
    items = [f"--{k[3:]}={v}" for k, v in vars(args).items() if k.startswith("ov:") and v is not None]
    return items + [f"--{item}" for item in args.set]


def run(args: argparse.Namespace) -> int:
    from actionrec.engine.train import train
    from actionrec.errors import ConfigError

    source = args.config
    if source is None:
        if not (args.resume and (args.out / "config.yaml").is_file()):
            raise ConfigError("--config: required (only --resume of an existing run may omit it)")
        source = args.out / "config.yaml"
    cfg = load_config(source, overrides=_overrides(args))
    result = train(cfg, out_dir=args.out, resume=args.resume)
    summary = {
        "out_dir": str(result.out_dir),
        "epochs_completed": result.epochs_completed,
        "global_step": result.global_step,
        "best_top1": result.best_top1,
        "final_top1": result.final_top1,
        "weights": str(result.weights) if result.weights else None,
        "interrupted": result.interrupted,
    }
    if args.json:
        print(json.dumps(summary))
    elif result.weights is not None:
        top1 = "n/a" if result.final_top1 is None else f"{result.final_top1:.2f} %"
        print(f"trained {result.epochs_completed} epochs; val top-1 {top1}; weights {result.weights}")
    if result.interrupted:
        print("training interrupted; continue with --resume", file=sys.stderr)
        return 130
    return 0
