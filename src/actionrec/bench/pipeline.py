"""Data-pipeline throughput: decode -> sample -> transform, against its physical limit and the naive way.

For each file and sampling strategy (TSN 8 segments, dense 16x2, dense 32x2) three costs are
measured in alternation within one run:

- **ours**: ``open_video`` + ``sample_indices`` + ``get_frames`` (+ the model transform);
- **naive**: decode every frame with RGB conversion, then index;
- **limit**: the least work any decoder must do for these indices: decode (no colour conversion)
  from the keyframe before each wanted frame up to it, convert only the wanted frames. It is computed
  from unit costs measured on the same file in the same run: ``frames_to_decode * decode_cost +
  wanted * convert_cost`` (decode cost per frame from a full decode without conversion, conversion
  cost per frame from converting frames of that decode).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from actionrec.bench.timing import interleaved
from actionrec.data import decode
from actionrec.data.decode import decode_all, keyframe_positions, open_video
from actionrec.data.sampling import SamplingConfig, sample_indices
from actionrec.data.transforms import build_transform

STRATEGIES: dict[str, SamplingConfig] = {
    "tsn8": SamplingConfig(mode="segment", num_segments=8),
    "dense16x2": SamplingConfig(mode="dense", clip_len=16, frame_interval=2),
    "dense32x2": SamplingConfig(mode="dense", clip_len=32, frame_interval=2),
}


@dataclass(frozen=True)
class UnitCosts:
    """Per-frame costs of one file: decoding without conversion, and RGB conversion alone."""

    num_frames: int
    decode_s: float
    convert_s: float


def unit_costs(path: str | Path) -> UnitCosts:
    """Decode every frame without conversion (timed), then time the RGB conversion of a sample of them."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        t0 = time.perf_counter()
        frames = list(container.decode(stream))
        decode = time.perf_counter() - t0
    sample = frames[:: max(1, len(frames) // 32)]
    t0 = time.perf_counter()
    for frame in sample:
        frame.to_ndarray(format="rgb24", threads=1)  # as the reader converts
    convert = (time.perf_counter() - t0) / len(sample)
    return UnitCosts(len(frames), decode / len(frames), convert)


def frames_to_decode(wanted: np.ndarray, keyframes: Sequence[int]) -> int:
    """Size of the union of [keyframe before w, w] over the wanted frames w: what any decoder must decode."""
    keys = np.asarray(sorted(keyframes), dtype=np.int64)
    covered = 0
    reach = -1  # last frame already decoded
    for w in np.unique(wanted).tolist():
        key = int(keys[np.searchsorted(keys, w, side="right") - 1])
        start = max(key, reach + 1)
        if start <= w:
            covered += w - start + 1
            reach = w
    return covered


def limit_seconds(wanted: np.ndarray, keyframes: Sequence[int], costs: UnitCosts) -> float:
    return frames_to_decode(wanted, keyframes) * costs.decode_s + len(np.unique(wanted)) * costs.convert_s


@dataclass(frozen=True)
class PipelineRow:
    file: str
    strategy: str
    frames: int
    keyframes: int
    wanted: int
    ours_clips_per_s: float
    ours_with_transform_clips_per_s: float
    naive_clips_per_s: float
    limit_clips_per_s: float
    decode_all_fps: float  # the raw decode-every-frame rate (no conversion)
    decode_all_rgb_fps: float  # decode every frame with conversion

    @property
    def over_limit(self) -> float:
        """Our time / the limit's time (1.0 = at the limit)."""
        return self.limit_clips_per_s / self.ours_clips_per_s

    @property
    def vs_naive(self) -> float:
        return self.ours_clips_per_s / self.naive_clips_per_s

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ours_over_limit": self.over_limit, "speedup_vs_naive": self.vs_naive}


def bench_file(path: str | Path, strategy: str, *, repeats: int = 5, seed: int = 0) -> PipelineRow:
    """One file, one strategy: ours, ours + transform, naive and the limit, timed in alternation."""
    cfg = STRATEGIES[strategy]
    rng = np.random.default_rng(seed)
    with open_video(path) as video:
        meta = video.metadata
    draws = [
        sample_indices(cfg, num_frames=meta.num_frames, fps=meta.fps, train=True, rng=rng)
        for _ in range(repeats + 1)
    ]
    transform = build_transform(
        train=False, crop_size=112, short_side=128, mean=(0.45,) * 3, std=(0.225,) * 3
    )
    it = iter(range(10**9))

    def ours(with_transform: bool = False) -> None:
        idx = draws[next(it) % len(draws)]
        decode._index_cache.clear()  # a dataset opens each file once an epoch: pay the demux scan every time
        with open_video(path) as v:
            frames = v.get_frames(idx.reshape(-1))
        if with_transform:
            transform(frames)

    def naive() -> None:
        decode_all(path)[draws[0].reshape(-1)]

    t_ours, t_full, t_naive = interleaved([ours, lambda: ours(True), naive], repeats=repeats, warmup=1)
    keys = keyframe_positions(path)
    costs = unit_costs(path)
    limit = float(np.median([limit_seconds(d.reshape(-1), keys, costs) for d in draws]))
    return PipelineRow(
        file=Path(path).name,
        strategy=strategy,
        frames=meta.num_frames,
        keyframes=len(keys),
        wanted=int(draws[0].size),
        ours_clips_per_s=t_ours.rate(1),
        ours_with_transform_clips_per_s=t_full.rate(1),
        naive_clips_per_s=t_naive.rate(1),
        limit_clips_per_s=1.0 / limit,
        decode_all_fps=1.0 / costs.decode_s,
        decode_all_rgb_fps=1.0 / (costs.decode_s + costs.convert_s),
    )


class _ClipDataset(torch.utils.data.Dataset):
    """Files x repeats -> transformed clips: the DataLoader part of the benchmark."""

    def __init__(self, files: Sequence[Path], cfg: SamplingConfig, repeats: int) -> None:
        self.files, self.cfg, self.repeats = list(files), cfg, repeats
        self.transform = build_transform(
            train=True, crop_size=112, short_side=128, mean=(0.45,) * 3, std=(0.225,) * 3
        )

    def __len__(self) -> int:
        return len(self.files) * self.repeats

    def __getitem__(self, i: int) -> torch.Tensor:
        path = self.files[i % len(self.files)]
        rng = np.random.default_rng(i)
        with open_video(path) as v:
            idx = sample_indices(
                self.cfg, num_frames=v.metadata.num_frames, fps=v.metadata.fps, train=True, rng=rng
            )
            return self.transform(v.get_frames(idx[0]))


def bench_loader(files: Sequence[Path], strategy: str, *, workers: int, repeats: int = 4) -> dict[str, Any]:
    """Clips/s through a DataLoader (batch 1) with ``workers`` worker processes, warm-up excluded."""
    ds = _ClipDataset(files, STRATEGIES[strategy], repeats)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=1, num_workers=workers, persistent_workers=workers > 0
    )
    it = iter(loader)
    next(it)  # start workers, fill caches
    t0 = time.perf_counter()
    n = sum(1 for _ in it)
    rate = n / (time.perf_counter() - t0)
    return {"strategy": strategy, "workers": workers, "clips": n, "clips_per_s": rate}


def bench_prepared(
    path: str | Path, strategy: str, work_dir: str | Path, *, gop: int = 16, repeats: int = 5, seed: int = 0
) -> dict[str, Any]:
    """What ``actionrec prepare`` buys: one file's clips/s as it is, re-encoded, and as JPEG frames.

    Both prepared copies keep the original size (``short_side=0``), so the ratios isolate the keyframe
    interval (``gop``) and the container; each source is timed in alternation with the others.
    """
    from actionrec.data.prepare import PrepareConfig, prepare_video

    path, work = Path(path), Path(work_dir)
    sources = {"original": (path, "pyav")}
    for mode, suffix, backend in (("reencode", ".mp4", "pyav"), ("frames", "", "frames")):
        out = work / f"{path.stem}_{mode}{suffix}"
        prepare_video(path, out, PrepareConfig(short_side=0, gop=gop, mode=mode))
        sources[mode] = (out, backend)
    cfg, rng = STRATEGIES[strategy], np.random.default_rng(seed)
    with open_video(path) as video:
        n, fps = video.metadata.num_frames, video.metadata.fps
    draws = [sample_indices(cfg, num_frames=n, fps=fps, train=True, rng=rng).reshape(-1) for _ in range(8)]

    def loader(source: Path, backend: str) -> Any:
        it = iter(range(10**9))

        def load() -> None:
            decode._index_cache.clear()
            with open_video(source, backend) as v:
                v.get_frames(draws[next(it) % len(draws)])

        return load

    timings = interleaved([loader(*s) for s in sources.values()], repeats=repeats, warmup=1)
    rates = {name: t.rate(1) for name, t in zip(sources, timings)}
    return {
        "file": path.name,
        "strategy": strategy,
        "gop": gop,
        **{f"{name}_clips_per_s": rate for name, rate in rates.items()},
        "reencode_speedup": rates["reencode"] / rates["original"],
        "frames_speedup": rates["frames"] / rates["original"],
    }
