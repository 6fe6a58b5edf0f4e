"""``actionrec motion``: what a DynamoNet's dynamic motion filters predict, as a PNG strip.

One clip of the video (the centre clip, with the model's own sampling, resize, crop and normalisation,
and the frame after it) goes through the model's :meth:`~actionrec.models.dynamonet.DynamoNet.
predict_frames`. The PNG has one column per time step t and four rows: the input frame t, the
predicted frame t + 1 (filter t applied to frame t), the real frame t + 1, and the absolute error
(mean over RGB, in pixel units of [0, 1], times ``--error-gain``, white = large). Each cell is the
model's crop upscaled ``--scale`` times (nearest), cells 2 pixels apart on a white background.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actionrec.errors import ActionrecError

EXAMPLE = """example:
  actionrec motion clip.mp4 --weights runs/dynamonet/model.safetensors --out motion.png
"""
ROWS = ("input frame t", "predicted t+1", "real t+1", "|error|")
GAP = 2  # pixels between cells


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "motion",
        help="show a DynamoNet's next-frame predictions as a PNG strip",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Rows: input frames, predicted next frames, real next frames, |error|; one column "
        "per time step of one clip (the centre one). The mean L1 error is printed on stdout.",
    )
    p.add_argument("video", metavar="VIDEO", help="a video file")
    p.add_argument("--model", help="registered DynamoNet name (optional with an actionrec .safetensors)")
    p.add_argument("--weights", help="weights file: an actionrec .safetensors or a torch state dict")
    p.add_argument("--out", help="PNG to write (default: <video stem>_motion.png beside the video)")
    p.add_argument("--scale", type=int, default=2, help="upscale factor of every frame (default 2)")
    p.add_argument("--error-gain", type=float, default=4.0, help="error brightness factor (default 4)")
    p.add_argument("--backend", default="pyav", help="video decoder: pyav, opencv, torchcodec, frames")
    return p


def strip_size(steps: int, size: int, scale: int) -> tuple[int, int]:
    """(width, height) in pixels of the strip for ``steps`` columns of ``size`` px frames."""
    cell = size * scale
    return steps * cell + (steps - 1) * GAP, len(ROWS) * cell + (len(ROWS) - 1) * GAP


def _read_clip(video: str, pre: Any, backend: str) -> dict[str, torch.Tensor]:
    """The centre clip and the frame after it: ``rgb`` (1, 3, T, S, S), ``future`` (1, 3, 1, S, S)."""
    from actionrec.data.sampling import future_indices, sample_indices
    from actionrec.data.sources import SampleSource

    with SampleSource(video, streams=("rgb", "future"), backend=backend) as source:
        n = source.num_frames
        row = sample_indices(pre.sampling_config(1), num_frames=n, fps=source.fps, train=False)[0]
        step = pre.frame_interval if pre.sampling == "dense" else 1
        future = future_indices(row[None], num_frames=n, step=step, count=1)[0]  # (1,) after the clip
        frames = source.read(row, future=future)  # rgb (T, H, W, 3), future (1, H, W, 3)
    out = pre.transform()(frames)  # (3, T, S, S) and (3, 1, S, S)
    return {k: v.unsqueeze(0) for k, v in out.items()}


def _to_pixels(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Normalised (3, S, H, W) frames -> [0, 1] pixels."""
    m = torch.tensor(mean).view(3, 1, 1, 1)
    s = torch.tensor(std).view(3, 1, 1, 1)
    return (x.float().cpu() * s + m).clamp(0, 1)


def render_strip(frames: dict[str, torch.Tensor], pre: Any, *, scale: int, gain: float) -> np.ndarray:
    """``predict_frames``' output for one clip -> a (height, width, 3) uint8 strip."""
    inputs, pred, real = (
        _to_pixels(frames[k][0], pre.mean, pre.std) for k in ("inputs", "predicted", "targets")
    )  # (3, S, H, W) each
    error = ((pred - real).abs().mean(0, keepdim=True) * gain).clamp(0, 1).expand_as(pred)  # (3, S, H, W)
    steps, size = pred.shape[1], pred.shape[-1]
    width, height = strip_size(steps, size, scale)
    canvas = np.full((height, width, 3), 255, np.uint8)
    cell = size * scale
    for r, rows in enumerate((inputs, pred, real, error)):
        tiles = (rows.permute(1, 2, 3, 0).numpy() * 255).round().astype(np.uint8)  # (S, H, W, 3)
        for t, tile in enumerate(tiles):
            big = tile.repeat(scale, 0).repeat(scale, 1)  # (H * scale, W * scale, 3)
            y, x = r * (cell + GAP), t * (cell + GAP)
            canvas[y : y + big.shape[0], x : x + big.shape[1]] = big
    return canvas


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from actionrec.cli.predict import load_predictor
    from actionrec.data.preprocessing import Preprocessing

    if args.scale < 1:
        raise ActionrecError(f"--scale must be >= 1, got {args.scale}")
    if not Path(args.video).is_file():
        raise ActionrecError(f"{args.video}: no such video file")
    args.labels = None  # load_predictor's option; the class names play no part here
    model, _, recorded = load_predictor(args)
    if not callable(getattr(model, "predict_frames", None)):
        raise ActionrecError(
            f"{getattr(model, 'model_name', 'the model')} has no motion filters (not a DynamoNet)"
        )
    base = Preprocessing.from_card(model.card)
    pre = Preprocessing.from_dict(recorded, base=base) if recorded else base
    try:
        clip = _read_clip(args.video, pre, args.backend)
    except (OSError, RuntimeError, ValueError) as e:  # decoder errors that are not yet VideoDecodeError
        raise ActionrecError(f"{args.video}: {e}") from None
    model.eval()
    with torch.no_grad():
        frames = model.predict_frames(clip["rgb"], clip["future"])
    l1 = (frames["predicted"] - frames["targets"]).abs().mean().item()
    copy = (frames["inputs"].float() - frames["targets"]).abs().mean().item()
    out = Path(args.out) if args.out else Path(args.video).with_name(f"{Path(args.video).stem}_motion.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(render_strip(frames, pre, scale=args.scale, gain=args.error_gain)).save(out)
    print(f"{out}: {frames['predicted'].shape[2]} steps, L1 {l1:.4f} (copying the last frame: {copy:.4f})")
    return 0
