"""Training configuration: dataclass sections, YAML recipes and ``--key=value`` overrides.

A recipe is a YAML mapping of sections (``model``, ``data``, ``sampling``, ``input``, ``optim``,
``train``, ``task``); every key is optional and defaults to the dataclass field below. ``None`` in the
``sampling`` and ``input`` sections means "take it from the model card". Overrides use dotted keys,
``--optim.lr=0.1``, and their values are parsed by ``yaml.safe_load`` (``--train.compile=true``,
``--optim.milestones=[30,40]``). Unknown keys, wrong types and impossible values raise a
:class:`~actionrec.errors.ConfigError` naming the key before any work starts.

Example::

    cfg = load_config("r2plus1d-small_8x3_synthetic-rgb", overrides=["--train.epochs=2"])
    save_config(cfg, "runs/x/config.yaml")
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from actionrec.errors import ConfigError

if TYPE_CHECKING:
    from torch.utils.data import Dataset


@dataclass
class ModelSection:
    """Which model: a registered name, its class count (None = the dataset's), optional weights."""

    name: str = "r2plus1d_small"
    num_classes: int | None = None
    weights: str | None = None  # a local file for actionrec.weights.load_weights (fine-tuning)
    strict: bool = True  # strict weights loading
    pretrained_classes: int | None = None  # classes of ``weights`` when they differ: the head is replaced
    dropout: float | None = None  # passed to the builder as ``dropout=`` when set
    overrides: dict[str, Any] = field(default_factory=dict)  # further builder keyword arguments


@dataclass
class DataSection:
    """Which videos: the fields of :class:`actionrec.data.datasets.DataConfig` (``options`` for the rest)."""

    dataset: str = "synthetic"
    root: str | None = None
    annotations: str | None = None
    fold: int = 1
    backend: str = "pyav"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SamplingSection:
    """Frame sampling; each ``None`` takes the model card's value (see ``SamplingConfig``)."""

    mode: Literal["dense", "segment", "uniform", "fps"] | None = None
    clip_len: int | None = None
    frame_interval: int | None = None
    num_segments: int | None = None
    snippet_len: int | None = None
    fps: float | None = None
    max_frames: int | None = None


@dataclass
class InputSection:
    """Pixels: crop size, resize, normalisation (``None`` = the card's) and training augmentation."""

    crop_size: int | None = None
    short_side: int | None = None
    normalization: str | None = None
    train_crop: Literal["random_resized", "multiscale", "short_side"] = "random_resized"
    flip: bool = True
    color_jitter: float = 0.0


@dataclass
class OptimSection:
    """Optimiser, schedule (per optimiser step) and loss."""

    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 1e-4
    no_decay_norm_bias: bool = True
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_epochs: float = 0.0
    warmup_factor: float = 0.1
    min_lr: float = 0.0
    milestones: list[int] = field(default_factory=list)  # epochs, for schedule "step"
    gamma: float = 0.1
    label_smoothing: float = 0.0
    grad_clip: float | None = None  # max global L2 norm of the gradients
    accumulate: int = 1  # batches per optimiser step


@dataclass
class TrainSection:
    """Loop settings. ``batch_size`` is global: each of W ranks loads ``batch_size / W`` clips."""

    epochs: int = 10
    batch_size: int = 8
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: bool = False
    compile: bool = False
    seed: int = 0
    deterministic: bool = False
    log_every: int = 10  # steps between progress-bar postfix updates
    eval_every: int = 1  # epochs between validations (0 = never)
    num_workers: int = 2
    # intra-op threads on CPU; None = the cores the DataLoader workers leave free (at least 1), unless
    # OMP_NUM_THREADS is set. Oversubscribed cores cost more than one thread less: on 2 cores, 2 workers
    # beside 2 compute threads trained r2plus1d_small at 103 clips/s, 1 worker beside 1 thread at 131.
    threads: int | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    max_steps_per_epoch: int | None = None  # cap for smoke runs


@dataclass
class TaskSection:
    """What is optimised (see :mod:`actionrec.engine.tasks`): ``name`` classify / multitask / pretrain,
    ``loss_weights`` term -> weight (``cls`` is the cross-entropy), ``best_metric`` the record key that
    picks ``best.pt`` (default ``val_top1``; ``val_loss`` when pretraining)."""

    name: Literal["classify", "multitask", "pretrain"] = "classify"
    loss_weights: dict[str, float] = field(default_factory=dict)
    best_metric: str | None = None


@dataclass
class Config:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    sampling: SamplingSection = field(default_factory=SamplingSection)
    input: InputSection = field(default_factory=InputSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    task: TaskSection = field(default_factory=TaskSection)


# key -> (predicate, message) checked after types; keys are "section.field".
_RULES: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "model.num_classes": (lambda v: v is None or v >= 1, "must be >= 1"),
    "model.pretrained_classes": (lambda v: v is None or v >= 1, "must be >= 1"),
    "model.dropout": (lambda v: v is None or 0.0 <= v < 1.0, "must be in [0, 1)"),
    "data.fold": (lambda v: v >= 1, "must be >= 1"),
    "sampling.clip_len": (lambda v: v is None or v >= 1, "must be >= 1"),
    "sampling.frame_interval": (lambda v: v is None or v >= 1, "must be >= 1"),
    "sampling.num_segments": (lambda v: v is None or v >= 1, "must be >= 1"),
    "sampling.snippet_len": (lambda v: v is None or v >= 1, "must be >= 1"),
    "sampling.fps": (lambda v: v is None or v > 0, "must be > 0"),
    "sampling.max_frames": (lambda v: v is None or v >= 1, "must be >= 1"),
    "input.crop_size": (lambda v: v is None or v >= 1, "must be >= 1"),
    "input.short_side": (lambda v: v is None or v >= 1, "must be >= 1"),
    "input.color_jitter": (lambda v: v >= 0, "must be >= 0"),
    "optim.lr": (lambda v: v > 0, "must be > 0"),
    "optim.momentum": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "optim.beta1": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "optim.beta2": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "optim.weight_decay": (lambda v: v >= 0, "must be >= 0"),
    "optim.warmup_epochs": (lambda v: v >= 0, "must be >= 0"),
    "optim.warmup_factor": (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    "optim.min_lr": (lambda v: v >= 0, "must be >= 0"),
    "optim.milestones": (lambda v: all(m >= 1 for m in v) and v == sorted(v), "must be increasing, >= 1"),
    "optim.gamma": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "optim.label_smoothing": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "optim.grad_clip": (lambda v: v is None or v > 0, "must be > 0"),
    "optim.accumulate": (lambda v: v >= 1, "must be >= 1"),
    "train.epochs": (lambda v: v >= 1, "must be >= 1"),
    "train.batch_size": (lambda v: v >= 1, "must be >= 1"),
    "train.log_every": (lambda v: v >= 1, "must be >= 1"),
    "train.eval_every": (lambda v: v >= 0, "must be >= 0"),
    "train.num_workers": (lambda v: v >= 0, "must be >= 0"),
    "train.threads": (lambda v: v is None or v >= 1, "must be >= 1"),
    "train.seed": (lambda v: v >= 0, "must be >= 0"),
    "train.max_steps_per_epoch": (lambda v: v is None or v >= 1, "must be >= 1"),
    "task.loss_weights": (
        lambda v: all(isinstance(w, (int, float)) and w >= 0 for w in v.values()),
        "must map term names to weights >= 0",
    ),
}


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted for floats."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(key, value, a)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} has the wrong type")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    is_bool_as_int = tp is int and isinstance(value, bool)
    if tp is Any or (isinstance(tp, type) and isinstance(value, tp) and not is_bool_as_int):
        return value
    name = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"{key}: expected {name}, got {type(value).__name__} {value!r}")


