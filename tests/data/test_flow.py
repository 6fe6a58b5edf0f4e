"""Optical flow: recovered shifts, quantisation, and resumable extraction into the rawframes layout."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from actionrec.data.flow import (
    DONE_MARKER,
    compute_flow,
    dequantize_flow,
    extract_flow,
    is_complete,
    quantize_flow,
)
from actionrec.errors import VideoDecodeError, WeightsError

SIDE, SQUARE, DX, DY = 64, 24, 2, 1


def moving_square(num_frames: int = 4, seed: int = 0) -> np.ndarray:
    """A smoothly textured square moving (DX, DY) px per frame over a flat background, uint8 RGB."""
    noise = np.random.default_rng(seed).uniform(0, 255, (SQUARE, SQUARE)).astype(np.float32)
    texture = cv2.normalize(cv2.GaussianBlur(noise, (0, 0), 1.5), None, 30, 230, cv2.NORM_MINMAX)
    frames = np.full((num_frames, SIDE, SIDE, 3), 90, dtype=np.uint8)
    for t in range(num_frames):
        y, x = 16 + t * DY, 12 + t * DX
        frames[t, y : y + SQUARE, x : x + SQUARE] = texture.astype(np.uint8)[:, :, None]
    return frames


def write_video(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize("method", ["farneback", "tvl1"])
def test_flow_recovers_square_shift(method: str) -> None:
    frames = moving_square()
    flow = compute_flow(frames, method=method)
    assert flow.shape == (3, SIDE, SIDE, 2) and flow.dtype == np.float32
    for t in range(3):
        y, x = 16 + t * DY + 6, 12 + t * DX + 6  # the square's interior, 6 px from its edges
        interior = flow[t, y : y + SQUARE - 12, x : x + SQUARE - 12]
        np.testing.assert_allclose(interior[..., 0], DX, atol=0.5)
        np.testing.assert_allclose(interior[..., 1], DY, atol=0.5)


def test_flow_of_too_few_frames_is_empty_and_bad_input_raises() -> None:
    assert compute_flow(moving_square(1), method="farneback").shape == (0, SIDE, SIDE, 2)
    with pytest.raises(ValueError, match="uint8"):
        compute_flow(moving_square().astype(np.float32))
    with pytest.raises(ValueError, match="unknown flow method"):
        compute_flow(moving_square(), method="lucas_kanade")


@pytest.mark.slow  # torchvision's RAFT import and 128 x 128 forward passes: seconds on a busy CPU
def test_raft_small_random_init_warns_and_local_weights_load(tmp_path: Path) -> None:
    from torchvision.models.optical_flow import raft_small

    frames = moving_square(2)[:, :36, :44]  # padded to RAFT's minimum of 128 x 128 inside, cropped back
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="random weights"):
        flow = compute_flow(frames, method="raft_small", num_flow_updates=1)
    assert flow.shape == (1, 36, 44, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()
    weights = tmp_path / "raft_small.pt"
    torch.save(raft_small().state_dict(), weights)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a weights file means no random-init warning
        flow = compute_flow(frames, method="raft_small", raft_weights=weights, num_flow_updates=1)
    assert flow.shape == (1, 36, 44, 2) and np.isfinite(flow).all()


def test_raft_weights_errors(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        compute_flow(moving_square(2), method="raft_small", raft_weights=tmp_path / "missing.pt")
    wrong = tmp_path / "wrong.pt"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(WeightsError, match="not raft_small weights"):
        compute_flow(moving_square(2), method="raft_small", raft_weights=wrong)


def test_quantize_round_trip_and_convention() -> None:
    flow = np.array([-25.0, -20.0, -3.3, 0.0, 0.04, 7.77, 20.0, 31.0], dtype=np.float32)
    q = quantize_flow(flow, bound=20)
    assert q.dtype == np.uint8
    assert q.tolist()[:2] == [0, 0] and q.tolist()[-2:] == [255, 255] and q[3] == 128
    back = dequantize_flow(q, bound=20)
    clipped = np.clip(flow, -20, 20)
    assert np.abs(back - clipped).max() <= 20 / 255 + 1e-6
    rng = np.random.default_rng(0)
    values = rng.uniform(-5, 5, 1000).astype(np.float32)
    assert np.abs(dequantize_flow(quantize_flow(values, 5.0), 5.0) - values).max() <= 5 / 255 + 1e-6


def test_extract_flow_writes_rawframes_and_resumes(tmp_path: Path) -> None:
    video = write_video(tmp_path / "square.mp4", moving_square(5))
    out = tmp_path / "flow" / "square"
    assert extract_flow(video, out, method="farneback", short_side=None, chunk_size=3) == out
    assert is_complete(out)
    names = sorted(p.name for p in out.iterdir())
    assert names == [DONE_MARKER] + [f"flow_{a}_{i:05d}.jpg" for a in "xy" for i in range(1, 5)]
    marker = json.loads((out / DONE_MARKER).read_text())
    assert marker["num_flows"] == 4 and (marker["height"], marker["width"]) == (SIDE, SIDE)
    x = cv2.imread(str(out / "flow_x_00002.jpg"), cv2.IMREAD_GRAYSCALE)
    y = cv2.imread(str(out / "flow_y_00002.jpg"), cv2.IMREAD_GRAYSCALE)
    interior = (slice(16 + DY + 6, 16 + DY + 18), slice(12 + DX + 6, 12 + DX + 18))
    assert abs(dequantize_flow(x[interior]).mean() - DX) < 0.5  # decoded (lossy) video, JPEG storage
    assert abs(dequantize_flow(y[interior]).mean() - DY) < 0.5

    # complete: left alone
    stamp = (out / "flow_x_00001.jpg").stat().st_mtime_ns
    extract_flow(video, out, method="farneback", short_side=None)
    assert (out / "flow_x_00001.jpg").stat().st_mtime_ns == stamp

    # interrupted run: no marker in the folder and a stale partial folder -> redone from scratch
    (out / DONE_MARKER).unlink()
    (out / "flow_x_00004.jpg").unlink()
    partial = out.parent / ".square.partial"
    partial.mkdir()
    (partial / "flow_x_00001.jpg").write_bytes(b"junk")
    extract_flow(video, out, method="farneback", short_side=32)
    assert is_complete(out) and (out / "flow_x_00004.jpg").is_file() and not partial.exists()
    assert cv2.imread(str(out / "flow_x_00004.jpg"), cv2.IMREAD_GRAYSCALE).shape == (32, 32)


def test_extract_flow_of_a_bad_video_leaves_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    with pytest.raises(VideoDecodeError):
        extract_flow(bad, tmp_path / "out" / "broken", method="farneback")
    assert list((tmp_path / "out").iterdir()) == []
