"""What training shows and records: a progress bar, metrics.jsonl, TensorBoard, a curve PNG.

Only rank 0 logs; the other ranks get a :class:`MetricsLogger` with ``enabled=False`` and a disabled bar.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm import tqdm


def progress(iterable: Iterable, *, total: int, desc: str, enabled: bool = True, initial: int = 0) -> tqdm:
    """A tqdm bar on stderr with ETA; the loop adds ``loss``, ``lr`` and ``clips/s`` as postfix."""
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        disable=not enabled,
        initial=initial,
        dynamic_ncols=True,
        leave=False,
        file=sys.stderr,
        smoothing=0.1,
    )


class Throughput:
    """Clips per second since the object was made (one per epoch)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.clips = 0

    def update(self, clips: int) -> float:
        self.clips += clips
        return self.clips / max(1e-9, time.perf_counter() - self.start)


class MetricsLogger:
    """Appends one JSON object per line to ``metrics.jsonl`` and mirrors scalars to TensorBoard."""

    def __init__(self, out_dir: str | Path, *, enabled: bool = True, tensorboard: bool = True) -> None:
        self.path = Path(out_dir) / "metrics.jsonl"
        self.enabled = enabled
        self.writer: Any = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(log_dir=str(Path(out_dir) / "tensorboard"))

    def log(self, record: dict[str, Any], *, step: int) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "epoch":
                    self.writer.add_scalar(key, value, step)
            self.writer.flush()

    def truncate_after(self, epoch: int) -> None:
        """Drop records of epochs later than ``epoch`` (a resumed run rewrites them)."""
        if not self.enabled or not self.path.exists():
            return
        kept = [
            line
            for line in self.path.read_text().splitlines()
            if line.strip() and json.loads(line).get("epoch", 0) <= epoch
        ]
        self.path.write_text("".join(line + "\n" for line in kept))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_curves(metrics_path: str | Path, out_png: str | Path) -> Path | None:
    """Loss (train, val) and top-1 (val) against epoch as a two-panel PNG; None when nothing to plot."""
    records = read_metrics(metrics_path) if Path(metrics_path).exists() else []
    if not records:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, keys, title in (
        (ax_loss, ("train_loss", "val_loss"), "loss"),
        (ax_acc, ("train_top1", "val_top1"), "top-1 (%)"),
    ):
        for key in keys:
            pts = [(r["epoch"], r[key]) for r in records if key in r]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=key)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return Path(out_png)
