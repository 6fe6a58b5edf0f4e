"""The atomic writer: all or nothing, temp files next to the target, stale ones cleared."""

from __future__ import annotations

from pathlib import Path

import pytest

import actionrec.io
from actionrec.io import atomic_write, remove_stale_temp_files


def test_writes_creating_the_folder_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "new" / "x.bin"
    assert atomic_write(target, lambda f: f.write(b"data")) == target
    assert target.read_bytes() == b"data" and [p.name for p in target.parent.iterdir()] == ["x.bin"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "x.bin"
    atomic_write(str(target), lambda f: f.write(b"old"))

    def boom(f) -> None:
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, boom)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_the_temp_file_sits_next_to_the_target_and_stale_ones_are_cleared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Path] = []
    monkeypatch.setattr(actionrec.io, "before_replace", seen.append)
    atomic_write(tmp_path / "x.bin", lambda f: f.write(b"data"))
    (tmp,) = seen
    assert tmp.parent == tmp_path and tmp.name.startswith(".x.bin.") and tmp.suffix == ".tmp"
    stale = tmp_path / ".y.bin.abc.tmp"
    stale.write_bytes(b"half")
    assert remove_stale_temp_files(tmp_path) == [stale] and not stale.exists()
    assert (tmp_path / "x.bin").read_bytes() == b"data"


def test_outputs_get_ordinary_permissions(tmp_path: Path) -> None:
    """The temporary file is private while written; the output gets 0o666 less the umask, like any file."""
    import os

    old = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "out.bin", lambda f: f.write(b"x"))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
