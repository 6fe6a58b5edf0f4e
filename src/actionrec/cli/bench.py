"""``actionrec bench``: throughput of models, the fast path, the data pipeline, flow and training."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from actionrec.errors import ActionrecError

SUITES = ("models", "fast", "pipeline", "flow", "train", "attention")
DEFAULT_SUITES = ("models", "fast", "pipeline", "flow", "train")  # attention: minutes of ViT-B steps
DEFAULT_VIDEOS = (
    "arm_wrestling.mp4",
    "pool_cleaning.mp4",
    "eye_makeup.avi",
    "unlabeled/clip01.mp4",
    "unlabeled/clip05.mp4",
)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "bench",
        help="measure throughput (ratios within one run)",
        description="Benchmarks every hot path; each comparison is timed in alternation within one run.",
        epilog="example: actionrec bench --suite models,fast --models 'r2plus1d*' --json > bench.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--suite",
        default=",".join(DEFAULT_SUITES),
        help=f"comma-separated subset of {','.join(SUITES)} (default: all but attention)",
    )
    p.add_argument("--models", default="*", help="model name pattern for the models suite (default: all)")
    p.add_argument(
        "--modes",
        default="fp32,bf16,channels_last,bf16+channels_last",
        help="execution modes for the models suite (add 'compile' for torch.compile)",
    )
    p.add_argument("--passes", default="infer,train", help="infer, train or both")
    p.add_argument(
        "--videos",
        type=Path,
        default=None,
        help="folder of videos for the pipeline/flow suites (default: ../shared/data/videos)",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--attention-frames",
        default="8,16",
        help="clip lengths for the attention suite (TimeSformer-B's five schemes at 224²)",
    )
    p.add_argument("--workers", default="0,1,2", help="DataLoader worker counts for the pipeline suite")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    p.add_argument(
        "--from", dest="from_json", type=Path, metavar="JSON", help="print the tables of a saved --json run"
    )
    return p


def _machine() -> dict[str, Any]:
    import torch

    from actionrec.engine.precision import cpu_info, cpu_label

    info = cpu_info()
    return {
        "cpu": info["model"],
        "cpu_label": cpu_label(),
        "cores": info["cores"],
        "cpu_capability": info["capability"],
        "amx_bf16": info["amx_bf16"],
        "avx512_bf16": info["avx512_bf16"],
        "native_bf16": info["native_bf16"],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _video_files(folder: Path | None) -> list[Path]:
    if folder is None:
        folder = Path.cwd().parent / "shared" / "data" / "videos"
        if not folder.is_dir():
            raise ActionrecError("no --videos folder given and ../shared/data/videos not found")
        return [folder / f for f in DEFAULT_VIDEOS if (folder / f).exists()]
    if not folder.is_dir():
        raise ActionrecError(f"{folder}: not a folder")
    files = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in {".mp4", ".avi", ".mkv", ".mov", ".webm"}
    )
    if not files:
        raise ActionrecError(f"{folder}: no videos")
    return files


def _suite_models(args: argparse.Namespace) -> list[dict[str, Any]]:
    from actionrec.bench.models import bench_model
    from actionrec.models.registry import list_models

    names = list_models(args.models)
    if not names:
        raise ActionrecError(f"no model matches {args.models!r}")
    modes, passes = tuple(args.modes.split(",")), tuple(args.passes.split(","))
    rows = []
    for name in names:
        print(f"bench: {name}", file=sys.stderr)
        rows += [r.to_dict() for r in bench_model(name, modes=modes, passes=passes, repeats=args.repeats)]
    return rows


def _suite_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    from actionrec.bench.pipeline import STRATEGIES, bench_file, bench_loader, bench_prepared

    files = _video_files(args.videos)
    per_file = [bench_file(f, s, repeats=args.repeats).to_dict() for f in files for s in STRATEGIES]
    loader = [bench_loader(files, s, workers=int(w)) for s in STRATEGIES for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        prepared = [
            bench_prepared(f, s, tmp, repeats=args.repeats) for f in files for s in ("tsn8", "dense16x2")
        ]
    return {"per_file": per_file, "loader": loader, "prepared": prepared}


def _suite_train(args: argparse.Namespace) -> dict[str, Any]:
    from actionrec.data.synth import generate_synthetic
    from actionrec.engine.config import load_config
    from actionrec.engine.train import train

    with tempfile.TemporaryDirectory() as tmp:
        data = generate_synthetic(Path(tmp) / "synthetic", videos_per_class=10, seed=0)
        cfg = load_config(
            "r2plus1d-small_8x3_synthetic-rgb",
            overrides=[f"data.root={data}", "train.epochs=1", "train.eval_every=100"],
        )
        result = train(cfg, out_dir=Path(tmp) / "run")
    record = result.history[-1]
    return {
        "model": cfg.model.name,
        "clips": int(record.get("train_clips", 0)) or None,
        "train_clips_per_s": record["train_clips_per_s"],
        "epoch_s": record["time_s"],
    }


def run(args: argparse.Namespace) -> int:
    if args.from_json:
        try:
            _print_tables(json.loads(args.from_json.read_text()))
        except (OSError, ValueError, KeyError) as e:
            raise ActionrecError(
                f"{args.from_json}: not a saved benchmark ({type(e).__name__}: {e})"
            ) from None
        return 0
    suites = args.suite.split(",")
    unknown = sorted(set(suites) - set(SUITES))
    if unknown:
        raise ActionrecError(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    out: dict[str, Any] = {"machine": _machine()}
    if "models" in suites:
        out["models"] = _suite_models(args)
    if "fast" in suites:
        from actionrec.bench.models import bench_fast_path

        out["fast_path"] = bench_fast_path(repeats=max(args.repeats, 3))
    if "pipeline" in suites:
        out["pipeline"] = _suite_pipeline(args)
    if "flow" in suites:
        from actionrec.bench.flow import bench_flow, bench_flow_source

        out["flow"] = bench_flow(_video_files(args.videos)[0])
        out["flow_source"] = bench_flow_source(_video_files(args.videos)[0])
    if "train" in suites:
        out["train"] = _suite_train(args)
    if "attention" in suites:
        from actionrec.bench.attention import bench_attention

        frames = tuple(int(f) for f in args.attention_frames.split(","))
        out["attention"] = bench_attention(frames=frames, repeats=max(1, args.repeats - 2))
    label = out["machine"]["cpu_label"]
    for name in [k for k in out if k != "machine"]:  # every result names the CPU it was measured on
        out[name] = {"cpu": label, "results": out[name]}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        _print_tables(out)
    return 0


def _print_tables(out: dict[str, Any]) -> None:
    from actionrec.bench.models import MODES
    from actionrec.bench.report import pivot_models, table

    print("machine: " + ", ".join(f"{k}={v}" for k, v in out["machine"].items()))
    cpus = {v["cpu"] for k, v in out.items() if k != "machine" and isinstance(v, dict) and "cpu" in v}
    out = {k: v["results"] if isinstance(v, dict) and "results" in v else v for k, v in out.items()}
    if cpus:
        print("measured on: " + "; ".join(sorted(cpus)))
    if "models" in out:
        rows = pivot_models(out["models"])
        modes = [m for m in MODES if any(m in r for r in rows)]
        columns = ["model", "pass", "input", *modes, "peak_mb (fp32)", "ours / torchvision (fp32)"]
        print(table(rows, columns, title="Models: clips/s at batch 1, by execution mode"))
    if "fast_path" in out:
        print(
            table(
                [out["fast_path"]], list(out["fast_path"]), title="Default inference path vs torchvision fp32"
            )
        )
    if "pipeline" in out:
        print(
            table(
                out["pipeline"]["per_file"],
                [
                    "file",
                    "strategy",
                    "frames",
                    "keyframes",
                    "wanted",
                    "ours_clips_per_s",
                    "ours_with_transform_clips_per_s",
                    "naive_clips_per_s",
                    "limit_clips_per_s",
                    "ours_over_limit",
                    "speedup_vs_naive",
                    "decode_all_fps",
                ],
                title="Data pipeline per file (decode + sample)",
            )
        )
        print(
            table(
                out["pipeline"]["prepared"],
                [
                    "file",
                    "strategy",
                    "gop",
                    "original_clips_per_s",
                    "reencode_clips_per_s",
                    "frames_clips_per_s",
                    "reencode_speedup",
                    "frames_speedup",
                ],
                title="What `actionrec prepare` buys (same size, keyframe every 16 frames / JPEG frames)",
            )
        )
        print(
            table(
                out["pipeline"]["loader"],
                ["strategy", "workers", "clips", "clips_per_s"],
                title="DataLoader (decode + sample + transform)",
            )
        )
    if "flow" in out:
        print(
            table(out["flow"], ["method", "size", "pairs", "pairs_per_s"], title="Optical flow, one thread")
        )
    if "flow_source" in out:
        columns = ["source", "size", "clips", "frames", "clips_per_s", "frames_per_s", "stored_speedup"]
        columns += ["extract_s", "mean_abs_diff"]
        print(
            table(
                out["flow_source"], columns, title="Flow stored by `actionrec flow` vs on the fly, one thread"
            )
        )
    if "train" in out:
        print(
            table([out["train"]], list(out["train"]), title="Training, one epoch on the synthetic benchmark")
        )
    if "attention" in out:
        columns = ["scheme", "kernel", "input", "tokens", "gmacs", "infer_s", "infer_peak_mb", "train_s"]
        columns += ["train_peak_mb"]
        title = "TimeSformer-B attention schemes, batch 1, fp32 (peak: memory growth over the call)"
        print(table(out["attention"], columns, title=title))
