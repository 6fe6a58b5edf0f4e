"""The one atomic file writer: checkpoints, weights, configs, results and feature arrays all go through it.

A file is written to a temporary file in the destination folder, flushed, ``fsync``-ed and moved over
the destination with ``os.replace``, so a crash at any moment leaves either the old or the new file,
never a torn one. The temporary name is ``.<name>.<random>.tmp``; a process killed mid-write leaves
such a file behind, which :func:`remove_stale_temp_files` clears.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Test hook: called with the temporary file's path after it is written and before it replaces the target.
before_replace: Callable[[Path], None] | None = None


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; skipped where a folder cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Any], None]) -> Path:
    """Call ``write(binary_file)`` on a temp file next to ``path``, fsync it and move it over ``path``.

    The parent folder is created if needed. If ``write`` (or anything before the rename) raises, the
    temp file is removed and ``path`` keeps its old contents.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; outputs are ordinary files
        if before_replace is not None:
            before_replace(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete temp files left in ``folder`` by a process killed in the middle of :func:`atomic_write`."""
    stale = list(Path(folder).glob(".*.tmp"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale
