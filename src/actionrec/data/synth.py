"""The synthetic motion benchmark: classes that only motion can tell apart.

Every class is defined by how one main object (or the camera) moves; shapes, colours, textures,
backgrounds, distractor objects, camera jitter, pixel noise, speed, start position and clip length
are random nuisances. The classes come in pairs that differ only in direction or time order
(:data:`SYNTH_PAIRS`); the second class of every pair is rendered as the first one played backwards
(with its own random draw), so any statistic that ignores frame order — the mean frame, the set of
frames, a per-frame classifier averaged over the clip — has exactly the same distribution for both
classes of a pair. The world is a torus (the background is periodic and objects wrap around the
edges), so the object's position in any single frame is uniform for every translation class too.

:func:`generate_synthetic` writes real H.264 mp4 files (yuv420p, a keyframe every ``gop`` frames so
sparse access stays cheap) in class folders plus ``classInd.txt`` / ``trainlist01.txt`` /
``testlist01.txt`` in the UCF101 layout, so the UCF101 parser reads it, and a ``synthetic.json`` /
``README.md`` describing classes and parameters. Output is a pure function of the arguments (each
video is seeded by ``(seed, class name, video number)``, independent of workers and class subset).

Next to every video it writes the ground-truth boxes of what it drew (``<video stem>.boxes.json``, the
format of :mod:`actionrec.data.boxes`): per frame, the main object (score 1) and each distractor (score
0.5), in pixels of the frame: the bounding box of the sprite's visible pixels carried through the
rotation, scale, camera zoom and jitter of that frame. An object drawn at under
:data:`BOX_MIN_OPACITY` opacity (``appear`` / ``disappear`` at their start / end) has no box. On the
torus an object crossing an edge is drawn in pieces; each visible piece gets its own box (the extent
of that piece's pixels on screen), so a wrapped object gives two (at a corner four) boxes.
Boxes never consume random numbers: the videos are the same with or without them.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from tqdm import tqdm

from actionrec.data.boxes import write_boxes
from actionrec.errors import ConfigError

SYNTH_PAIRS: dict[str, tuple[str, str]] = {
    "horizontal": ("move_right", "move_left"),
    "vertical": ("move_down", "move_up"),
    "rotation": ("rotate_cw", "rotate_ccw"),
    "zoom": ("zoom_in", "zoom_out"),
    "depth": ("approach", "recede"),
    "presence": ("appear", "disappear"),
}
SYNTH_SINGLES: tuple[str, ...] = ("bounce", "stay_still")
SYNTH_CLASSES: tuple[str, ...] = tuple(c for pair in SYNTH_PAIRS.values() for c in pair) + SYNTH_SINGLES
# class -> the class it is the time reversal of
_REVERSED_OF: dict[str, str] = {b: a for a, b in SYNTH_PAIRS.values()}
_SHAPES = ("circle", "ellipse", "square", "rectangle", "triangle", "diamond", "star", "cross", "hexagon")
FORMAT_VERSION = 1
BOX_MIN_OPACITY = 0.2
_BOX_SCORES = (1.0, 0.5)  # main object, distractors


@dataclass(frozen=True)
class SynthParams:
    """Rendering parameters shared by every clip of one benchmark."""

    size: int = 48
    num_frames: int = 32  # the longest clip; lengths vary in [(1 - length_jitter) * num_frames, num_frames]
    fps: int = 16
    length_jitter: float = 0.25
    gop: int = 8
    crf: int = 18


@dataclass(frozen=True)
class Track:
    """Per-frame state of the main object and the camera (arrays of length n, pixel units).

    ``angle`` is in degrees, counter-clockwise as displayed (OpenCV's convention); ``x``/``y`` are
    unwrapped torus coordinates (take them modulo ``size`` for the on-screen position).
    """

    x: np.ndarray
    y: np.ndarray
    angle: np.ndarray
    scale: np.ndarray
    alpha: np.ndarray
    zoom: np.ndarray

    def reversed(self) -> Track:
        return Track(*(v[::-1].copy() for v in asdict(self).values()))


@dataclass(frozen=True)
class SynthClip:
    frames: np.ndarray  # (n, S, S, 3) uint8 RGB
    track: Track
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))  # (K, 6) frame, x1, y1, x2, y2, score

    def reversed(self) -> SynthClip:
        """The clip played backwards (frames, track and box frame indices)."""
        boxes = self.boxes.copy()
        boxes[:, 0] = len(self.frames) - 1 - boxes[:, 0]
        order = np.argsort(boxes[:, 0], kind="stable")
        return SynthClip(self.frames[::-1].copy(), self.track.reversed(), boxes[order])


# ---------------------------------------------------------------- motions (forward classes only)
def _still(rng: np.random.Generator, w: np.ndarray, size: int) -> Track:
    """The nuisance state every motion starts from: random place, angle, zoom; nothing moves."""
    one = np.ones_like(w)
    x, y = rng.uniform(0, size, 2)
    return Track(
        x * one, y * one, rng.uniform(0, 360) * one, one.copy(), one.copy(), rng.uniform(1.0, 1.25) * one
    )


def _move(axis: str) -> Callable[[np.random.Generator, np.ndarray, int], Track]:
    def motion(rng: np.random.Generator, w: np.ndarray, size: int) -> Track:
        t = _still(rng, w, size)
        shift = rng.uniform(0.3, 0.5) * size * w  # centred on the clip's middle: time-reversal symmetric
        return Track(**{**asdict(t), axis: getattr(t, axis) + shift})

    return motion


def _rotate_cw(rng: np.random.Generator, w: np.ndarray, size: int) -> Track:
    t = _still(rng, w, size)
    return Track(**{**asdict(t), "angle": t.angle - rng.uniform(150, 240) * w})


def _zoom_in(rng: np.random.Generator, w: np.ndarray, size: int) -> Track:
    t = _still(rng, w, size)
    span = math.log(rng.uniform(1.7, 2.3))
    log_zoom = span / 2 + rng.uniform(0, 0.15) + span * w  # zoom >= 1: the camera never shows the edge
    return Track(**{**asdict(t), "zoom": np.exp(log_zoom)})


def _approach(rng: np.random.Generator, w: np.ndarray, size: int) -> Track:
    t = _still(rng, w, size)
    ratio = rng.uniform(2.6, 3.6)
    return Track(**{**asdict(t), "scale": ratio**w, "alpha": 0.675 + 0.65 * w, "zoom": np.ones_like(w)})


def _appear(rng: np.random.Generator, w: np.ndarray, size: int) -> Track:
    t = _still(rng, w, size)
    start, length = rng.uniform(0.1, 0.4), rng.uniform(0.25, 0.45)
    alpha = np.clip((w + 0.5 - start) / length, 0.0, 1.0)
    return Track(**{**asdict(t), "alpha": alpha, "scale": 0.5 + 0.5 * alpha})


def _bounce(rng: np.random.Generator, w: np.ndarray, size: int) -> Track:
    t = _still(rng, w, size)
    amplitude, cycles = rng.uniform(0.12, 0.2) * size, rng.uniform(1.0, 1.5)
    phase = cycles * (w + 0.5) + rng.uniform(0, 1)
    tri = 4 * np.abs(phase - np.floor(phase + 0.5)) - 1  # triangle wave in [-1, 1], >= 2 turns a cycle
    heading = rng.uniform(0, 2 * math.pi)
    return Track(
        **{
            **asdict(t),
            "x": t.x + amplitude * tri * math.cos(heading),
            "y": t.y + amplitude * tri * math.sin(heading),
        }
    )


_MOTIONS: dict[str, Callable[[np.random.Generator, np.ndarray, int], Track]] = {
    "move_right": _move("x"),
    "move_down": _move("y"),
    "rotate_cw": _rotate_cw,
    "zoom_in": _zoom_in,
    "approach": _approach,
    "appear": _appear,
    "bounce": _bounce,
    "stay_still": _still,
}


# ---------------------------------------------------------------- drawing
def _periodic_noise(rng: np.random.Generator, size: int, channels: int, scale: float) -> np.ndarray:
    """Smooth noise that tiles the torus: white noise low-passed in the Fourier domain, in [-1, 1]."""
    f = np.fft.fftfreq(size)
    radius2 = f[:, None] ** 2 + f[None, :] ** 2  # (S, S)
    gain = np.exp(-radius2 * (scale * size) ** 2 / 2)[..., None]
    field = np.fft.ifft2(
        np.fft.fft2(rng.standard_normal((size, size, channels)), axes=(0, 1)) * gain, axes=(0, 1)
    ).real
    return field / (np.abs(field).max() + 1e-6)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random periodic background (S, S, 3) float32 in [0, 255]: noise, gradient or both."""
    base = rng.uniform(40, 215, 3)
    kind = rng.choice(["noise", "gradient", "both", "fine"])
    img = np.zeros((size, size, 3))
    if kind in ("gradient", "both"):
        k = rng.integers(-2, 3, 2) + np.array([0, 1])  # never (0, 0)
        yy, xx = np.mgrid[0:size, 0:size] / size
        wave = np.cos(2 * math.pi * (k[0] * xx + k[1] * yy) + rng.uniform(0, 2 * math.pi))
        img += wave[..., None] * rng.uniform(-35, 35, 3)
    if kind in ("noise", "both"):
        img += _periodic_noise(rng, size, 3, rng.uniform(0.05, 0.15)) * rng.uniform(15, 40)
    if kind == "fine":
        img += _periodic_noise(rng, size, 1, rng.uniform(0.01, 0.03)) * rng.uniform(15, 35)
    return np.clip(base + img, 0, 255).astype(np.float32)


def _shape_points(rng: np.random.Generator, shape: str) -> np.ndarray:
    """Polygon vertices of a shape of radius ~1 around the origin, (K, 2)."""
    if shape in ("circle", "ellipse"):
        aspect = 1.0 if shape == "circle" else rng.uniform(0.45, 0.7)
        a = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        return np.stack([np.cos(a), aspect * np.sin(a)], 1)
    if shape == "star":
        a = np.linspace(0, 2 * math.pi, 10, endpoint=False)
        r = np.where(np.arange(10) % 2 == 0, 1.0, rng.uniform(0.4, 0.55))
        return np.stack([r * np.cos(a), r * np.sin(a)], 1)
    if shape == "cross":
        t = rng.uniform(0.3, 0.45)
        return np.array(
            [
                [-t, -1],
                [t, -1],
                [t, -t],
                [1, -t],
                [1, t],
                [t, t],
                [t, 1],
                [-t, 1],
                [-t, t],
                [-1, t],
                [-1, -t],
                [-t, -t],
            ]
        )
    if shape == "rectangle":
        h = rng.uniform(0.4, 0.6)
        return np.array([[-1, -h], [1, -h], [1, h], [-1, h]])
    corners = {"square": 4, "triangle": 3, "diamond": 4, "hexagon": 6}[shape]
    a = np.linspace(0, 2 * math.pi, corners, endpoint=False) + (math.pi / 4 if shape == "square" else 0)
    pts = np.stack([np.cos(a), np.sin(a)], 1)
    return pts * (np.array([0.6, 1.0]) if shape == "diamond" else 1.0)


def _colour_far_from(rng: np.random.Generator, ref: np.ndarray, min_dist: float = 110.0) -> np.ndarray:
    for _ in range(32):
        c = rng.uniform(0, 255, 3)
        if np.linalg.norm(c - ref) >= min_dist:
            return c
    return 255.0 - ref  # the complement is always far enough from a mid-range colour


def _sprite(rng: np.random.Generator, radius: float, colour: np.ndarray, textured: bool) -> np.ndarray:
    """A premultiplied RGBA sprite (2R+4, 2R+4, 4) float32 of a random shape and texture."""
    side = math.ceil(2 * radius) + 4
    c = side / 2
    pts = _shape_points(rng, str(rng.choice(_SHAPES))) * radius + c
    mask = np.zeros((side, side), np.uint8)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    alpha = mask.astype(np.float32) / 255
    rgb = np.broadcast_to(colour.astype(np.float32), (side, side, 3)).copy()
    if textured:
        yy, xx = (np.mgrid[0:side, 0:side] - c) / radius
        # Only patterns without rotational symmetry: a checker or stripes turning by a few degrees a
        # frame is ambiguous in direction at this resolution, which made rotate_cw/ccw unlearnable.
        kind = rng.choice(["halves", "spot", "halves_spot"])
        half = xx * math.cos(rng.uniform(0, 6.3)) + yy * math.sin(rng.uniform(0, 6.3)) > 0
        spot = (xx - 0.45) ** 2 + yy**2 < 0.12
        pattern = {"halves": half, "spot": spot, "halves_spot": half ^ spot}[str(kind)]
        second = colour * rng.uniform(0.2, 0.5) if colour.mean() > 110 else colour + (255 - colour) * 0.6
        rgb = np.where(pattern[..., None], second.astype(np.float32), rgb)
    return np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=2)


