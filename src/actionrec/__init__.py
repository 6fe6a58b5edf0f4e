"""actionrec: video action recognition, from single-frame CNNs to SlowFast, with a fast data pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actionrec.errors import ActionrecError, ConfigError, DatasetError, VideoDecodeError, WeightsError

if TYPE_CHECKING:
    from actionrec.data.decode import open_video
    from actionrec.engine.fast import fast_inference
    from actionrec.layers.inflate import inflate
    from actionrec.models.registry import create_model, example_input, get_card, list_models

__version__ = "0.1.0"

__all__ = [
    "ActionrecError",
    "ConfigError",
    "DatasetError",
    "VideoDecodeError",
    "WeightsError",
    "__version__",
    "create_model",
    "example_input",
    "fast_inference",
    "get_card",
    "inflate",
    "list_models",
    "open_video",
]


_REGISTRY_NAMES = ("create_model", "example_input", "get_card", "list_models")


def __getattr__(name: str) -> Any:  # lazy: `import actionrec` does not import torch
    if name in _REGISTRY_NAMES:
        from actionrec.models import registry

        return getattr(registry, name)
    if name == "open_video":
        from actionrec.data.decode import open_video

        return open_video
    if name == "fast_inference":
        from actionrec.engine.fast import fast_inference

        return fast_inference
    if name == "inflate":
        from actionrec.layers.inflate import inflate

        return inflate
    raise AttributeError(f"module 'actionrec' has no attribute {name!r}")
