"""Video decoding on the real shared videos and on edge cases generated with PyAV."""

from __future__ import annotations

import ast
import functools
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from actionrec.data.decode import (
    BackendUnavailableError,
    FrameIndexError,
    PyAVReader,
    decode_all,
    keyframe_positions,
    list_backends,
    open_video,
)
from actionrec.data.decode import opencv as opencv_backend
from actionrec.errors import ConfigError, VideoDecodeError

GOOD = [
    "arm_wrestling.mp4", "carphone.mp4", "eye_makeup.avi", "pool_cleaning.mp4", "rotation_0.mov",
    "rotation_90.mov", "unlabeled/clip01.mp4", "unlabeled/clip02.avi", "unlabeled/clip03.mkv",
    "unlabeled/clip04.mp4", "unlabeled/clip05.mp4", "unlabeled/clip06.mp4", "unlabeled/clip07.gif",
]  # fmt: skip


@functools.cache
def _reference(path: str) -> np.ndarray:
    """Every frame from a plain sequential PyAV decode: the oracle for the seeking reader."""
    return decode_all(path)


def _smooth(n: int, h: int = 48, w: int = 64) -> np.ndarray:
    """(n, h, w, 3) uint8 gradients that move over time, smooth enough for 4:2:0 chroma."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = [
        np.stack([x * 3 + 4 * t, y * 4 + 20, np.full_like(x, 60.0 + 25 * t)], axis=-1) for t in range(n)
    ]  # n x (h, w, 3) -> (n, h, w, 3)
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def _write(path: Path, frames: np.ndarray, *, pix_fmt: str, codec: str = "libx264") -> Path:
    """Encode frames ((n, h, w, 3) RGB, or (n, h, w) grey) with PyAV, losslessly where the codec can."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        stream.options = {"qp": "0"} if codec == "libx264" else {}
        for array in frames:
            frame = av.VideoFrame.from_ndarray(array, format="gray" if array.ndim == 2 else "rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


# -------------------------------------------------------------------------------- facts and metadata


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("arm_wrestling.mp4", [0, 187, 230, 268]),
        ("pool_cleaning.mp4", [0, 235]),
        ("eye_makeup.avi", [0]),
        ("unlabeled/clip01.mp4", [0]),
        ("unlabeled/clip05.mp4", list(range(0, 420, 60))),
    ],
)
def test_keyframe_index_matches_known_keyframes(videos_dir: Path, name: str, expected: list[int]) -> None:
    assert keyframe_positions(videos_dir / name) == expected


def test_clip02_has_twelve_keyframes_in_141_frames(videos_dir: Path) -> None:
    with open_video(videos_dir / "unlabeled/clip02.avi") as video:
        assert video.metadata.num_frames == 141
        assert len(video.index.keyframes) == 12


@pytest.mark.parametrize(
    ("name", "size", "fps", "frames", "codec"),
    [
        ("arm_wrestling.mp4", (340, 256), 28.0, 280, "h264"),
        ("pool_cleaning.mp4", (340, 256), 30.0, 300, "h264"),
        ("eye_makeup.avi", (320, 240), 25.0, 164, "mpeg4"),
        ("unlabeled/clip03.mkv", (426, 240), 30.0, 310, "h264"),  # OpenCV's own estimate says 311
    ],
)
def test_metadata_of_known_files(
    videos_dir: Path, name: str, size: tuple[int, int], fps: float, frames: int, codec: str
) -> None:
    m = open_video(videos_dir / name).metadata
    assert (m.width, m.height, m.num_frames, m.codec, m.backend) == (*size, frames, codec, "pyav")
    assert m.fps == pytest.approx(fps) and m.duration == pytest.approx(frames / fps)
    assert m.path == str(videos_dir / name) and m.rotation == 0


# ----------------------------------------------------------------------- seeking == sequential decode


