"""Config loading: YAML recipes, dotted overrides, and ConfigError naming the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from actionrec.engine.config import (
    Config,
    config_to_dict,
    dataset_report,
    load_config,
    packaged_recipes,
    parse_overrides,
    save_config,
)
from actionrec.errors import ConfigError


def test_defaults_and_overrides_parse_yaml_values() -> None:
    cfg = load_config(
        None,
        overrides=[
            "--optim.lr=0.1",
            "--train.compile=true",
            "--optim.milestones=[3, 6]",
            "--model.overrides.width=8",
            "--optim.grad_clip=null",
        ],
    )
    assert isinstance(cfg, Config)
    assert cfg.optim.lr == 0.1 and cfg.train.compile is True and cfg.optim.milestones == [3, 6]
    assert cfg.model.overrides == {"width": 8} and cfg.optim.grad_clip is None
    assert cfg.train.batch_size == 8  # untouched default


def test_int_is_accepted_for_float() -> None:
    assert load_config({"optim": {"lr": 1}}).optim.lr == 1.0


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["--optim.lrr=0.1"], "optim.lrr"),
        (["--optimizer.lr=0.1"], "optimizer"),
        (["--optim.lr=-0.1"], "optim.lr"),
        (["--optim.lr=fast"], "optim.lr"),
        (["--sampling.clip_len=0"], "sampling.clip_len"),
        (["--train.batch_size=0"], "train.batch_size"),
        (["--train.epochs=2.5"], "train.epochs"),
        (["--train.deterministic=3"], "train.deterministic"),
        (["--train.precision=fp8"], "train.precision"),
        (["--optim.optimizer=adam"], "optim.optimizer"),
        (["--optim.schedule=step"], "optim.milestones"),
        (["--optim.label_smoothing=1.5"], "optim.label_smoothing"),
        (["--model.num_classes=true"], "model.num_classes"),
        (["optim.lr"], "optim.lr"),
    ],
)
def test_bad_values_name_the_key(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, overrides=overrides)


def test_yaml_file_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "recipe.yaml"
    src.write_text("model:\n  name: tiny\noptim:\n  lr: 0.05\ntrain:\n  epochs: 3\n")
    cfg = load_config(src, overrides=["--train.epochs=4"])
    assert (cfg.model.name, cfg.optim.lr, cfg.train.epochs) == ("tiny", 0.05, 4)
    out = save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(out) == cfg
    assert yaml.safe_load(out.read_text()) == config_to_dict(cfg)


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")


def test_override_syntax() -> None:
    assert parse_overrides(["--a.b=1", "c.d=x y"]) == [("a.b", 1), ("c.d", "x y")]
    with pytest.raises(ConfigError, match=r"--section\.key=value"):
        parse_overrides(["--lr=0.1"])


def test_packaged_recipes_load_and_name_registered_models() -> None:
    from actionrec.models.registry import list_models

    names = packaged_recipes()
    assert {"r2plus1d-small_8x3_synthetic-rgb", "single-frame-small_4x6_synthetic-rgb"} <= set(names)
    registered = set(list_models())
    for name in names:
        cfg = load_config(name)
        assert cfg.model.name in registered, f"{name}: unknown model {cfg.model.name}"


class _Stub:
    def __init__(self, failures: dict[str, str], missing: list[str]) -> None:
        self.failures, self.missing = failures, missing

    def report(self) -> str:
        return f"stub: skipped {len(self.failures) + len(self.missing)}"


def test_dataset_report_is_silent_until_something_is_skipped() -> None:
    assert dataset_report(_Stub({}, [])) is None
    assert dataset_report(object()) is None  # a plain torch dataset keeps no report
    assert dataset_report(_Stub({"a.mp4": "decoding failed"}, [])) == "stub: skipped 1"
    assert dataset_report(_Stub({}, ["b.mp4"])) == "stub: skipped 1"


def _tiny_benchmark(root: Path) -> Path:
    from actionrec.data.synth import generate_synthetic

    return generate_synthetic(root, classes=["move_right", "move_left"], videos_per_class=5, workers=1)


def test_one_path_from_a_config_to_datasets(tmp_path: Path) -> None:
    from actionrec.engine.config import build_datasets, build_split
    from actionrec.engine.evaluate import build_test_dataset
    from actionrec.models.registry import get_card

    data = _tiny_benchmark(tmp_path / "synthetic")
    card = get_card("r2plus1d_small")
    cfg = load_config("r2plus1d-small_8x3_synthetic-rgb", overrides=[f"--data.root={data}"])
    train_set, val_set = build_datasets(cfg, card)
    test_set = build_test_dataset(cfg, card, num_clips=2, num_crops=3)
    assert train_set.train and not val_set.train and val_set.replace_failures
    assert (
        not test_set.replace_failures and test_set.sampling.num_clips == 2
    )  # scored as itself or not at all
    assert test_set.samples == val_set.samples and test_set[0]["rgb"].shape == (6, 3, 8, 48, 48)
    assert build_split(cfg, card, subset="test").sampling == val_set.sampling
    for bad, message in (
        (["--data.options={max_sample: 3}"], "data.options.max_sample"),
        (["--data.root=null"], "data.root: not set"),
    ):
        broken = load_config(config_to_dict(cfg), overrides=bad)
        for build in (lambda c: build_datasets(c, card), lambda c: build_test_dataset(c, card)):
            with pytest.raises(ConfigError, match=message):
                build(broken)
