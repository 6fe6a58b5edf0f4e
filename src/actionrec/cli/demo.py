"""``actionrec demo``: does time matter? A temporal model against a single-frame baseline on synthetic motion.

Generates the synthetic motion benchmark (if absent), trains ``r2plus1d_small`` (R(2+1)D, temporal
convolutions) and ``single_frame_small`` (a 2-D CNN whose frame scores are averaged) with their
packaged recipes, evaluates both and prints overall top-1 and, for each pair of classes that differ
only in the direction of time (move left / move right, appear / disappear, ...), the accuracy of
the two-way decision between them: a model that ignores frame order is at chance (50 %) there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from actionrec.errors import ActionrecError

MODELS = ("r2plus1d_small", "single_frame_small")
DEMO_FLOW = {"method": "farneback", "bound": 4.0, "short_side": None}
QUICK_VIDEOS_PER_CLASS = 4
FULL_VIDEOS_PER_CLASS = 100
EXAMPLE = """example:
  actionrec demo --out runs/demo          # about 6 minutes on 2 AMX cores (fp32 AVX2 CPUs: slower)
  actionrec demo --out /tmp/demo --quick  # a smoke run in well under a minute
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "demo",
        help="temporal model vs single-frame baseline on synthetic motion",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n", 1)[1].replace("\n", " ").replace("``", ""),
    )
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--data", help="synthetic benchmark folder (default OUT/synthetic, generated when absent)")
    p.add_argument(
        "--quick", action="store_true", help="tiny data and one epoch: checks that everything runs"
    )
    p.add_argument("--clips", type=int, help="test clips per video (default 3, 1 with --quick)")
    p.add_argument(
        "--models",
        nargs="+",
        default=list(MODELS),
        metavar="NAME",
        help="models to compare, each with its packaged synthetic recipe (default: "
        f"{' '.join(MODELS)}); flow models get the benchmark's flow, extracted once",
    )
    return p


def find_recipe(model_name: str) -> str:
    """The packaged recipe that trains ``model_name`` on the synthetic benchmark."""
    from actionrec.engine.config import load_config, packaged_recipes

    for name in packaged_recipes():
        if "synthetic" not in name:
            continue
        cfg = load_config(name)
        if cfg.model.name == model_name and cfg.data.dataset == "synthetic":
            return name
    raise ActionrecError(f"no packaged recipe trains {model_name} on the synthetic benchmark")


def ensure_data(folder: Path, *, quick: bool) -> Path:
    """The benchmark in ``folder``, generated first unless its class index is already there."""
    from actionrec.data.synth import generate_synthetic

    if (folder / "classInd.txt").is_file():
        print(f"using the synthetic benchmark in {folder}", file=sys.stderr)
        return folder
    videos = QUICK_VIDEOS_PER_CLASS if quick else FULL_VIDEOS_PER_CLASS
    print(f"generating the synthetic benchmark in {folder} ({videos} videos per class)", file=sys.stderr)
    return generate_synthetic(folder, videos_per_class=videos, seed=0, progress=not quick)


def ensure_flow(data: Path) -> Path:
    """The benchmark's flow in ``<data>_flow`` (Farneback, ±4 px, as the flow recipe says), extracted
    unless complete; finished videos are skipped, so an interrupted extraction resumes."""
    from actionrec.data.flow import DONE_MARKER, FlowOptions
    from actionrec.data.flow_jobs import collect_jobs, pending_jobs, run_jobs

    folder = data.parent / f"{data.name}_flow"
    jobs, _ = collect_jobs([data], folder)
    todo = pending_jobs(jobs)
    finished = [target for video, target in jobs if (video, target) not in todo]
    if finished:  # flow made before: it must be the flow the recipe was tuned on
        made = json.loads((finished[0] / DONE_MARKER).read_text())
        if (made.get("method"), made.get("bound")) != (DEMO_FLOW["method"], DEMO_FLOW["bound"]):
            raise ActionrecError(
                f"{folder} holds {made.get('method')} flow at ±{made.get('bound')} px; the flow recipe "
                f"wants {DEMO_FLOW['method']} at ±{DEMO_FLOW['bound']} px: remove it or use another --data"
            )
    if todo:
        print(f"extracting the benchmark's flow into {folder} ({len(todo)} videos)", file=sys.stderr)
        failed = [m for m in run_jobs(todo, FlowOptions(**DEMO_FLOW), workers=2) if m]
        if failed:
            raise ActionrecError(f"flow extraction failed for {len(failed)} videos, e.g. {failed[0]}")
    return folder


