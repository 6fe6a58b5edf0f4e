"""The synthetic motion benchmark: motions, pair symmetry, determinism and the files it writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from actionrec.data.annotations import parse_ucf101
from actionrec.data.decode import open_video
from actionrec.data.synth import (
    SYNTH_CLASSES,
    SYNTH_PAIRS,
    SynthParams,
    generate_synthetic,
    make_clip,
)
from actionrec.errors import ConfigError

SMALL = SynthParams(size=32, num_frames=12)


def test_class_table() -> None:
    assert len(SYNTH_CLASSES) >= 12 and len(set(SYNTH_CLASSES)) == len(SYNTH_CLASSES)
    paired = [c for pair in SYNTH_PAIRS.values() for c in pair]
    assert set(paired) <= set(SYNTH_CLASSES) and len(paired) == len(set(paired)) == 12
    assert {"bounce", "stay_still"} <= set(SYNTH_CLASSES)


def _unwrapped_delta(track_values: np.ndarray) -> float:
    return float(track_values[-1] - track_values[0])


def test_motions_follow_their_definition() -> None:
    clip = {c: make_clip(c, seed=3, params=SMALL) for c in SYNTH_CLASSES}
    assert _unwrapped_delta(clip["move_right"].track.x) > 0 > _unwrapped_delta(clip["move_left"].track.x)
    assert _unwrapped_delta(clip["move_down"].track.y) > 0 > _unwrapped_delta(clip["move_up"].track.y)
    assert (
        _unwrapped_delta(clip["rotate_ccw"].track.angle) > 0 > _unwrapped_delta(clip["rotate_cw"].track.angle)
    )
    assert clip["zoom_in"].track.zoom[-1] > clip["zoom_in"].track.zoom[0] >= 1.0
    approach = clip["approach"].track
    assert approach.scale[-1] > 2 * approach.scale[0] and approach.alpha[-1] > approach.alpha[0]
    assert clip["appear"].track.alpha[0] == 0.0 and clip["appear"].track.alpha[-1] == 1.0
    assert clip["disappear"].track.alpha[0] == 1.0 and clip["disappear"].track.alpha[-1] == 0.0
    still = clip["stay_still"].track
    assert np.ptp(still.x) == np.ptp(still.y) == np.ptp(still.angle) == np.ptp(still.scale) == 0
    bounce = np.diff(clip["bounce"].track.x)
    assert (bounce > 0).any() and (bounce < 0).any()  # it turns around
    for c in clip.values():
        assert c.frames.dtype == np.uint8 and c.frames.shape[1:] == (32, 32, 3)
        assert 9 <= len(c.frames) <= 12  # clip length varies in [0.75 T, T]


def test_first_frame_position_is_class_independent() -> None:
    """For every pair, the object's first-frame position covers the same range for both classes."""
    for a, b in SYNTH_PAIRS.values():
        starts = {
            c: np.array(
                [
                    [
                        make_clip(c, seed=0, index=i, params=SMALL).track.x[0] % 32,
                        make_clip(c, seed=0, index=i, params=SMALL).track.y[0] % 32,
                    ]
                    for i in range(24)
                ]
            )
            for c in (a, b)
        }
        for c in (a, b):  # roughly uniform over the whole frame for both classes
            assert starts[c].min() < 6 and starts[c].max() > 26, (c, starts[c].min(), starts[c].max())
        assert np.abs(starts[a].mean(0) - starts[b].mean(0)).max() < 8


def test_pairs_are_time_reversals_with_equal_mean_frames() -> None:
    """The mean frame ignores frame order: for a pair it cannot separate the classes."""
    for a, b in SYNTH_PAIRS.values():
        means = {
            c: np.stack([make_clip(c, seed=1, index=i, params=SMALL).frames.mean(0) for i in range(16)])
            for c in (a, b)
        }
        # nearest class centroid, leave-one-out, on the mean frame: no better than chance
        x = np.concatenate([means[a], means[b]]).reshape(32, -1)
        y = np.repeat([0, 1], 16)
        hits = 0
        for i in range(32):
            keep = np.arange(32) != i
            c0, c1 = (x[keep & (y == k)].mean(0) for k in (0, 1))
            hits += int((np.linalg.norm(x[i] - c1) < np.linalg.norm(x[i] - c0)) == y[i])
        assert hits <= 24, (a, b, hits)
    forward = make_clip("move_right", seed=0, params=SMALL)
    assert not np.array_equal(forward.frames[0], forward.frames[-1])


def test_make_clip_is_deterministic_and_validates() -> None:
    a, b = (
        make_clip("bounce", seed=5, index=2, params=SMALL),
        make_clip("bounce", seed=5, index=2, params=SMALL),
    )
    assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames[0], make_clip("bounce", seed=6, index=2, params=SMALL).frames[0])
    with pytest.raises(ConfigError, match="unknown synthetic class 'jump'"):
        make_clip("jump")


def _content_hash(root: Path) -> str:
    h = hashlib.sha256()
    for video in sorted(root.glob("*/*.mp4")):
        with open_video(video) as reader:
            h.update(reader.get_frames(np.arange(reader.metadata.num_frames)).tobytes())
    for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt"):
        h.update((root / name).read_bytes())
    return h.hexdigest()


def test_generate_writes_ucf101_layout(tmp_path: Path) -> None:
    classes = ["zoom_in", "zoom_out", "appear"]
    out = generate_synthetic(
        tmp_path / "a", classes=classes, videos_per_class=5, size=64, num_frames=12, fps=8, seed=4, workers=2
    )
    train, test = parse_ucf101(out, subset="train"), parse_ucf101(out, subset="test")
    assert train.classes == classes and len(train.samples) == 12 and len(test.samples) == 3
    assert sorted(y for _, y in test.samples) == [0, 1, 2]  # one test video per class (stratified)
    assert (out / "classInd.txt").read_text().splitlines()[0] == "1 zoom_in"
    info = json.loads((out / "synthetic.json").read_text())
    assert info["classes"] == classes and info["params"]["size"] == 64 and (out / "README.md").is_file()
    with open_video(out / train.samples[0][0]) as reader:
        meta = reader.metadata
        assert (meta.width, meta.height, meta.fps, meta.codec) == (64, 64, 8.0, "h264")
        assert 9 <= meta.num_frames <= 12
    # same seed -> same content, whatever the number of workers; another seed -> other content. (At the
    # default 64 px; at 32 px libx264's output varied between processes in 2 of 270 encodes.)
    again = generate_synthetic(
        tmp_path / "b", classes=classes, videos_per_class=5, size=64, num_frames=12, fps=8, seed=4, workers=1
    )
    other = generate_synthetic(
        tmp_path / "c", classes=classes, videos_per_class=5, size=64, num_frames=12, fps=8, seed=5, workers=1
    )
    assert _content_hash(out) == _content_hash(again) != _content_hash(other)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": ["move_left", "fly"]}, "unknown synthetic classes"),
        ({"classes": ["move_left"]}, ">= 2 distinct"),
        ({"videos_per_class": 1}, "videos_per_class must be >= 2"),
        ({"size": 33}, "even number"),
    ],
)
def test_generate_rejects_bad_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        generate_synthetic(tmp_path, **kwargs)
