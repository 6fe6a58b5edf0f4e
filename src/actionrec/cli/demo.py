"""``actionrec demo``: does time matter? A temporal model against a single-frame baseline on synthetic motion.

Generates the synthetic motion benchmark (if absent), trains ``r2plus1d_small`` (R(2+1)D, temporal
convolutions) and ``single_frame_small`` (a 2-D CNN whose frame scores are averaged) with their
packaged recipes, evaluates both and prints overall top-1 and, for each pair of classes that differ
only in the direction of time (move left / move right, appear / disappear, ...), the accuracy of
the two-way decision between them: a model that ignores frame order is at chance (50 %) there.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actionrec.errors import ActionrecError

MODELS = ("r2plus1d_small", "single_frame_small")
DEMO_FLOW = {"method": "farneback", "bound": 4.0, "short_side": None}
QUICK_VIDEOS_PER_CLASS = 4
FULL_VIDEOS_PER_CLASS = 100
EXAMPLE = """example:
  actionrec demo --out runs/demo          # about 3.5 minutes on 2 AMX cores (fp32 AVX2 CPUs: slower)
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
        metavar="[LABEL=]NAME[:KEY=VALUE,...]",
        help="runs to compare (default: "
        f"{' '.join(MODELS)}): a model, trained with its packaged synthetic recipe, or a packaged "
        "recipe's name; after ':' recipe overrides for this run only, e.g. "
        "static=tada_small:model.overrides.calibrate=false ('{out}' in a value is --out, so a run can "
        "start from an earlier one's checkpoint); flow models get the benchmark's flow, extracted once",
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
        if cfg.data.dataset != "synthetic" or cfg.task.name == "pretrain":
            continue
        # a model's own recipe (``strg-small_...``) before its ablation variants (``strg-small-backbone_...``)
        if name.split("_")[0] == cfg.model.name.replace("_", "-") or cfg.model.name not in found:
            found[cfg.model.name] = name
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


@dataclass(frozen=True)
class Run:
    """One run of the demo: its label (the table's row and the run's folder), recipe and overrides."""

    label: str
    recipe: str
    model: str | None  # set when the spec named a model (trained with its base's recipe if need be)
    overrides: tuple[str, ...] = ()
    pretrain: bool = False  # a label-free run: trained, not tested, not in the table

    @property
    def folder(self) -> str:
        return re.sub(r"[^\w.+-]+", "_", self.label)


def parse_run(spec: str, out: Path) -> Run:
    """``[LABEL=]NAME[:KEY=VALUE,...]`` -> a :class:`Run`, its recipe and overrides checked now."""
    from actionrec.engine.config import load_config, packaged_recipes, parse_overrides

    head, _, rest = spec.partition(":")
    label, eq, name = head.partition("=")
    if not eq:
        label, name = spec, head
    if not name or not label:
        raise ActionrecError(f"--models {spec}: expected [LABEL=]NAME[:KEY=VALUE,...]")
    overrides = tuple(item.replace("{out}", str(out)) for item in rest.split(",") if item)
    parse_overrides(overrides)  # each must read section.key=value
    is_recipe = name in packaged_recipes()
    run = Run(label, name if is_recipe else find_recipe(name), None if is_recipe else name, overrides)
    cfg = load_config(run.recipe, overrides=_overrides(run, out, quick=False))  # a bad key fails now
    return dataclasses.replace(run, pretrain=cfg.task.name == "pretrain")


def _overrides(run: Run, data: Path, *, quick: bool, flow: Path | None = None) -> list[str]:
    # No validation passes while training: each model is tested once, on 3 clips, at the end.
    items = [f"--data.root={data}", "--train.eval_every=0"]
    if run.model is not None:
        items.append(f"--model.name={run.model}")
    if flow is not None:
        items.append(f"--data.options.flow_root={flow}")
    if quick:
        items += ["--train.epochs=1", "--optim.warmup_epochs=0", "--train.num_workers=0"]
    return items + list(run.overrides)


def _check_boxes(runs: list[Run], data: Path) -> None:
    """A region model needs the benchmark's box files (written by ``actionrec synth`` since they exist)."""
    from actionrec.data.boxes import box_file
    from actionrec.engine.config import load_config
    from actionrec.models.registry import get_card

    for run in runs:
        cfg = load_config(run.recipe, overrides=_overrides(run, data, quick=False))
        if "boxes" not in get_card(cfg.model.name).streams or cfg.data.options.get("boxes_root"):
            continue
        first = next(data.glob("*/*.mp4"), None)
        if first is not None and not box_file(first).is_file():
            raise ActionrecError(
                f"{data} has no box files (an older benchmark), which {run.label} needs: "
                "generate it again into an empty folder (actionrec synth --out DIR, or demo --data DIR)"
            )


