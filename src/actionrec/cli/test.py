"""``actionrec test``: multi-view evaluation of trained weights on a config's test split.

Given several weights files it also reports their late fusion (see
:func:`actionrec.engine.fusion.fuse_results`): the weighted average of each video's softmax scores.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from actionrec.engine.fast import PRECISIONS
from actionrec.errors import ActionrecError

EXAMPLE = """example:
  actionrec test --config r2plus1d-small_8x3_synthetic-rgb --weights runs/r2p1d/model.safetensors \\
      --out runs/r2p1d/test --clips 10 --crops 3 --data.root=data/synthetic

late fusion of an RGB and a flow model, weighted 1 : 1.5 as in the two-stream and TSN papers:
  actionrec test --config r2plus1d-18_16x1_ucf101-split1-rgb \\
      --weights rgb/model.safetensors flow/model.safetensors \\
      --fusion-weights 1 1.5 --out runs/fusion --clips 25 --crops 10
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
        "confusion CSV/PNG and predictions.csv to --out. Override config keys with --section.key=value. "
        "With several --weights, each model is tested with its own preprocessing (its model card) on the "
        "same videos, and their late fusion is reported too: the weighted average of the per-video "
        "softmax scores. Videos that any model could not read are left out of every score. The fusion's "
        "files go to --out, model i's to --out/model_i.",
    )
    p.add_argument("--config", required=True, help="recipe YAML file or packaged recipe name")
    p.add_argument(
        "--weights",
        required=True,
        nargs="+",
        help="model.safetensors, a training checkpoint (.pt) or public weights; several are fused",
    )
    p.add_argument(
        "--fusion-weights",
        type=float,
        nargs="+",
        metavar="W",
        help="one weight > 0 per --weights file for the fusion, e.g. 1 1.5 (default: equal weights)",
    )
    p.add_argument(
        "--fusion",
        choices=("average", "svm", "logistic"),
        default="average",
        help="how several --weights are fused: weighted average of softmax scores (default), or a linear "
        "SVM / logistic regression on their L2-normalised scores fitted on the training videos' scores",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--clips", type=int, default=1, help="temporal clips per video (default 1)")
    p.add_argument(
        "--crops", type=int, choices=(1, 3, 10), default=1, help="spatial crops per clip (default 1)"
    )
    p.add_argument(
        "--segments",
        type=int,
        help="segments per clip for segment-sampled models such as TSN (the paper tests on 25: --segments 25 "
        "--crops 10); default: what the weights record",
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
    from actionrec.engine.fusion import common_videos

    if args.clips < 1 or args.batch_size < 1:
        raise ActionrecError("--clips and --batch-size must be >= 1")
    if args.fusion_weights is not None and len(args.fusion_weights) != len(args.weights):
        raise ActionrecError(
            f"--fusion-weights: {len(args.fusion_weights)} given for {len(args.weights)} --weights files"
        )
    if args.fusion != "average" and len(args.weights) < 2:
        raise ActionrecError(f"--fusion {args.fusion} fuses two or more --weights files; one was given")
    if args.fusion != "average" and args.fusion_weights is not None:
        raise ActionrecError("--fusion-weights weigh the average; a fitted --fusion learns its own")
    if any(not w > 0 for w in args.fusion_weights or []):  # checked before the slow part; also NaN
        raise ActionrecError(f"--fusion-weights must be > 0, got {' '.join(map(str, args.fusion_weights))}")
    if len(args.weights) > 1 and args.aggregate != "softmax":
        raise ActionrecError("fusion averages softmax scores; use --aggregate softmax with several --weights")
    cfg = load_config(args.config, overrides=args.overrides)
    prepared = [_prepare(cfg, args, w) for w in args.weights]
    known = [labels for _, _, labels in prepared if labels]
    if any(labels != known[0] for labels in known):
        raise ActionrecError("the --weights files' class lists differ; only models of the same classes fuse")
    results = [_evaluate(cfg, args, dataset, model) for dataset, model, _ in prepared]
    if len(results) > 1:
        results = common_videos(results)
    fused = _fuse(cfg, args, prepared, results) if len(results) > 1 else None
    out = Path(args.out)
    _save(results, fused, out)
    save_config(cfg, out / "config.yaml")
    _report(args, results, fused, out)
    return _report_missing(prepared[0][0], scored=len(results[0].labels))


def _fuse(cfg: Any, args: argparse.Namespace, prepared: list[Any], results: list[Any]) -> Any:
    """The fusion of the models' results: averaged, or by a classifier fitted on the training videos."""
    from actionrec.engine.evaluate import build_test_dataset
    from actionrec.engine.fusion import fuse_by_classifier, fuse_results

    if args.fusion == "average":
        return fuse_results(results, weights=args.fusion_weights)
    train = []
    for weights, (_, model, _) in zip(args.weights, prepared):
        views = {"num_clips": args.clips, "num_crops": args.crops}
        data = build_test_dataset(
            cfg, model.card, **views, weights=weights, subset="train", num_segments=args.segments
        )
        train.append(_evaluate(cfg, args, data, model))
    return fuse_by_classifier(train, results, loss=args.fusion)


def _prepare(cfg: Any, args: argparse.Namespace, weights: str) -> tuple[Any, Any, list[str] | None]:
    """(test dataset, model, class names the weights record) for one weights file.

    The model is the one the weights' card names (else the config's) and the test data is built with
    the preprocessing the weights record (else the config's over that model's card), so each model of
    a fusion gets its own; the config's model overrides apply to the config's model only.
    """
    from actionrec.engine.evaluate import build_test_dataset, model_from_weights
    from actionrec.models.registry import get_card

    name = cfg.model.name
    if weights.endswith(".safetensors") and Path(weights).is_file():
        from actionrec.weights import read_card

        name = read_card(weights).get("model") or name
    card = get_card(name)
    dataset = build_test_dataset(
        cfg, card, num_clips=args.clips, num_crops=args.crops, weights=weights, num_segments=args.segments
    )
    classes = [str(c) for c in getattr(dataset, "classes", [])]
    overrides = cfg.model.overrides if name == cfg.model.name else {}
    model, labels = model_from_weights(
        name, weights, num_classes=cfg.model.num_classes or len(classes), **overrides
    )
    if labels and classes and labels != classes:
        print("actionrec test: warning: the weights' class names differ from the dataset's", file=sys.stderr)
    return dataset, model, labels


def _evaluate(cfg: Any, args: argparse.Namespace, dataset: Any, model: Any) -> Any:
    """One model's multi-view result on its test dataset."""
    from actionrec.engine.evaluate import evaluate

    return evaluate(
        model,
        dataset,
        num_clips=args.clips,
        num_crops=args.crops,
        aggregate=args.aggregate,
        precision=args.precision,
        batch_size=args.batch_size,
        num_workers=cfg.train.num_workers,
    )


def _save(results: list[Any], fused: Any, out: Path) -> None:
    """One model's files go to ``out``; with a fusion, the fusion's do and model i's go to out/model_i."""
    if fused is None:
        results[0].save(out)
        return
    fused.save(out)
    for i, result in enumerate(results, 1):
        result.save(out / f"model_{i}")


def _report(args: argparse.Namespace, results: list[Any], fused: Any, out: Path) -> None:
    """Print each model's (and the fusion's) accuracies, or results.json with --json."""
    if args.json:
        if fused is None:
            print(json.dumps(results[0].to_dict(), indent=2))
        else:
            models = [{"weights": w, **r.to_dict()} for w, r in zip(args.weights, results)]
            print(json.dumps({"models": models, "fusion": fused.to_dict()}, indent=2))
        return
    for weights, result in zip(args.weights, results):
        prefix = f"{weights}: " if fused is not None else ""
        print(
            f"{prefix}top-1 {result.top1:.2%}  top-5 {result.top5:.2%}  "
            f"mean class {result.mean_class_accuracy:.2%}  ({len(result.labels)} videos x {result.num_views} "
            f"views, {result.precision}, {result.seconds:.1f} s)"
        )
    if fused is not None:
        ws = fused.extra["fusion_weights"]
        how = " : ".join(f"{w:g}" for w in ws) if ws else fused.extra.get("fusion", args.fusion)
        print(
            f"fusion ({how}): top-1 {fused.top1:.2%}  top-5 {fused.top5:.2%}  "
            f"mean class {fused.mean_class_accuracy:.2%}  ({len(fused.labels)} videos)"
        )
    print(f"results in {out}")


def _report_missing(dataset: Any, *, scored: int) -> int:
    """Exit code 2 (and one line on stderr) when some test videos were left out of the results."""
    bad = len(getattr(dataset, "failures", {})) + len(getattr(dataset, "missing", []))
    total = int(getattr(dataset, "total", bad + scored))
    bad = max(bad, total - scored)  # with a fusion, also the videos another model could not read
    if not bad:
        return 0
    # each was reported on stderr as it was met; the exit code tells scripts
    print(
        f"actionrec test: {bad} of {total} videos missing or unreadable; left out of the results",
        file=sys.stderr,
    )
    return 2