def _build_section(cls: type, name: str, raw: Any) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise ConfigError(f"{name}.{unknown[0]}: unknown key (known: {', '.join(sorted(fields))})")
    kwargs = {k: _coerce(f"{name}.{k}", v, hints[k]) for k, v in raw.items()}
    section = cls(**kwargs)
    for f in dataclasses.fields(cls):
        rule = _RULES.get(f"{name}.{f.name}")
        value = getattr(section, f.name)
        if rule and not rule[0](value):
            raise ConfigError(f"{name}.{f.name}: {value!r} {rule[1]}")
    return section


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from nested plain data (missing keys take defaults)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config: expected a mapping of sections, got {type(raw).__name__}")
    hints = typing.get_type_hints(Config)
    unknown = sorted(set(raw) - set(hints))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown config section (known: {', '.join(hints)})")
    cfg = Config(**{name: _build_section(hints[name], name, raw.get(name)) for name in hints})
    if cfg.optim.schedule == "step" and not cfg.optim.milestones:
        raise ConfigError("optim.milestones: schedule 'step' needs at least one milestone")
    if cfg.optim.min_lr > cfg.optim.lr:
        raise ConfigError(f"optim.min_lr: {cfg.optim.min_lr} is larger than optim.lr {cfg.optim.lr}")
    if cfg.optim.warmup_epochs > cfg.train.epochs:
        raise ConfigError(f"optim.warmup_epochs: {cfg.optim.warmup_epochs} > train.epochs {cfg.train.epochs}")
    return cfg


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Nested plain data (YAML/JSON/weights-only-pickle friendly)."""
    return dataclasses.asdict(cfg)


def parse_overrides(items: typing.Iterable[str]) -> list[tuple[str, Any]]:
    """``["--optim.lr=0.1", "train.epochs=3"]`` -> ``[("optim.lr", 0.1), ("train.epochs", 3)]``."""
    out = []
    for item in items:
        body = item[2:] if item.startswith("--") else item
        key, sep, text = body.partition("=")
        if not sep or not key or "." not in key:
            raise ConfigError(f"{item}: an override must look like --section.key=value")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(f"{key}: cannot parse {text!r} ({e.__class__.__name__})") from None
        out.append((key, value))
    return out


def apply_overrides(raw: dict[str, Any], overrides: typing.Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Set dotted keys in a nested dict (in place; returns it)."""
    for key, value in overrides:
        parts = key.split(".")
        node = raw
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{key}: {p!r} is not a section")
            node = child
        node[parts[-1]] = value
    return raw


