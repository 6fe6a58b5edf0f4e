"""One precision resolver: ``auto`` is bf16 only where the CPU computes bf16 natively, for train and test."""

from __future__ import annotations

import re
from importlib import resources

import pytest
import torch

import actionrec
from actionrec.engine import precision as P
from actionrec.engine.config import load_config, packaged_recipes
from actionrec.engine.train import _precision


@pytest.fixture(params=[False, True], ids=["no-native-bf16", "native-bf16"])
def native_bf16(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(P, "cpu_has_fast_bf16", lambda: request.param)
    return request.param


def test_packaged_recipes_follow_the_hardware(native_bf16: bool) -> None:
    expected = torch.bfloat16 if native_bf16 else None
    names = packaged_recipes()
    assert names
    for name in names:
        cfg = load_config(name)
        assert _precision(cfg, torch.device("cpu")) is expected, name


def test_fast_inference_follows_the_hardware(native_bf16: bool) -> None:
    model = actionrec.create_model("r2plus1d_small", num_classes=3)
    assert actionrec.fast_inference(model).precision == ("bf16" if native_bf16 else "fp32")
    assert P.resolve_precision("auto", "cpu") == ("bf16" if native_bf16 else "fp32")
    assert P.resolve_precision("fp32", "cpu") == "fp32"  # an explicit choice is kept
    assert P.resolve_precision("bf16", "cpu") == "bf16"


def test_no_recipe_pins_a_precision_without_saying_why() -> None:
    for name in packaged_recipes():
        text = (resources.files("actionrec") / "configs" / f"{name}.yaml").read_text()
        for line in text.splitlines():
            m = re.match(r"\s*precision:\s*(\S+)(.*)", line)
            if m and m.group(1) != "auto":
                assert "#" in m.group(2), f"{name}: precision {m.group(1)} without a comment saying why"


def test_an_avx2_capability_is_not_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    P.cpu_has_fast_bf16.cache_clear()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(P, "cpu_flags", lambda: ["avx2", "amx_bf16", "avx512_bf16"])
    try:
        assert P.cpu_has_fast_bf16() is False  # PyTorch dispatches to AVX2 kernels: bf16 is emulated
        P.cpu_has_fast_bf16.cache_clear()
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
        assert P.cpu_has_fast_bf16() is True
        P.cpu_has_fast_bf16.cache_clear()
        monkeypatch.setattr(P, "cpu_flags", lambda: ["avx2", "avx512f"])
        assert P.cpu_has_fast_bf16() is False  # AVX-512 without bf16 instructions
    finally:
        P.cpu_has_fast_bf16.cache_clear()


def test_cpu_label_names_the_cpu() -> None:
    info = P.cpu_info()
    assert str(info["capability"]) in P.cpu_label()
    assert isinstance(info["native_bf16"], bool)
