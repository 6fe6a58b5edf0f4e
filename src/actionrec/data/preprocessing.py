"""One description of how videos become model input, read and written with one schema.

A :class:`Preprocessing` says which streams a model consumes (``rgb``, ``flow``, ``future``,
``boxes``), how frames are sampled, the crop and resize, and the normalisation of each stream. It is
made from a model card (:meth:`Preprocessing.from_card`), from a training config
(:meth:`Preprocessing.from_config`: the card with the recipe's ``sampling`` / ``input`` sections on
top), or read back from a weights card or checkpoint (:meth:`Preprocessing.from_dict`). Training
writes it beside the weights (:meth:`to_dict`); ``test``, ``predict`` and ``features`` read it from
there, so a model is always fed the way it was trained.

The dict schema is flat: ``{"schema": 1, "streams": [...], "sampling": "dense", "num_frames": 16,
..., "mean": [...], "std": [...]}``. Dicts written before the schema existed are read too (the
training loop's nested ``sampling`` mapping, and cards without ``streams``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from actionrec.data.streams import STREAMS
from actionrec.errors import ConfigError

SCHEMA = 1
FLOW_MEAN_STD = ((0.5, 0.5), (0.5, 0.5))  # quantised flow 0..255 -> [-1, 1] (TSN, I3D)
DEFAULT_CLIPS = {"dense": 10, "segment": 1, "uniform": 1, "fps": 1}  # predict's views per video


def recorded_preprocessing(path: str | Path) -> dict[str, Any] | None:
    """The ``preprocessing`` dict an actionrec weights file (``.safetensors``) or checkpoint (``.pt``)
    records, else None (other formats, files written without one)."""
    from actionrec.errors import ActionrecError

    path = Path(path)
    try:
        if path.suffix == ".pt":
            from actionrec.engine.checkpoint import load_checkpoint

            entry = load_checkpoint(path).get("preprocessing")
        else:
            from actionrec.weights import read_card

            entry = (read_card(path) or {}).get("preprocessing")
    except (ActionrecError, OSError):  # not one of ours: it records nothing
        return None
    return dict(entry) if isinstance(entry, Mapping) else None


def _presets() -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
    from actionrec.models.registry import NORMALIZATION

    return NORMALIZATION


@dataclass(frozen=True)
class Preprocessing:
    """Streams, sampling, geometry and normalisation of a model's input (see the module docstring).

    ``mean`` / ``std`` normalise the RGB streams (``rgb``, ``future``), ``flow_mean`` / ``flow_std``
    the quantised flow. ``future_frames`` frames after the clip, at the clip's frame interval, form
    the ``future`` stream. ``input_kind`` is the card's (``clip``, ``slowfast``, ``two_stream``).
    """

    streams: tuple[str, ...] = ("rgb",)
    sampling: str = "dense"
    num_frames: int = 16
    frame_interval: int = 1
    num_segments: int = 8
    snippet_len: int = 1
    fps: float | None = None
    max_frames: int | None = None
    crop_size: int = 112
    short_side: int = 128
    normalization: str = "kinetics"
    mean: tuple[float, ...] = (0.43216, 0.394666, 0.37645)
    std: tuple[float, ...] = (0.22803, 0.22145, 0.216989)
    flow_mean: tuple[float, ...] = FLOW_MEAN_STD[0]
    flow_std: tuple[float, ...] = FLOW_MEAN_STD[1]
    future_frames: int = 0
    input_kind: str = "clip"

    def __post_init__(self) -> None:
        unknown = [s for s in self.streams if s not in STREAMS]
        if not self.streams or unknown:
            raise ConfigError(f"streams {list(self.streams)}: each must be one of {', '.join(STREAMS)}")
        if not self.image_streams:
            raise ConfigError("streams: boxes need a frame stream (rgb) they refer to")
        if "future" in self.streams and self.future_frames < 1:
            raise ConfigError("the 'future' stream needs future_frames >= 1")
        if len(self.mean) != 3 or len(self.std) != 3 or len(self.flow_mean) != 2 or len(self.flow_std) != 2:
            raise ConfigError("mean/std need 3 values (RGB) and flow_mean/flow_std 2 (x, y)")

    # ------------------------------------------------------------ construction
    @classmethod
    def from_card(cls, card: Any) -> Preprocessing:
        """A model card's own preprocessing."""
        mean, std = _presets()[card.normalization]
        rgb_norm = card.normalization if len(mean) == 3 else "kinetics"
        flow_mean, flow_std = (mean, std) if len(mean) == 2 else FLOW_MEAN_STD
        return cls(
            streams=tuple(card.streams),
            sampling=card.sampling,
            num_frames=card.num_frames,
            frame_interval=card.frame_interval,
            num_segments=max(1, card.num_frames // card.snippet_len),
            snippet_len=card.snippet_len,
            fps=card.fps,
            max_frames=card.max_frames,
            crop_size=card.crop_size,
            short_side=card.short_side,
            normalization=rgb_norm,
            mean=tuple(_presets()[rgb_norm][0]),
            std=tuple(_presets()[rgb_norm][1]),
            flow_mean=tuple(flow_mean),
            flow_std=tuple(flow_std),
            future_frames=card.future_frames,
            input_kind=card.input_kind,
        )

    @classmethod
    def from_config(cls, cfg: Any, card: Any) -> Preprocessing:
        """The card's preprocessing with a training config's ``sampling`` and ``input`` sections on top."""
        base, s, i = cls.from_card(card), cfg.sampling, cfg.input
        mode = s.mode or base.sampling
        changes: dict[str, Any] = {
            "sampling": mode,
            "num_frames": s.clip_len or base.num_frames,
            "frame_interval": s.frame_interval or base.frame_interval,
            "num_segments": s.num_segments or (base.num_segments if mode == "segment" else 8),
            "snippet_len": s.snippet_len or base.snippet_len,
            "fps": s.fps or base.fps,
            "max_frames": s.max_frames or base.max_frames,
            "crop_size": i.crop_size or base.crop_size,
            "short_side": i.short_side or base.short_side,
        }
        if i.normalization:
            presets = _presets()
            if i.normalization not in presets or len(presets[i.normalization][0]) != 3:
                names = ", ".join(k for k, (m, _) in presets.items() if len(m) == 3)
                raise ConfigError(
                    f"input.normalization: unknown RGB preset {i.normalization!r} (known: {names})"
                )
            mean, std = presets[i.normalization]
            changes |= {"normalization": i.normalization, "mean": tuple(mean), "std": tuple(std)}
        return replace(base, **changes)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, base: Preprocessing | None = None) -> Preprocessing:
        """Read :meth:`to_dict`'s schema, or an older card's (gaps filled from ``base``)."""
        base = base or cls()
        nested = d.get("sampling") if isinstance(d.get("sampling"), Mapping) else None
        s = nested or {"mode": d.get("sampling")}

        def pick(*values: Any) -> Any:
            return next((v for v in values if v is not None), None)

        mean, std = d.get("mean"), d.get("std")
        if mean is not None and len(mean) == 2:  # an old flow-only card: its mean/std were the flow's
            d = {**d, "flow_mean": mean, "flow_std": std, "streams": d.get("streams") or ["flow"]}
            mean = std = None
        if (mean is None or std is None) and len(_presets().get(d.get("normalization"), ((),))[0]) == 3:
            mean, std = _presets()[d["normalization"]]
        old_streams = ["flow"] if d.get("in_channels") == 2 else None
        if d.get("input_kind") == "two_stream":
            old_streams = ["rgb", "flow"]
        return cls(
            streams=tuple(pick(d.get("streams"), old_streams, base.streams)),
            sampling=pick(s.get("mode"), base.sampling),
            num_frames=pick(s.get("clip_len"), d.get("num_frames"), base.num_frames),
            frame_interval=pick(s.get("frame_interval"), d.get("frame_interval"), base.frame_interval),
            num_segments=pick(
                s.get("num_segments"),
                d.get("num_segments"),
                d.get("num_frames") if s.get("mode") == "segment" else None,  # old flat cards
                base.num_segments,
            ),
            snippet_len=pick(s.get("snippet_len"), d.get("snippet_len"), base.snippet_len),
            fps=pick(s.get("fps"), d.get("fps"), base.fps),
            max_frames=pick(s.get("max_frames"), d.get("max_frames"), base.max_frames),
            crop_size=pick(d.get("crop_size"), base.crop_size),
            short_side=pick(d.get("short_side"), base.short_side),
            normalization=pick(d.get("normalization") if mean is not None else None, base.normalization),
            mean=tuple(pick(mean, base.mean)),
            std=tuple(pick(std, base.std)),
            flow_mean=tuple(pick(d.get("flow_mean"), base.flow_mean)),
            flow_std=tuple(pick(d.get("flow_std"), base.flow_std)),
            future_frames=pick(d.get("future_frames"), base.future_frames),
            input_kind=pick(d.get("input_kind"), base.input_kind),
        )

    @classmethod
    def from_weights(cls, path: str | Path | None, *, base: Preprocessing) -> Preprocessing:
        """What a weights file records: the card of our ``.safetensors`` or a training checkpoint's
        ``preprocessing`` entry (gaps filled from ``base``); ``base`` for files that record none."""
        entry = recorded_preprocessing(path) if path is not None else None
        return cls.from_dict(entry, base=base) if entry else base

    def to_dict(self) -> dict[str, Any]:
        """The schema written into weights cards and checkpoints (JSON-friendly, flat)."""
        out: dict[str, Any] = {"schema": SCHEMA}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    # ------------------------------------------------------------ what it builds
    @property
    def image_streams(self) -> tuple[str, ...]:
        """The streams that are frames (transformed with the crop and flip), in declaration order."""
        return tuple(s for s in self.streams if s != "boxes")

    def sampling_config(self, num_clips: int = 1) -> Any:
        """The :class:`~actionrec.data.sampling.SamplingConfig`; mode ``fps`` always takes one clip."""
        from actionrec.data.sampling import SamplingConfig

        return SamplingConfig(
            mode=self.sampling,
            clip_len=self.num_frames,
            frame_interval=self.frame_interval,
            num_segments=self.num_segments,
            snippet_len=self.snippet_len,
            num_clips=1 if self.sampling == "fps" else num_clips,
            fps=self.fps,
            max_frames=self.max_frames,
        )

    def transform(
        self,
        *,
        train: bool = False,
        num_crops: int = 1,
        train_crop: str = "random_resized",
        flip: bool = True,
        color_jitter: float = 0.0,
    ) -> Any:
        """A :class:`~actionrec.data.streams.StreamTransform`: one pipeline per image stream, sharing
        the geometry (one random draw per sample moves every stream and the boxes alike)."""
        from actionrec.data.streams import StreamTransform
        from actionrec.data.transforms import build_transform

        def pipeline(flow: bool, jitter: float) -> Any:
            mean, std = (self.flow_mean, self.flow_std) if flow else (self.mean, self.std)
            return build_transform(
                train=train,
                crop_size=self.crop_size,
                short_side=self.short_side,
                mean=mean,
                std=std,
                num_crops=num_crops,
                train_crop=train_crop,
                flip=flip,
                color_jitter=jitter if train else 0.0,
                flow=flow,
            )

        pipelines = {
            # the future frames are the rgb frames after the clip: the same jitter (one seed a sample)
            s: pipeline(s == "flow", color_jitter if s in ("rgb", "future") else 0.0)
            for s in self.image_streams
        }
        return StreamTransform(pipelines, geometry_from=self.image_streams[0])

    def window_seconds(self, src_fps: float) -> float:
        """The time one clip of the model spans (predict's default timeline window)."""
        span = self.num_frames * (self.frame_interval if self.sampling == "dense" else 1)
        if self.sampling == "segment":
            span = self.num_segments * self.snippet_len
        return span / (self.fps or src_fps)