def packaged_recipes() -> list[str]:
    """Names of the recipes shipped in ``actionrec/configs`` (without ``.yaml``)."""
    folder = resources.files("actionrec") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve_recipe(name_or_path: str | Path) -> Path:
    """A YAML file path, or the name of a packaged recipe (with or without ``.yaml``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    stem = path.name[:-5] if path.name.endswith(".yaml") else path.name
    candidate = resources.files("actionrec") / "configs" / f"{stem}.yaml"
    if str(name_or_path) == path.name and candidate.is_file():
        return Path(str(candidate))
    raise ConfigError(
        f"{name_or_path}: no such config file or packaged recipe (recipes: {', '.join(packaged_recipes())})"
    )


def load_config(
    source: str | Path | dict[str, Any] | None = None, *, overrides: typing.Iterable[str] = ()
) -> Config:
    """Load a YAML file / packaged recipe name / dict (None = all defaults), apply overrides, validate."""
    if source is None:
        raw: Any = {}
    elif isinstance(source, dict):
        raw = yaml.safe_load(yaml.safe_dump(source))  # deep copy through plain data
    else:
        path = resolve_recipe(source)
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return config_from_dict(apply_overrides(raw, parse_overrides(overrides)))


def save_config(cfg: Config, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomically)."""
    from actionrec.engine.checkpoint import atomic_write

    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    return atomic_write(path, lambda f: f.write(text.encode()))


# ---------------------------------------------------------------- objects built from a config


