from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from actionrec.data.decode.base import FrameIndexError
from actionrec.data.flow import DONE_MARKER, extract_flow, quantize_flow
from actionrec.data.flow_frames import FlowFramesReader, dequantize, stack_windows, window_indices
from actionrec.data.synth import SYNTH_CLASSES, SynthParams, make_clip, write_mp4
from actionrec.errors import VideoDecodeError

H, W = 12, 16


def write_flow_folder(folder: Path, count: int, *, prefix: str = "flow_", first: int = 1) -> Path:
    """Constant-valued flow JPEGs (JPEG stores flat images exactly): x = 10 + i, y = 200 - i for flow i."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        for axis, value in (("x", 10 + i), ("y", 200 - i)):
            image = np.full((H, W), value, dtype=np.uint8)
            assert cv2.imwrite(str(folder / f"{prefix}{axis}_{first + i:05d}.jpg"), image)
    return folder


@pytest.mark.parametrize(("prefix", "first"), [("flow_", 1), ("", 1), ("flow_", 0)])
def test_reads_exact_values_for_both_naming_schemes(tmp_path: Path, prefix: str, first: int) -> None:
    folder = write_flow_folder(tmp_path / "v", 5, prefix=prefix, first=first)
    (folder / "img_00001.jpg").write_bytes(b"rgb frames are not flow")
    reader = FlowFramesReader(folder)
    assert (reader.num_flows, len(reader), reader.frame_size, reader.prefix) == (5, 5, (H, W), prefix)
    flow = reader.get_flow([3, 0, 3])
    assert flow.dtype == np.uint8 and flow.shape == (3, H, W, 2)
    assert (flow[..., 0] == np.array([13, 10, 13])[:, None, None]).all()
    assert (flow[..., 1] == np.array([197, 200, 197])[:, None, None]).all()
    assert reader.get_flow([]).shape == (0, H, W, 2)
    assert reader.marker_bound() is None


def test_windows_are_clamped_at_the_clip_end(tmp_path: Path) -> None:
    reader = FlowFramesReader(write_flow_folder(tmp_path / "v", 5))
    assert window_indices(starts=[0, 3], length=4, num_flows=5).tolist() == [[0, 1, 2, 3], [3, 4, 4, 4]]
    stacks = stack_windows(reader, starts=[0, 3], length=4)
    assert stacks.shape == (2, 4, H, W, 2) and stacks.dtype == np.uint8
    assert stacks[..., 0, 0, 0].tolist() == [[10, 11, 12, 13], [13, 14, 14, 14]]
    assert stacks[..., 0, 0, 1].tolist() == [[200, 199, 198, 197], [197, 196, 196, 196]]
    with pytest.raises(ValueError, match="at least 1"):
        stack_windows(reader, starts=[0], length=0)


def test_out_of_range_indices(tmp_path: Path) -> None:
    reader = FlowFramesReader(write_flow_folder(tmp_path / "v", 3))
    with pytest.raises(FrameIndexError, match="flow index 3 is out of range for 3 flows"):
        reader.get_flow([0, 3])
    with pytest.raises(FrameIndexError, match="flow index -1"):
        reader.get_flow([-1])
    with pytest.raises(TypeError, match="integers"):
        reader.get_flow(np.array([0.5]))


def test_dequantize_inverts_the_writers_quantisation() -> None:
    values = np.random.default_rng(0).uniform(-25, 25, (4, H, W, 2)).astype(np.float32)
    back = dequantize(quantize_flow(values, 20.0), bound=20.0)
    assert back.dtype == np.float32
    assert np.abs(back - np.clip(values, -20, 20)).max() <= 20.0 / 255 + 1e-5
    assert dequantize(np.array([0, 255], dtype=np.uint8), bound=20.0).tolist() == [-20.0, 20.0]
    with pytest.raises(TypeError, match="uint8"):
        dequantize(values, bound=20.0)


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(VideoDecodeError, match="flow folder not found"):
        FlowFramesReader(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoDecodeError, match="no flow images"):
        FlowFramesReader(tmp_path / "empty")

    unpaired = write_flow_folder(tmp_path / "unpaired", 3)
    (unpaired / "flow_y_00002.jpg").unlink()
    with pytest.raises(VideoDecodeError, match=r"unpaired: flow_y_00002\.jpg is missing \(3 x and 2 y"):
        FlowFramesReader(unpaired)

    gap = write_flow_folder(tmp_path / "gap", 4)
    (gap / "flow_x_00002.jpg").unlink()
    (gap / "flow_y_00002.jpg").unlink()
    with pytest.raises(VideoDecodeError, match=r"flow_x_00002\.jpg and its y image are missing"):
        FlowFramesReader(gap)

    late = write_flow_folder(tmp_path / "late", 2, first=5)
    with pytest.raises(VideoDecodeError, match="start at number 5"):
        FlowFramesReader(late)

    both = write_flow_folder(tmp_path / "both", 2)
    write_flow_folder(both, 2, prefix="")
    with pytest.raises(VideoDecodeError, match="both flow_x"):
        FlowFramesReader(both)


def test_bad_images_are_reported_when_read(tmp_path: Path) -> None:
    folder = write_flow_folder(tmp_path / "v", 3)
    (folder / "flow_y_00002.jpg").write_bytes(b"not a jpeg")
    cv2.imwrite(str(folder / "flow_x_00003.jpg"), np.zeros((H, W + 2), dtype=np.uint8))
    reader = FlowFramesReader(folder)
    with pytest.raises(VideoDecodeError, match=r"flow_y_00002\.jpg is not a readable image"):
        reader.get_flow([1])
    with pytest.raises(VideoDecodeError, match=rf"flow_x_00003\.jpg is {W + 2}x{H}, expected {W}x{H}"):
        reader.get_flow([2])


def test_reads_what_actionrec_flow_writes_for_a_synthetic_video(tmp_path: Path) -> None:
    # one video of one class, rendered and encoded as generate_synthetic does (which needs >= 2 of each)
    params = SynthParams(size=48, num_frames=12)
    clip = make_clip(SYNTH_CLASSES[0], params=params)
    video = tmp_path / "clip.mp4"
    write_mp4(video, clip.frames, fps=params.fps)
    out = extract_flow(video, tmp_path / "flow" / video.stem, method="farneback", bound=15.0, short_side=None)
    marker = json.loads((out / DONE_MARKER).read_text())
    reader = FlowFramesReader(out)
    assert reader.num_flows == marker["num_flows"] == len(clip.frames) - 1 >= 2
    assert reader.frame_size == (marker["height"], marker["width"]) == (48, 48)
    assert reader.marker_bound() == 15.0
    last = reader.num_flows - 1
    flow = reader.get_flow([0, last])
    assert flow.shape == (2, 48, 48, 2) and flow.dtype == np.uint8
    on_disk = cv2.imread(str(out / f"flow_y_{last + 1:05d}.jpg"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(flow[1, ..., 1], on_disk)
    stacks = stack_windows(reader, starts=[0, last], length=5)
    assert stacks.shape == (2, 5, 48, 48, 2)
    np.testing.assert_array_equal(stacks[1], np.broadcast_to(flow[1], (5, 48, 48, 2)))
