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
  actionrec demo --out runs/demo          # about 4.5 minutes on 2 AMX cores (fp32 AVX2 CPUs: slower)
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
    p.add_argument(
        "--fuse",
        nargs="+",
        default=[],
        metavar="A+B[=WA,WB]",
        help="late fusions of trained --models to add to the table: the weighted average of their softmax "
        "scores, e.g. tsn_small+tsn_small_flow=1,1.5 (default weights equal)",
    )
    return p


def parse_fusion(spec: str, models: list[str]) -> tuple[list[str], list[float] | None]:
    """``"a+b=1,1.5"`` -> (["a", "b"], [1.0, 1.5]); every part must be one of ``models``."""
    names, _, weights = spec.partition("=")
    parts = names.split("+")
    if len(parts) < 2 or any(n not in models for n in parts):
        raise ActionrecError(f"--fuse {spec}: name two or more of the --models, joined by '+'")
    if not weights:
        return parts, None
    try:
        values = [float(w) for w in weights.split(",")]
    except ValueError:
        values = []
    if len(values) != len(parts) or any(not w > 0 for w in values):
        raise ActionrecError(f"--fuse {spec}: give one weight > 0 per model after '=', e.g. =1,1.5")
    return parts, values


def pair_accuracies(result: Any) -> dict[str, float]:
    """Each synthetic pair's two-way accuracy on its test videos (pairs whose classes are present)."""
    from actionrec.data.synth import SYNTH_PAIRS

    return {
        pair: result.pair_accuracy(classes)
        for pair, classes in SYNTH_PAIRS.items()
        if all(c in result.classes for c in classes)
    }