@pytest.mark.parametrize("name", GOOD)
def test_sparse_reads_equal_sequential_decode(videos_dir: Path, name: str) -> None:
    path = str(videos_dir / name)
    full = _reference(path)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    with open_video(path) as video:
        n = video.metadata.num_frames
        assert full.shape == (n, video.metadata.height, video.metadata.width, 3)
        keys = video.index.keyframes
        index_sets = [
            np.array([n - 1, 0, n // 2, n // 2]),  # unsorted, repeated
            np.array([k for key in keys for k in (key - 1, key, key + 1) if 0 <= k < n]),
            *(rng.integers(0, n, size=rng.integers(1, 10)) for _ in range(6)),
        ]
        for idx in index_sets:
            got = video.get_frames(idx)
            assert got.dtype == np.uint8 and got.shape == (len(idx), *full.shape[1:])
            np.testing.assert_array_equal(got, full[idx], err_msg=f"{name} indices {idx.tolist()}")


def test_open_gop_keyframes_map_to_output_positions(tmp_path: Path) -> None:
    """With open GOPs, B-frames decoded after a keyframe display before it: keyframe packets 0, 17, 37 ...
    in decode order are output positions 0, 20, 40 ...; seeks must skip the leading pictures."""
    noise = np.random.default_rng(0).integers(-20, 20, size=(90, 64, 96, 3))
    frames = np.clip(_smooth(90, 64, 96) + noise, 0, 255).astype(np.uint8)
    path = tmp_path / "open_gop.mp4"
    x264 = "keyint=20:min-keyint=20:scenecut=0:open-gop=1:bframes=3"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {"x264-params": x264, "crf": "30"}
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    assert [i for i, p in enumerate(packets) if p.is_keyframe][1] < 20  # really open: leading B-frames
    assert keyframe_positions(path) == [0, 20, 40, 60, 80]
    full = decode_all(path)
    video = open_video(path)
    for idx in ([20], [19, 41], [60, 0, 85], [38, 39, 40, 41], list(range(0, 90, 7))):
        np.testing.assert_array_equal(video.get_frames(idx), full[idx], err_msg=str(idx))
    assert video.stats.seeks > 0 and video.stats.restarts == 0


def test_sparse_read_seeks_instead_of_decoding_through(videos_dir: Path) -> None:
    video = open_video(videos_dir / "arm_wrestling.mp4")  # keyframes 0, 187, 230, 268; 280 frames
    before = video.stats.frames_decoded
    video.get_frames([270])
    assert video.stats.seeks == 1 and video.stats.frames_decoded - before < 20
    video.get_frames([189, 240])  # 240 lies beyond keyframe 230: seek again rather than decode 190..239
    assert video.stats.seeks == 3 and video.stats.frames_converted == 3
    assert video.stats.frames_decoded - before < 20 + 2 + 10 + 2 * 8  # each seek decodes a few frames ahead
    video.get_frames([241, 245])  # forward in the same GOP: no seek
    assert video.stats.seeks == 3 and video.stats.restarts == 0


def test_iter_raw_yields_unconverted_frames_in_order(videos_dir: Path) -> None:
    with open_video(videos_dir / "pool_cleaning.mp4") as video:
        assert isinstance(video, PyAVReader)
        out = list(video.iter_raw([250, 3, 3, 240]))
        assert [i for i, _ in out] == [3, 240, 250]
        assert all(isinstance(f, av.VideoFrame) for _, f in out)
        assert video.stats.frames_converted == 0
        np.testing.assert_array_equal(out[0][1].to_ndarray(format="rgb24"), video.get_frames([3])[0])


# --------------------------------------------------------------------------------- pyav vs opencv


@pytest.mark.parametrize("name", GOOD)
def test_pyav_and_opencv_agree(videos_dir: Path, name: str) -> None:
    path = str(videos_dir / name)
    with open_video(path, "opencv") as cv_video:
        full = _reference(path)
        m = cv_video.metadata
        assert m.backend == "opencv" and m.num_frames == len(full)
        assert (m.height, m.width) == full.shape[1:3]
        picks = [0, len(full) // 2, len(full) - 1]
        diff = np.abs(cv_video.get_frames(picks).astype(np.int16) - full[picks]).mean(axis=(1, 2, 3))
        assert diff.max() < 3, f"{name}: mean abs diff per frame {diff}"


class _CountingCapture:
    """A thin wrapper round ``cv2.VideoCapture`` that counts the calls that decode a frame."""

    def __init__(self, made: list[_CountingCapture], *args: Any) -> None:
        self._cap, self.decodes = _REAL_CAPTURE(*args), 0
        made.append(self)

    def grab(self) -> bool:
        self.decodes += 1
        return self._cap.grab()

    def read(self) -> tuple[bool, np.ndarray | None]:
        self.decodes += 1
        return self._cap.read()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cap, name)


_REAL_CAPTURE = cv2.VideoCapture


def test_opencv_open_decodes_no_frame(videos_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(videos_dir / "arm_wrestling.mp4")
    cap = _REAL_CAPTURE(path)  # the oracle: OpenCV read sequentially from the start
    expected = np.stack([cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(6)])
    cap.release()
    made: list[_CountingCapture] = []
    monkeypatch.setattr(opencv_backend.cv2, "VideoCapture", functools.partial(_CountingCapture, made))
    video = open_video(path, "opencv")
    m = video.metadata
    assert (m.num_frames, m.width, m.height, m.fps, m.rotation) == (280, 340, 256, pytest.approx(28.0), 0)
    assert sum(c.decodes for c in made) == 0  # opening decoded no frame
    np.testing.assert_array_equal(video.get_frames([5, 2]), expected[[5, 2]])
    assert sum(c.decodes for c in made) == 6 and len(made) == 1  # grab 0, 1, read 2, grab 3, 4, read 5
    np.testing.assert_array_equal(video.get_frames([1]), expected[[1]])  # going back reopens the file
    assert sum(c.decodes for c in made) == 8 and len(made) == 2
    video.close()


def test_rotation_metadata_is_applied(videos_dir: Path) -> None:
    upright, turned = open_video(videos_dir / "rotation_0.mov"), open_video(videos_dir / "rotation_90.mov")
    assert (upright.metadata.width, upright.metadata.height, upright.metadata.rotation) == (568, 320, 0)
    assert (turned.metadata.width, turned.metadata.height, turned.metadata.rotation) == (320, 568, 90)
    with av.open(str(videos_dir / "rotation_90.mov")) as container:  # stored frames, no rotation applied
        stored = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    got = turned.get_frames([0, 1, 2])
    assert stored.shape == (3, 320, 568, 3) and got.shape == (3, 568, 320, 3)
    np.testing.assert_array_equal(got, np.rot90(stored, k=-1, axes=(1, 2)))  # display matrix -90: clockwise
    assert np.abs(got.astype(np.int16) - np.rot90(stored, k=1, axes=(1, 2))).mean() > 20
    cv_frames = open_video(videos_dir / "rotation_90.mov", "opencv").get_frames([0, 2])
    assert np.abs(cv_frames.astype(np.int16) - got[[0, 2]]).mean() < 3


# ---------------------------------------------------------------------------------------- bad input


def _truncated(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


BAD_CASES = [
    "missing", "empty", "text", "corrupted", "half:arm_wrestling.mp4", "half:unlabeled/clip04.mp4",
    "half:eye_makeup.avi", "half:unlabeled/clip03.mkv", "half:unlabeled/clip07.gif",
]  # fmt: skip


def _bad_file(case: str, videos_dir: Path, tmp_path: Path) -> Path:
    if case == "missing":
        return tmp_path / "nope.mp4"
    if case == "empty":
        (tmp_path / "empty.mp4").write_bytes(b"")
        return tmp_path / "empty.mp4"
    if case == "text":
        (tmp_path / "notes.mp4").write_text("this is a text file renamed to .mp4\n" * 40)
        return tmp_path / "notes.mp4"
    if case == "corrupted":
        return videos_dir / "corrupted.mp4"
    name = case.split(":", 1)[1]
    return _truncated(videos_dir / name, tmp_path / f"half_{Path(name).name}")


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_files_raise_video_decode_error(
    videos_dir: Path, tmp_path: Path, case: str, backend: str
) -> None:
    path = _bad_file(case, videos_dir, tmp_path)
    with pytest.raises(VideoDecodeError) as info, open_video(path, backend) as video:
        video.get_frames(np.arange(video.metadata.num_frames))  # fails at open or, at the latest, here
    assert info.value.path == str(path) and str(path) in str(info.value)
    assert info.value.reason and "\n" not in str(info.value)


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_out_of_range_indices(videos_dir: Path, backend: str) -> None:
    video = open_video(videos_dir / "rotation_0.mov", backend)  # 3 frames
    for bad in ([3], [-1], [0, 1, 99]):
        with pytest.raises(FrameIndexError, match=r"out of range for a video of 3 frames"):
            video.get_frames(bad)
    assert issubclass(FrameIndexError, IndexError)
    with pytest.raises(TypeError):
        video.get_frames(np.array([0.5]))
    assert video.get_frames([]).shape == (0, 320, 568, 3)


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_time_limit(videos_dir: Path, backend: str) -> None:
    with pytest.raises(VideoDecodeError, match="time limit of 1e-09 s"):
        open_video(videos_dir / "carphone.mp4", backend, timeout_s=1e-9).get_frames([119])
    with pytest.raises(ConfigError, match="timeout_s"):
        open_video(videos_dir / "carphone.mp4", backend, timeout_s=0)


def test_unknown_backend_and_file_given_to_frames(videos_dir: Path) -> None:
    with pytest.raises(ConfigError, match="unknown video backend"):
        open_video(videos_dir / "carphone.mp4", "decord")
    with pytest.raises(VideoDecodeError, match="needs a folder"):
        open_video(videos_dir / "carphone.mp4", "frames")


# ------------------------------------------------------------------------------- generated edge cases


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_single_frame_video(tmp_path: Path, backend: str) -> None:
    frames = _smooth(1)
    video = open_video(_write(tmp_path / "one.mp4", frames, pix_fmt="yuv420p"), backend)
    assert video.metadata.num_frames == 1 and (video.metadata.width, video.metadata.height) == (64, 48)
    got = video.get_frames([0, 0])
    assert got.shape == (2, 48, 64, 3) and np.abs(got.astype(np.int16) - frames[[0, 0]]).mean() < 3
    with pytest.raises(FrameIndexError):
        video.get_frames([1])


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_grayscale_video_decodes_to_rgb(tmp_path: Path, backend: str) -> None:
    grey = _smooth(4)[..., 0]
    path = _write(tmp_path / "grey.mkv", grey, pix_fmt="gray", codec="ffv1")
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "gray"
    got = open_video(path, backend).get_frames([3, 0])
    assert got.dtype == np.uint8 and got.shape == (2, 48, 64, 3)
    expected = np.repeat(grey[[3, 0], ..., None], 3, axis=-1)  # (2, H, W) -> (2, H, W, 3)
    assert np.abs(got.astype(np.int16) - expected).max() <= 1


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_ten_bit_video_decodes_to_8_bit_rgb(tmp_path: Path, backend: str) -> None:
    frames = _smooth(4)
    path = _write(tmp_path / "ten.mp4", frames, pix_fmt="yuv420p10le")
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p10le"
    got = open_video(path, backend).get_frames([0, 1, 2, 3])
    assert got.dtype == np.uint8
    assert np.abs(got.astype(np.int16) - frames).mean() < 3  # a wrong bit depth would be off by ~100s


def test_video_shorter_than_requested_indices(tmp_path: Path) -> None:
    video = open_video(_write(tmp_path / "short.mp4", _smooth(5), pix_fmt="yuv420p"))
    assert len(video) == 5
    with pytest.raises(FrameIndexError, match="frame index 8 is out of range"):
        video.get_frames([0, 4, 8, 12])


# ------------------------------------------------------------------------------ frames and torchcodec


def test_frames_backend_reads_rawframes_folder(tmp_path: Path) -> None:
    frames = _smooth(5)
    for i, rgb in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"img_{i + 1:05d}.jpg"), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 98])
    (tmp_path / "meta.json").write_text(json.dumps({"fps": 12.5}))
    video = open_video(tmp_path)  # a folder always goes to the frames backend
    m = video.metadata
    assert (m.backend, m.num_frames, m.fps, m.width, m.height, m.codec) == ("frames", 5, 12.5, 64, 48, "jpg")
    got = video.get_frames([4, 0, 4])
    assert np.abs(got.astype(np.int16) - frames[[4, 0, 4]]).mean() < 2


def test_frames_backend_sorts_pngs_naturally(tmp_path: Path) -> None:
    for i in (1, 2, 10):
        cv2.imwrite(str(tmp_path / f"frame{i}.png"), np.full((8, 6, 3), i, np.uint8))
    video = open_video(tmp_path, "frames")
    assert video.metadata.fps == 30.0 and video.metadata.num_frames == 3
    np.testing.assert_array_equal(video.get_frames([0, 1, 2])[:, 0, 0, 0], [1, 2, 10])


def test_frames_backend_errors(tmp_path: Path) -> None:
    with pytest.raises(VideoDecodeError, match=r"no \S+ frames"):
        open_video(tmp_path, "frames")
    (tmp_path / "img_00001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(VideoDecodeError, match="unreadable image"):
        open_video(tmp_path, "frames")


def test_list_backends() -> None:
    available = list_backends()
    assert {"pyav", "opencv", "frames"} <= set(available)


def test_torchcodec_absent_is_a_clear_error(videos_dir: Path) -> None:
    if "torchcodec" in list_backends():
        pytest.skip("torchcodec is installed and loads here")
    with pytest.raises(BackendUnavailableError, match="torchcodec backend cannot load"):
        open_video(videos_dir / "carphone.mp4", "torchcodec")


def test_torchcodec_agrees_with_pyav(videos_dir: Path) -> None:
    if "torchcodec" not in list_backends():
        pytest.skip("torchcodec is not installed or cannot load its FFmpeg libraries")
    path = str(videos_dir / "arm_wrestling.mp4")
    video = open_video(path, "torchcodec")
    assert video.metadata.num_frames == 280
    idx = [0, 200, 279]
    assert np.abs(video.get_frames(idx).astype(np.int16) - _reference(path)[idx]).mean() < 3


def _avi_claiming(tmp_path: Path, frames: int, claim: int) -> Path:
    """An MPEG-4 AVI of ``frames`` frames whose headers (avih dwTotalFrames, strh dwLength) say ``claim``."""
    path = tmp_path / "real.avi"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width = stream.height = 64
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 5, np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    data = bytearray(path.read_bytes())
    assert data[24:28] == b"avih"
    strh = data.find(b"strh")
    data[48:52] = data[strh + 40 : strh + 44] = struct.pack("<I", claim)
    lying = tmp_path / f"claims_{claim}.avi"
    lying.write_bytes(bytes(data))
    with av.open(str(lying)) as c:
        assert c.streams.video[0].frames == claim  # the container now lies
    return lying


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_container_lying_about_its_frame_count(tmp_path: Path, backend: str) -> None:
    # Too few promised: the real frames are counted and all of them decode.
    with open_video(_avi_claiming(tmp_path, 40, 20), backend) as video:
        assert video.metadata.num_frames == 40
        assert video.get_frames([39]).mean() == pytest.approx(195, abs=3)
    # Far more promised than present looks exactly like a file cut short: one clear error.
    with pytest.raises(VideoDecodeError, match="40 frames present, the container promises ~80"):
        open_video(_avi_claiming(tmp_path, 40, 80), backend)


# ------------------------------------------------------------------------------------ package layout

_DECODE_MODULES = ["base", "pyav", "opencv", "torchcodec", "frames"]


@pytest.mark.parametrize("module", _DECODE_MODULES)
def test_decode_modules_import_first_without_a_cycle(module: str) -> None:
    """Each module of the package imports on its own in a fresh interpreter, and none of them imports
    the package's ``__init__`` (which imports them): no import cycle whichever is imported first."""
    name = f"actionrec.data.decode.{module}"
    proc = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    tree = ast.parse(Path(opencv_backend.__file__).with_name(f"{module}.py").read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    relative = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]
    assert "actionrec.data.decode" not in imported and not relative