def _overrides(data: Path, *, quick: bool, flow: Path | None = None) -> list[str]:
    items = [f"--data.root={data}"]
    if flow is not None:
        items.append(f"--data.options={{flow_root: {flow}}}")
    if quick:
        items += [
            "--train.epochs=1",
            "--optim.warmup_epochs=0",
            "--train.eval_every=0",
            "--train.num_workers=0",
        ]
    return items


def run_model(model_name: str, data: Path, out: Path, *, quick: bool, clips: int) -> dict[str, Any]:
    """Train one model with its recipe, evaluate it, and return its demo results."""
    from actionrec.data.synth import SYNTH_PAIRS
    from actionrec.engine.config import load_config
    from actionrec.engine.evaluate import build_test_dataset, evaluate, model_from_weights
    from actionrec.engine.train import train
    from actionrec.models.registry import get_card

    recipe = find_recipe(model_name)
    flow = ensure_flow(data) if "flow" in get_card(model_name).streams else None
    cfg = load_config(recipe, overrides=_overrides(data, quick=quick, flow=flow))
    print(f"training {model_name} ({recipe})", file=sys.stderr)
    start = time.perf_counter()
    trained = train(cfg, out_dir=out / model_name)
    if trained.weights is None:
        raise ActionrecError(f"training {model_name} was interrupted")
    train_seconds = time.perf_counter() - start
    model, _ = model_from_weights(None, trained.weights)
    test_set = build_test_dataset(cfg, model.card, num_clips=clips, num_crops=1)
    result = evaluate(
        model,
        test_set,
        num_clips=clips,
        num_crops=1,
        num_workers=cfg.train.num_workers,
        out_dir=out / model_name / "test",
        progress=not quick,
    )
    pairs = {
        pair: result.pair_accuracy(classes)
        for pair, classes in SYNTH_PAIRS.items()
        if all(c in result.classes for c in classes)
    }
    return {
        "top1": result.top1,
        "pairs": pairs,
        "mean_class_accuracy": result.mean_class_accuracy,
        "recipe": recipe,
        "train_seconds": round(train_seconds, 1),
        "test_videos": len(result.labels),
    }


def format_table(models: dict[str, dict[str, Any]]) -> str:
    """Rows: overall top-1 then one per pair; columns: the models. Percentages."""
    names = list(models)
    pairs = list(next(iter(models.values()))["pairs"]) if models else []
    width = max([len("top-1 (all classes)"), *(len(p) + 7 for p in pairs)])
    cols = [max(len(n), 8) for n in names]
    lines = ["".ljust(width) + "  " + "  ".join(n.rjust(c) for n, c in zip(names, cols))]
    rows = [("top-1 (all classes)", [m["top1"] for m in models.values()])]
    rows += [(f"pair: {p}", [m["pairs"][p] for m in models.values()]) for p in pairs]
    for label, values in rows:
        lines.append(label.ljust(width) + "  " + "  ".join(f"{v:.1%}".rjust(c) for v, c in zip(values, cols)))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from actionrec.engine.checkpoint import atomic_write
    from actionrec.engine.plots import plot_comparison

    start = time.perf_counter()
    out = Path(args.out)
    clips = args.clips or (1 if args.quick else 3)
    if clips < 1:
        raise ActionrecError(f"--clips must be >= 1, got {clips}")
    data = ensure_data(
        Path(args.data) if args.data else out / ("synthetic-quick" if args.quick else "synthetic"),
        quick=args.quick,
    )
    for name in args.models:
        find_recipe(name)  # every name checked before hours of training
    models = {name: run_model(name, data, out, quick=args.quick, clips=clips) for name in args.models}
    seconds = round(time.perf_counter() - start, 1)
    summary = {
        "models": models,
        "seconds": seconds,
        "quick": args.quick,
        "data": str(data),
        "pairs_metric": "two-way accuracy between the classes of each pair, on their test videos",
    }
    atomic_write(out / "results.json", lambda f: f.write((json.dumps(summary, indent=2) + "\n").encode()))
    plot_comparison(models, out / "comparison.png")
    print(format_table(models))
    print(f"\n{seconds:.0f} s; results in {out / 'results.json'}, plots in {out}")
    return 0
