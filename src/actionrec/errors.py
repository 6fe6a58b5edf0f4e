"""The project's exceptions.

Every error a user can cause (a bad video, a bad weights file, a bad config, a bad dataset layout)
is an :class:`ActionrecError`; the command line prints its message as one line and exits with 2.
"""

from __future__ import annotations

from pathlib import Path


class ActionrecError(Exception):
    """Base class of every error caused by bad input rather than by a bug."""


class VideoDecodeError(ActionrecError):
    """A video that is missing, empty, truncated, not a video, or too slow to decode."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class WeightsError(ActionrecError):
    """A weights file that cannot be loaded into the requested model."""


class ConfigError(ActionrecError):
    """A configuration with an unknown key, a wrong type or an impossible value."""


class DatasetError(ActionrecError):
    """A dataset whose structure (split files, class index, labels) is wrong."""
