"""``actionrec probe``: what the decoder sees in each video (size, fps, exact frame count, rotation, codec).

Good videos are printed as a table (or a JSON list with ``--json``); every video that cannot be read is
reported as one line on stderr, and the exit code is 2 if there was any. Each video's first and last
frames are decoded (the last from its keyframe on), which catches files that are cut short or break
before their end; ``--verify`` decodes every frame to catch damage in the middle too.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from actionrec.data.decode import BACKENDS, PyAVReader, VideoMetadata, VideoReader, open_video
from actionrec.errors import ActionrecError

COLUMNS = ("path", "backend", "codec", "size", "fps", "frames", "duration", "rotation")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "probe",
        help="print video metadata (size, fps, frame count, rotation)",
        description="Open each video with the chosen decoding backend and print its metadata: size after "
        "rotation, fps, exact frame count, duration, rotation and codec.",
        epilog="example:\n  actionrec probe data/videos/*.mp4 --verify\n"
        "  actionrec probe clip.avi --json --backend opencv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (or folders of frames)")
    p.add_argument("--json", action="store_true", help="print a JSON list of metadata instead of a table")
    p.add_argument("--backend", choices=BACKENDS, default="pyav", help="decoding backend (default: pyav)")
    p.add_argument(
        "--verify", action="store_true",
        help="decode every frame (slower) so files that open but break midway are reported as bad",
    )  # fmt: skip
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="time limit per video, seconds")
    return p


def _row(m: VideoMetadata) -> tuple[str, ...]:
    return (
        m.path, m.backend, m.codec, f"{m.width}x{m.height}", f"{m.fps:.3f}", str(m.num_frames),
        f"{m.duration:.2f}s", str(m.rotation),
    )  # fmt: skip


def format_table(metas: list[VideoMetadata]) -> str:
    rows = [COLUMNS, *(_row(m) for m in metas)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def decode_every_frame(video: VideoReader, chunk: int = 64) -> None:
    """Decode the whole video (without colour conversion where the backend allows) or raise."""
    n = video.metadata.num_frames
    if isinstance(video, PyAVReader):
        for _ in video.iter_raw(np.arange(n)):
            pass
        return
    for start in range(0, n, chunk):
        video.get_frames(np.arange(start, min(n, start + chunk)))


def run(args: argparse.Namespace) -> int:
    metas: list[VideoMetadata] = []
    bad = 0
    for path in args.videos:
        try:
            with open_video(path, args.backend, timeout_s=args.timeout) as video:
                if args.verify:
                    decode_every_frame(video)
                else:
                    video.get_frames([video.metadata.num_frames - 1])
                metas.append(video.metadata)
        except ActionrecError as e:
            bad += 1
            print(f"actionrec probe: {e}", file=sys.stderr)
    if args.json:
        print(json.dumps([m.to_dict() for m in metas], indent=2))
    elif metas:
        print(format_table(metas))
    return 2 if bad else 0