def preprocessing(cfg: Config, card: Any) -> Any:
    """The :class:`~actionrec.data.preprocessing.Preprocessing` of the config: the card's, with the
    recipe's ``sampling`` and ``input`` sections on top (what is written beside the weights)."""
    from actionrec.data.preprocessing import Preprocessing

    return Preprocessing.from_config(cfg, card)


def preprocessing_card(cfg: Config, card: Any) -> dict[str, Any]:
    """:func:`preprocessing` in the one schema weights cards and checkpoints carry."""
    return preprocessing(cfg, card).to_dict()


def data_config(cfg: Config, *, replace_failures: bool = True) -> Any:
    """The :class:`~actionrec.data.datasets.DataConfig` of ``cfg.data`` (``options`` checked by name)."""
    import dataclasses

    from actionrec.data.datasets import DataConfig

    d = cfg.data
    if not d.root:
        raise ConfigError("data.root: not set (the folder that holds the videos)")
    known = {f.name for f in dataclasses.fields(DataConfig)}
    unknown = sorted(set(d.options) - known)
    if unknown:
        raise ConfigError(f"data.options.{unknown[0]}: not a DataConfig field ({', '.join(sorted(known))})")
    fields = {"dataset": d.dataset, "root": d.root, "annotations": d.annotations, "fold": d.fold}
    fields |= {
        "backend": d.backend,
        "num_workers": cfg.train.num_workers,
        "replace_failures": replace_failures,
    }
    return DataConfig(**{**fields, **d.options})


def build_split(
    cfg: Config,
    card: Any,
    *,
    subset: str,
    num_clips: int = 1,
    num_crops: int = 1,
    replace_failures: bool = True,
    pre: Any = None,
    augment: bool | None = None,
) -> Dataset:
    """The ``subset`` ("train" or "test") of the config's data, the one path train, test, predict and
    features build datasets by. Sampling, crop size, resize and normalisation come from the config,
    gaps filled from the model card; a test split may ask for ``num_clips`` x ``num_crops`` views.
    ``replace_failures=False`` leaves an unreadable video out instead of scoring a stand-in. ``pre``
    (a :class:`~actionrec.data.preprocessing.Preprocessing`, e.g. what a weights file records)
    replaces the config's and card's preprocessing. ``augment`` (default: the train subset) draws
    training's random clips and augmentation; off, the subset gets the test views."""
    from actionrec.data.datasets import build_dataset

    train = subset == "train" if augment is None else augment
    pre = pre or preprocessing(cfg, card)
    if "boxes" in pre.streams and num_crops > 1:
        raise ConfigError("object boxes follow one crop a clip: evaluate a region model with --crops 1")
    if not train and num_clips != 1 and pre.sampling == "fps":
        raise ConfigError("sampling mode 'fps' takes the whole video as one clip; use --clips 1")
    transform = pre.transform(
        train=train,
        num_crops=num_crops,
        train_crop=cfg.input.train_crop,
        flip=cfg.input.flip,
        color_jitter=cfg.input.color_jitter,
    )
    data = data_config(cfg, replace_failures=replace_failures)
    return build_dataset(
        data,
        subset=subset,
        train=train,
        sampling=pre.sampling_config(1 if train else num_clips),
        transform=transform,
        streams=pre.streams,
        future_frames=pre.future_frames,
    )


def build_datasets(cfg: Config, card: Any) -> tuple[Dataset, Dataset]:
    """Training's train and validation (test split) datasets, through :func:`build_split`."""
    return build_split(cfg, card, subset="train"), build_split(cfg, card, subset="test")


def dataset_report(dataset: Dataset) -> str | None:
    """The dataset's summary of skipped (unreadable) videos, if it keeps one and anything was skipped."""
    failures, missing = getattr(dataset, "failures", None), getattr(dataset, "missing", None)
    if (failures is not None or missing is not None) and not failures and not missing:
        return None  # keeps the books and nothing was skipped
    report = getattr(dataset, "report", None)
    if callable(report):
        text = report()
        return str(text) if text else None
    return f"skipped {len(failures)} unreadable video(s) so far" if failures else None