def run_model(run: Run, data: Path, out: Path, *, quick: bool, clips: int) -> tuple[dict[str, Any], Any]:
    """Train one run with its recipe and evaluate it: its demo summary and its test result (None for a
    label-free pretraining run, which is trained only)."""
    from actionrec.engine.config import load_config
    from actionrec.engine.evaluate import build_test_dataset, evaluate, model_from_weights
    from actionrec.engine.train import train
    from actionrec.models.registry import get_card

    cfg = load_config(run.recipe, overrides=_overrides(run, data, quick=quick))
    if "flow" in get_card(cfg.model.name).streams:
        flow = ensure_flow(data)
        cfg = load_config(run.recipe, overrides=_overrides(run, data, quick=quick, flow=flow))
    print(f"training {run.label} ({run.recipe})", file=sys.stderr)
    start = time.perf_counter()
    trained = train(cfg, out_dir=out / run.folder)
    if trained.weights is None:
        raise ActionrecError(f"training {run.label} was interrupted")
    train_seconds = round(time.perf_counter() - start, 1)
    if cfg.task.name == "pretrain":
        return {"recipe": run.recipe, "weights": str(trained.weights), "train_seconds": train_seconds}, None
    model, _ = model_from_weights(None, trained.weights)
    test_set = build_test_dataset(cfg, model.card, num_clips=clips, num_crops=1)
    result = evaluate(
        model,
        test_set,
        num_clips=clips,
        num_crops=1,
        num_workers=cfg.train.num_workers,
        out_dir=out / run.folder / "test",
        progress=not quick,
    )
    cost = _cost(model, test_set[0], out / run.folder / "metrics.jsonl")
    if callable(getattr(model, "predict_frames", None)):  # a frame predictor (DynamoNet): its held-out error
        cost |= motion_errors(model, test_set)
    pairs = pair_accuracies(result)
    return {
        "top1": result.top1,
        "pairs": pairs,
        "mean_class_accuracy": result.mean_class_accuracy,
        "recipe": run.recipe,
        **({"overrides": list(run.overrides)} if run.overrides else {}),
        "train_seconds": train_seconds,
        "test_videos": len(result.labels),
        **cost,
    }, result


def _cost(model: Any, sample: dict[str, Any], metrics: Path) -> dict[str, float]:
    """Parameters (M) and GMACs of one view of a test sample (the trained classifier), and the mean
    training rate over the run's epochs (clips/s, from its metrics log)."""
    from actionrec.data.streams import INPUT_KEYS, model_input
    from actionrec.models.complexity import count_macs, count_params

    streams = {k: v for k, v in sample.items() if k in INPUT_KEYS}
    # (views, C, T, H, W) with several test views, else (C, T, H, W): one view as a batch of 1; every
    # stream (boxes (V, T, N, 4) too) has the views first when the frames do
    views = next(v for k, v in streams.items() if k not in ("boxes", "boxes_mask")).dim() == 5
    view = model_input({k: v[:1] if views else v.unsqueeze(0) for k, v in streams.items()})
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


def motion_errors(model: Any, test_set: Any) -> dict[str, float]:
    """Mean L1 (normalised pixels) of the next frames a frame predictor predicts, and of copying the last
    frame instead, over the first view of every held-out video."""
    import torch
    from torch.utils.data import DataLoader

    from actionrec.data.loader import collate_samples

    sums = {"next_frame_l1": 0.0, "copy_last_l1": 0.0}
    count = 0
    model.eval()
    for batch in DataLoader(test_set, batch_size=16, collate_fn=collate_samples):
        rgb, future = batch["rgb"], batch["future"]
        if rgb.ndim == 6:  # (B, V, C, T, H, W): the first view
            rgb, future = rgb[:, 0], future[:, 0]
        with torch.no_grad():
            frames = model.predict_frames(rgb, future)
        dims = tuple(range(1, rgb.ndim))
        sums["next_frame_l1"] += (frames["predicted"] - frames["targets"]).abs().mean(dims).sum().item()
        sums["copy_last_l1"] += (frames["inputs"] - frames["targets"]).abs().mean(dims).sum().item()
        count += rgb.shape[0]
    return {k: round(v / max(count, 1), 5) for k, v in sums.items()}


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
    motion = any("next_frame_l1" in m for m in models.values())
    head = ["model", "top-1", *pairs, "params (M)", "GMACs", "train clips/s"]
    head += ["next-frame L1 (copy-last L1)"] if motion else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, m in models.items():
        cells = [f"`{name}`", f"{m['top1']:.1%}", *(f"{m['pairs'][p]:.0%}" for p in pairs)]
        rate = m["train_clips_per_s"]
        cells += [f"{m['params_m']:.2f}", f"{m['gmacs']:.3f}", "–" if rate is None else f"{rate:.0f}"]
        if motion:
            have = "next_frame_l1" in m
            cells.append(f"{m['next_frame_l1']:.4f} ({m['copy_last_l1']:.4f})" if have else "–")
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
    runs = [parse_run(spec, out) for spec in args.models]  # every spec checked before hours of training
    labels = [r.label for r in runs]
    if len(set(labels)) != len(labels):
        raise ActionrecError(f"--models: two runs are labelled alike ({', '.join(labels)}); give LABEL=")
    for spec in args.fuse:
        parse_fusion(spec, [r.label for r in runs if not r.pretrain])
    data = ensure_data(
        Path(args.data) if args.data else out / ("synthetic-quick" if args.quick else "synthetic"),
        quick=args.quick,
    )
    _check_boxes(runs, data)
    models: dict[str, dict[str, Any]] = {}
    results: dict[str, Any] = {}
    pretrained: dict[str, dict[str, Any]] = {}
    for spec in runs:
        summary_, result = run_model(spec, data, out, quick=args.quick, clips=clips)
        if result is None:  # a label-free (pretraining) run: no test, not a row of the table
            pretrained[spec.label] = summary_
        else:
            models[spec.label], results[spec.label] = summary_, result
    for spec in args.fuse:
        models[spec] = fused_entry(spec, results, models)
    seconds = round(time.perf_counter() - start, 1)
    summary = {
        "models": models,
        **({"pretrained": pretrained} if pretrained else {}),
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
