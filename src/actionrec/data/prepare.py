"""Prepare a video collection for fast training: re-encode with short GOPs, or extract JPEG frames.

Sparse frame sampling costs a decode from the keyframe before each wanted frame, so a source with
one keyframe every 250 frames pays for up to 249 unwanted frames per clip. ``prepare_tree`` rewrites
every video under ``src`` into ``dst`` (same relative paths) either as H.264 with a keyframe every
``gop`` frames at a chosen short side (``mode="reencode"``), or as a folder of JPEGs in the rawframes
layout (``img_00001.jpg`` ... plus ``meta.json`` with the fps) that the ``frames`` backend reads.

Work is spread over processes, is resumable (an output that exists is complete: every output is
written under a temporary name and renamed at the end) and ends with a done/skipped/failed summary.
Audio is dropped; rotation metadata is applied to the pixels, so outputs are stored upright.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from actionrec.data.decode import iter_frames, open_video
from actionrec.errors import ActionrecError, ConfigError

VIDEO_EXTENSIONS = (
    ".mp4", ".avi", ".mkv", ".mov", ".webm", ".gif", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp",
)  # fmt: skip
PARTIAL = ".partial"


@dataclass(frozen=True)
class PrepareConfig:
    """How to prepare each video. ``short_side=0`` keeps the original size."""

    short_side: int = 256
    gop: int = 16
    mode: str = "reencode"  # "reencode" | "frames"
    crf: int = 18
    preset: str = "fast"
    jpeg_quality: int = 95
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS
    timeout_s: float = 3600.0  # per video

    def __post_init__(self) -> None:
        if self.mode not in ("reencode", "frames"):
            raise ConfigError(f"prepare mode must be 'reencode' or 'frames', got {self.mode!r}")
        if self.short_side < 0 or self.gop < 1:
            raise ConfigError(f"need short_side >= 0 and gop >= 1, got {self.short_side} and {self.gop}")


@dataclass
class PrepareSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason naming the file)

    def line(self) -> str:
        return f"done {len(self.done)}, skipped {len(self.skipped)}, failed {len(self.failed)}"


def find_videos(src: Path, extensions: Sequence[str] = VIDEO_EXTENSIONS) -> list[Path]:
    """Every file under ``src`` whose suffix is one of ``extensions`` (case-insensitive), sorted."""
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    found = (p for p in src.rglob("*") if p.suffix.lower() in exts and PARTIAL not in p.name)
    return sorted(p for p in found if p.is_file())


def output_path(src: Path, dst: Path, video: Path, mode: str) -> Path:
    """Where ``video`` goes: same relative path, ``.mp4`` for re-encodes, a folder (no suffix) for frames."""
    rel = video.relative_to(src)
    return dst / rel.with_suffix(".mp4" if mode == "reencode" else "")


def target_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side scaled to ``short_side``, both even (as 4:2:0 needs)."""
    if short_side:
        scale = short_side / min(width, height)
        width, height = round(width * scale), round(height * scale)
    return max(2, width // 2 * 2), max(2, height // 2 * 2)


def _resized(frames: Iterator[np.ndarray], size: tuple[int, int]) -> Iterator[np.ndarray]:
    for rgb in frames:
        if (rgb.shape[1], rgb.shape[0]) == size:
            yield rgb
        else:
            shrink = size[0] < rgb.shape[1]
            yield cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _reencode(video: Path, tmp: Path, cfg: PrepareConfig, fps: float, size: tuple[int, int]) -> int:
    rate = Fraction(fps).limit_denominator(100_000)
    with av.open(str(tmp), mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.codec_context.time_base = 1 / rate
        stream.codec_context.gop_size = cfg.gop
        stream.options = {
            "crf": str(cfg.crf), "preset": cfg.preset,
            "x264-params": f"keyint={cfg.gop}:min-keyint={cfg.gop}:scenecut=0",
        }  # fmt: skip
        n = 0
        for n, rgb in enumerate(_resized(iter_frames(video, timeout_s=cfg.timeout_s), size), start=1):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = n - 1
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode())
    return n


def _extract(video: Path, tmp: Path, cfg: PrepareConfig, fps: float, size: tuple[int, int]) -> int:
    tmp.mkdir(parents=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality]
    n = 0
    for n, rgb in enumerate(_resized(iter_frames(video, timeout_s=cfg.timeout_s), size), start=1):
        if not cv2.imwrite(str(tmp / f"img_{n:05d}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
            raise OSError(f"could not write {tmp / f'img_{n:05d}.jpg'}")
    (tmp / "meta.json").write_text(json.dumps({"fps": fps, "num_frames": n, "source": str(video)}))
    return n


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def prepare_video(video: Path, out: Path, cfg: PrepareConfig) -> str:
    """Prepare one video into ``out``; returns "done" or "skipped" (output already complete)."""
    if out.exists():
        return "skipped"
    with open_video(video, timeout_s=cfg.timeout_s) as reader:
        meta = reader.metadata
    size = target_size(meta.width, meta.height, cfg.short_side)
    tmp = out.with_name(f"{out.stem}{PARTIAL}{out.suffix}")
    _remove(tmp)  # left over by an interrupted run
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        write = _reencode if cfg.mode == "reencode" else _extract
        if write(video, tmp, cfg, meta.fps, size) == 0:
            raise ActionrecError(f"{video}: no frames decoded")
        os.replace(tmp, out)  # atomic: a half-written output never carries the final name
    finally:
        _remove(tmp)
    return "done"


def _work(job: tuple[Path, Path, PrepareConfig]) -> tuple[str, str, str]:
    """One job in a worker; any failure becomes a reported line so one bad file cannot stop the batch."""
    video, out, cfg = job
    try:
        return str(video), prepare_video(video, out, cfg), ""
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        reason = first if isinstance(e, ActionrecError) else f"{video}: {type(e).__name__}: {first}"
        return str(video), "failed", reason


def prepare_tree(
    src: str | Path, dst: str | Path, cfg: PrepareConfig, *, workers: int = 1, progress: bool = True
) -> PrepareSummary:
    """Prepare every video under ``src`` into ``dst``, ``workers`` processes at a time."""
    from tqdm import tqdm

    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise ConfigError(f"{src}: source folder not found")
    if dst.resolve().is_relative_to(src.resolve()):
        raise ConfigError(f"{dst}: the destination must not lie inside the source folder {src}")
    summary = PrepareSummary()
    jobs, owner = [], {}
    for video in find_videos(src, cfg.extensions):
        out = output_path(src, dst, video, cfg.mode)
        if out in owner:  # e.g. a.avi and a.mp4 side by side would both become a.mp4
            reason = f"{video}: output {out} already taken by {owner[out].relative_to(src)}"
            summary.failed.append((str(video.relative_to(src)), reason))
            continue
        owner[out] = video
        jobs.append((video, out, cfg))
    bar = tqdm(total=len(jobs), desc=f"prepare ({cfg.mode})", unit="video", disable=not progress)
    with bar:
        for video, status, reason in _run(jobs, workers):
            rel = str(Path(video).relative_to(src))
            if status == "failed":
                summary.failed.append((rel, reason))
            else:
                getattr(summary, status).append(rel)
            bar.update()
            bar.set_postfix_str(summary.line(), refresh=False)
    return summary


def _run(jobs: list[tuple[Path, Path, PrepareConfig]], workers: int) -> Iterator[tuple[str, str, str]]:
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_work, jobs)
        return
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ctx.Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap_unordered(_work, jobs)