def fused_entry(spec: str, results: dict[str, Any], models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The demo summary of a late fusion of trained models (their test results' softmax scores)."""
    from actionrec.engine.fusion import fuse_results

    names, weights = parse_fusion(spec, list(models))
    fused = fuse_results([results[n] for n in names], weights=weights)
    return {
        "top1": fused.top1,
        "pairs": pair_accuracies(fused),
        "mean_class_accuracy": fused.mean_class_accuracy,
        "fusion_of": names,
        "fusion_weights": fused.extra["fusion_weights"],
        "test_videos": len(fused.labels),
        "params_m": sum(models[n]["params_m"] for n in names),
        "gmacs": sum(models[n]["gmacs"] for n in names),
        "train_clips_per_s": None,
    }


def find_recipe(model_name: str) -> str:
    """The packaged recipe that trains ``model_name`` on the synthetic benchmark; a registered variant
    without its own (``conv_fusion_small_sum``) trains with its base model's (``conv_fusion_small``)."""
    from actionrec.engine.config import load_config, packaged_recipes

    found: dict[str, str] = {}
    for name in packaged_recipes():
        if "synthetic" not in name:
            continue
        cfg = load_config(name)
        if cfg.data.dataset == "synthetic":
            found.setdefault(cfg.model.name, name)
    if model_name in found:
        return found[model_name]
    bases = [m for m in found if model_name.startswith(m + "_")]
    if bases:
        from actionrec.models.registry import get_card, list_models

        base = max(bases, key=len)
        if model_name in list_models() and _same_input(get_card(model_name), get_card(base)):
            return found[base]
    raise ActionrecError(f"no packaged recipe trains {model_name} on the synthetic benchmark")


def _same_input(a: Any, b: Any) -> bool:
    """Whether two cards read the same sample (streams, sampling, frames, input size)."""
    keys = ("streams", "sampling", "num_frames", "snippet_len", "frame_interval", "crop_size", "in_channels")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


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


def _overrides(model_name: str, data: Path, *, quick: bool, flow: Path | None = None) -> list[str]:
    # No validation passes while training: each model is tested once, on 3 clips, at the end.
    items = [f"--model.name={model_name}", f"--data.root={data}", "--train.eval_every=0"]
    if flow is not None:
        items.append(f"--data.options.flow_root={flow}")
    if quick:
        items += ["--train.epochs=1", "--optim.warmup_epochs=0", "--train.num_workers=0"]
    return items


def run_model(
    model_name: str, data: Path, out: Path, *, quick: bool, clips: int
) -> tuple[dict[str, Any], Any]:
    """Train one model with its recipe, evaluate it; its demo summary and its test result."""
    from actionrec.engine.config import load_config
    from actionrec.engine.evaluate import build_test_dataset, evaluate, model_from_weights
    from actionrec.engine.train import train
    from actionrec.models.registry import get_card

    recipe = find_recipe(model_name)
    flow = ensure_flow(data) if "flow" in get_card(model_name).streams else None
    cfg = load_config(recipe, overrides=_overrides(model_name, data, quick=quick, flow=flow))
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
    cost = _cost(model, test_set[0], out / model_name / "metrics.jsonl")
    pairs = pair_accuracies(result)
    return {
        "top1": result.top1,
        "pairs": pairs,
        "mean_class_accuracy": result.mean_class_accuracy,
        "recipe": recipe,
        "train_seconds": round(train_seconds, 1),
        "test_videos": len(result.labels),
        **cost,
    }, result


def _cost(model: Any, sample: dict[str, Any], metrics: Path) -> dict[str, float]:
    """Parameters (M) and GMACs of one view of a test sample (the trained classifier), and the mean
    training rate over the run's epochs (clips/s, from its metrics log)."""
    from actionrec.data.streams import INPUT_KEYS, model_input
    from actionrec.models.complexity import count_macs, count_params

    streams = {k: v for k, v in sample.items() if k in INPUT_KEYS}
    # (views, C, T, H, W) with several test views, else (C, T, H, W): one view as a batch of 1
    view = model_input({k: v[:1] if v.dim() == 5 else v.unsqueeze(0) for k, v in streams.items()})
    rates = [
        r["train_clips_per_s"]
        for r in map(json.loads, metrics.read_text().splitlines())
        if "train_clips_per_s" in r
    ]
    return {
        "params_m": round(count_params(model) / 1e6, 3),
        "gmacs": round(count_macs(model, view) / 1e9, 4),
        "train_clips_per_s": round(sum(rates) / max(len(rates), 1), 1),
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


def markdown_table(models: dict[str, dict[str, Any]]) -> str:
    """One row a model: top-1, each pair's two-way accuracy, params, GMACs, mean train clips/s."""
    pairs = list(next(iter(models.values()))["pairs"]) if models else []
    head = ["model", "top-1", *pairs, "params (M)", "GMACs", "train clips/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, m in models.items():
        cells = [f"`{name}`", f"{m['top1']:.1%}", *(f"{m['pairs'][p]:.0%}" for p in pairs)]
        rate = m["train_clips_per_s"]
        cells += [f"{m['params_m']:.2f}", f"{m['gmacs']:.3f}", "–" if rate is None else f"{rate:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from actionrec.engine.checkpoint import atomic_write
    from actionrec.engine.plots import plot_comparison

    start = time.perf_counter()
    out = Path(args.out)
    clips = args.clips or (1 if args.quick else 3)
    if clips < 1:
        raise ActionrecError(f"--clips must be >= 1, got {clips}")
    for name in args.models:
        find_recipe(name)  # every name checked before hours of training
    for spec in args.fuse:
        parse_fusion(spec, args.models)
    data = ensure_data(
        Path(args.data) if args.data else out / ("synthetic-quick" if args.quick else "synthetic"),
        quick=args.quick,
    )
    models: dict[str, dict[str, Any]] = {}
    results: dict[str, Any] = {}
    for name in args.models:
        models[name], results[name] = run_model(name, data, out, quick=args.quick, clips=clips)
    for spec in args.fuse:
        models[spec] = fused_entry(spec, results, models)
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
    atomic_write(out / "table.md", lambda f: f.write((markdown_table(models) + "\n").encode()))
    print(format_table(models))
    print(f"\n{seconds:.0f} s; results in {out / 'results.json'} and {out / 'table.md'}, plots in {out}")
    return 0