def _paste(
    world: np.ndarray, sprite: np.ndarray, x: float, y: float, angle: float, scale: float, alpha: float
) -> None:
    """Composite a sprite onto the torus ``world`` in place, centred at (x, y) modulo the size."""
    size = world.shape[0]
    if alpha <= 0.0:
        return
    x, y = x % size, y % size
    ix, iy = int(x), int(y)
    c = sprite.shape[0] / 2
    m = cv2.getRotationMatrix2D((c, c), float(angle), float(scale))
    m[:, 2] += (size / 2 + x - ix - c, size / 2 + y - iy - c)  # sprite centre -> frame centre + fraction
    layer = cv2.warpAffine(sprite, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    layer = np.roll(layer, (iy - size // 2, ix - size // 2), axis=(0, 1))  # wrap around the torus
    a = layer[..., 3:] * alpha
    world *= 1.0 - a
    world += layer[..., :3] * alpha


def _camera(world: np.ndarray, centre: tuple[float, float], zoom: float, dx: float, dy: float) -> np.ndarray:
    """Zoom the torus ``world`` about ``centre`` (kept in place on screen) and shift it by (dx, dy)."""
    m = cv2.getRotationMatrix2D(centre, 0.0, float(zoom))
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(world, m, world.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


# ---------------------------------------------------------------- ground-truth boxes
def _sprite_points(sprite: np.ndarray) -> np.ndarray:
    """Pixel centres (K, 2) ``x, y`` of the pixels a sprite covers at least half."""
    ys, xs = np.nonzero(sprite[..., 3] > 0.5)  # at least half covered
    return np.stack([xs, ys], 1).astype(np.float64)


def _screen_boxes(
    points: np.ndarray,
    side: int,
    pose: tuple[float, float, float, float],
    size: int,
    camera: tuple[tuple[float, float], float, float, float],
) -> list[tuple[float, float, float, float]]:
    """The boxes of a sprite's visible pieces on screen: ``pose`` is ``(x, y, angle, scale)`` as
    :func:`_paste` takes it, ``camera`` ``(centre, zoom, dx, dy)`` as :func:`_camera` does."""
    x, y, angle, scale = pose
    (cx, cy), zoom, dx, dy = camera
    c = side / 2
    rot = cv2.getRotationMatrix2D((c, c), float(angle), float(scale))[:, :2]
    world = (points - c) @ rot.T + (x % size, y % size)  # (K, 2): _paste puts pixel p at R(p - c) + (x, y)
    centre = np.array([cx, cy])
    # pixel-index coordinates -> box coordinates (pixel i spans [i, i + 1)): + 0.5
    screen = zoom * (world - centre) + centre + (dx, dy) + 0.5  # (K, 2)
    pad = 0.5 * scale * zoom  # a pixel centre stands for a pixel
    out = []
    for kx in (-1, 0, 1):  # the torus repeats with period `size` in the world, zoom * size on screen
        for ky in (-1, 0, 1):
            piece = screen + zoom * size * np.array([kx, ky])
            piece = piece[((piece >= 0) & (piece <= size)).all(1)]  # the part of this copy on screen
            if len(piece) == 0:
                continue
            x1, y1 = np.clip(piece.min(0) - pad, 0, size)
            x2, y2 = np.clip(piece.max(0) + pad, 0, size)
            out.append((float(x1), float(y1), float(x2), float(y2)))
    return out


# ---------------------------------------------------------------- one clip
def _clip_length(rng: np.random.Generator, params: SynthParams) -> int:
    low = max(2, math.ceil(params.num_frames * (1 - params.length_jitter)))
    return int(rng.integers(low, params.num_frames + 1))


def _render(rng: np.random.Generator, motion: str, params: SynthParams) -> SynthClip:
    size, n = params.size, _clip_length(rng, params)
    w = np.linspace(-0.5, 0.5, n)  # normalised time, centred on the middle frame
    track = _MOTIONS[motion](rng, w, size)
    background = _background(rng, size)
    obj = _sprite(rng, rng.uniform(0.21, 0.32) * size, _colour_far_from(rng, background.mean((0, 1))), True)
    n_distract = int(rng.integers(0, 3))
    distractors = [
        _sprite(rng, rng.uniform(0.03, 0.06) * size, rng.uniform(0, 255, 3), False) for _ in range(n_distract)
    ]
    d_start = rng.uniform(0, size, (n_distract, 2))
    d_velocity = rng.normal(0, 0.15 * size, (n_distract, 2))  # pixels per clip, random direction
    jitter = rng.normal(0, rng.uniform(0.0, 0.5), (n, 2))
    noise_sigma = rng.uniform(1.0, 4.0)
    centre = (
        float(track.x[n // 2] % size),
        float(track.y[n // 2] % size),
    )  # the camera zooms onto the object
    frames = np.empty((n, size, size, 3), np.uint8)
    obj_points = _sprite_points(obj)
    d_points = [_sprite_points(d) for d in distractors]
    rows: list[tuple[float, ...]] = []
    for i in range(n):
        camera = (centre, float(track.zoom[i]), *map(float, jitter[i]))
        if track.alpha[i] >= BOX_MIN_OPACITY:
            pose = (track.x[i], track.y[i], track.angle[i], track.scale[i])
            rows += [
                (i, *b, _BOX_SCORES[0]) for b in _screen_boxes(obj_points, obj.shape[0], pose, size, camera)
            ]
        for sprite, points, p0, v in zip(distractors, d_points, d_start, d_velocity):
            pose = (*(p0 + v * w[i]), 0.0, 1.0)
            rows += [
                (i, *b, _BOX_SCORES[1]) for b in _screen_boxes(points, sprite.shape[0], pose, size, camera)
            ]
        world = background.copy()
        for sprite, p0, v in zip(distractors, d_start, d_velocity):
            _paste(world, sprite, *(p0 + v * w[i]), 0.0, 1.0, 1.0)
        _paste(world, obj, track.x[i], track.y[i], track.angle[i], track.scale[i], track.alpha[i])
        frame = _camera(world, centre, track.zoom[i], *jitter[i]) + rng.normal(
            0, noise_sigma, (size, size, 3)
        )
        frames[i] = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    return SynthClip(frames, track, np.array(rows, np.float64).reshape(-1, 6))


def _video_rng(seed: int, class_name: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(class_name.encode()), index]))


def make_clip(
    class_name: str, *, seed: int = 0, index: int = 0, params: SynthParams | None = None
) -> SynthClip:
    """Render one clip of ``class_name`` in memory; the same one :func:`generate_synthetic` encodes."""
    if class_name not in SYNTH_CLASSES:
        raise ConfigError(f"unknown synthetic class {class_name!r}; known: {', '.join(SYNTH_CLASSES)}")
    rng = _video_rng(seed, class_name, index)
    params = params or SynthParams()
    forward = _REVERSED_OF.get(class_name)
    if forward is None:
        return _render(rng, class_name, params)
    return _render(rng, forward, params).reversed()  # the forward motion played backwards


# ---------------------------------------------------------------- files
def write_mp4(path: str | Path, frames: np.ndarray, *, fps: int, gop: int = 8, crf: int = 18) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as H.264 yuv420p mp4 (no B-frames, keyframe every ``gop``)."""
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.thread_count = 1  # deterministic and cheap inside a worker pool
        stream.options = {
            "crf": str(crf),
            "preset": "fast",
            "bf": "0",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
        }
        for frame in frames:
            yuv = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p", threads=1)
            container.mux(stream.encode(yuv))  # one swscale thread, as in decoding: 3-4x cheaper
        container.mux(stream.encode(None))


def _write_one(job: tuple[str, str, int, int, SynthParams]) -> tuple[str, int]:
    out_dir, class_name, index, seed, params = job
    clip = make_clip(class_name, seed=seed, index=index, params=params)
    rel = f"{class_name}/{class_name}_{index:04d}.mp4"
    write_mp4(Path(out_dir) / rel, clip.frames, fps=params.fps, gop=params.gop, crf=params.crf)
    n, height, width = clip.frames.shape[:3]
    box_path = Path(out_dir) / f"{class_name}/{class_name}_{index:04d}.boxes.json"
    write_boxes(box_path, clip.boxes, width=width, height=height, num_frames=n)
    return rel, len(clip.frames)


def _worker_init() -> None:
    cv2.setNumThreads(1)


def _split(names: Sequence[str], videos_per_class: int, seed: int) -> tuple[list[str], list[str]]:
    """Stratified ~80/20 split: per class a seeded choice of round(n / 5) (>= 1) test videos."""
    train, test = [], []
    n_test = max(1, round(videos_per_class / 5))
    for name in names:
        order = np.random.default_rng([seed, zlib.crc32(name.encode())]).permutation(videos_per_class)
        is_test = set(order[:n_test].tolist())
        for i in range(videos_per_class):
            (test if i in is_test else train).append((name, i))
    return [f"{c}/{c}_{i:04d}.mp4" for c, i in train], [f"{c}/{c}_{i:04d}.mp4" for c, i in test]


def _check_args(classes: Sequence[str], videos_per_class: int, size: int, num_frames: int, fps: int) -> None:
    unknown = [c for c in classes if c not in SYNTH_CLASSES]
    if unknown:
        raise ConfigError(f"unknown synthetic classes {unknown}; known: {', '.join(SYNTH_CLASSES)}")
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise ConfigError(f"synthetic classes must be >= 2 distinct names, got {list(classes)}")
    if videos_per_class < 2:
        raise ConfigError(f"videos_per_class must be >= 2 (train and test), got {videos_per_class}")
    if size < 16 or size % 2:
        raise ConfigError(f"size must be an even number >= 16 (yuv420p), got {size}")
    if num_frames < 4 or fps < 1:
        raise ConfigError(f"need num_frames >= 4 and fps >= 1, got {num_frames} and {fps}")


def _write_index(out: Path, classes: Sequence[str], train: list[str], test: list[str]) -> None:
    label = {c: i + 1 for i, c in enumerate(classes)}  # UCF101 class ids are 1-based
    (out / "classInd.txt").write_text("".join(f"{label[c]} {c}\n" for c in classes))
    (out / "trainlist01.txt").write_text("".join(f"{p} {label[p.split('/')[0]]}\n" for p in train))
    (out / "testlist01.txt").write_text("".join(f"{p}\n" for p in test))


def _write_description(out: Path, info: dict[str, object]) -> None:
    (out / "synthetic.json").write_text(json.dumps(info, indent=2) + "\n")
    pairs = "\n".join(f"- {k}: {a} / {b}" for k, (a, b) in SYNTH_PAIRS.items())
    (out / "README.md").write_text(
        "# actionrec synthetic motion benchmark\n\n"
        "Classes are defined by motion only; every pair below differs only in direction or time order\n"
        "(the second class is the first played backwards), so a single frame cannot tell them apart.\n\n"
        f"{pairs}\n\nClasses: {', '.join(info['classes'])}\n\n"  # type: ignore[arg-type]
        "Layout: UCF101 (classInd.txt, trainlist01.txt, testlist01.txt); parameters in synthetic.json.\n"
    )


def generate_synthetic(
    out_dir: str | Path,
    *,
    classes: Sequence[str] | None = None,
    videos_per_class: int = 50,
    size: int = 48,
    num_frames: int = 32,
    fps: int = 16,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = False,
) -> Path:
    """Write the synthetic motion benchmark to ``out_dir`` (UCF101 layout) and return its path.

    ``classes`` defaults to :data:`SYNTH_CLASSES`; labels follow the order given. Clip lengths vary
    in [0.75 * num_frames, num_frames]. ``workers`` defaults to the number of CPUs (at most 8).
    """
    classes = list(classes or SYNTH_CLASSES)
    _check_args(classes, videos_per_class, size, num_frames, fps)
    params = SynthParams(size=size, num_frames=num_frames, fps=fps)
    out = Path(out_dir)
    for c in classes:
        (out / c).mkdir(parents=True, exist_ok=True)
    jobs = [(str(out), c, i, seed, params) for c in classes for i in range(videos_per_class)]
    workers = max(1, workers if workers is not None else min(os.cpu_count() or 1, 8))
    bar = tqdm(total=len(jobs), desc="synth", unit="video", disable=not progress)
    lengths: dict[str, int] = {}
    with bar:
        if workers == 1:
            results = map(_write_one, jobs)
            for rel, n in results:
                lengths[rel] = n
                bar.update()
        else:
            with ProcessPoolExecutor(workers, mp_context=_mp_context(), initializer=_worker_init) as pool:
                for rel, n in pool.map(_write_one, jobs, chunksize=4):
                    lengths[rel] = n
                    bar.update()
    train, test = _split(classes, videos_per_class, seed)
    _write_index(out, classes, train, test)
    _write_description(
        out,
        {
            "format_version": FORMAT_VERSION,
            "classes": classes,
            "pairs": SYNTH_PAIRS,
            "params": asdict(params),
            "seed": seed,
            "videos_per_class": videos_per_class,
            "num_train": len(train),
            "num_test": len(test),
            "total_frames": sum(lengths.values()),
        },
    )
    return out


def _mp_context() -> multiprocessing.context.BaseContext:
    # Not fork: a child forked after the parent used OpenCV's (or OpenMP's) thread pool deadlocks on its
    # first parallel call. The workers import only numpy, OpenCV and PyAV, so spawning is cheap.
    return multiprocessing.get_context("spawn")
